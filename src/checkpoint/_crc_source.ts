// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the CRC-32 of a file's bytes, computed while they are read for
// another purpose (a restore), so verifying costs no second pass.

import type { ByteSource } from "../core/io.ts";
import { acquireBuffer, releaseBuffer } from "../core/_buffer_pool.ts";
import { Crc32 } from "../store/_checksum.ts";
import type { CheckpointStore } from "../store/store.ts";
import { wrapReaders } from "../store/_wrap_readers.ts";

/**
 * A source that, once {@linkcode CrcSource.start} is called, feeds the
 * CRC-32 with every byte of the file exactly once, in file order: a read
 * that continues where coverage ends extends it; a read past it first reads
 * and checksums the gap (the few header bytes between tensors when entries
 * are restored in file order); a read of bytes already covered is not fed
 * again. {@linkcode CrcSource.finish} checksums what was never read and
 * returns the digest, the same string `checksumFile` gives.
 *
 * Reads are serialised (each waits for the one before), so the coverage is
 * updated in the order reads were made.
 */
export class CrcSource implements ByteSource {
  readonly size: number;
  #source: ByteSource;
  #crc = new Crc32();
  #covered = 0;
  #tracking = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: ByteSource) {
    this.#source = source;
    this.size = source.size;
  }

  /** Starts feeding the checksum from byte 0 (earlier reads are not fed). */
  start(): void {
    this.#tracking = true;
  }

  readAt(position: number, into: Uint8Array): Promise<void> {
    const run = this.#queue.then(() => this.#read(position, into));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(position: number, into: Uint8Array): Promise<void> {
    if (this.#tracking && position > this.#covered) {
      await this.#fill(position);
    }
    await this.#source.readAt(position, into);
    if (!this.#tracking) return;
    const end = position + into.byteLength;
    if (position <= this.#covered && end > this.#covered) {
      this.#crc.update(into.subarray(this.#covered - position));
      this.#covered = end;
    }
  }

  /** Reads and checksums the bytes from the coverage up to `until`. */
  async #fill(until: number): Promise<void> {
    const buffer = acquireBuffer();
    try {
      while (this.#covered < until) {
        const n = Math.min(buffer.byteLength, until - this.#covered);
        const piece = buffer.subarray(0, n);
        await this.#source.readAt(this.#covered, piece);
        this.#crc.update(piece);
        this.#covered += n;
      }
    } finally {
      releaseBuffer(buffer);
    }
  }

  /**
   * Checksums the bytes not read yet and returns `"crc32:<8 hex digits>"`
   * of the whole file.
   */
  finish(): Promise<string> {
    const run = this.#queue.then(async () => {
      if (!this.#tracking) {
        throw new TypeError("CrcSource.finish() before start()");
      }
      await this.#fill(this.size);
      return this.#crc.digest();
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}

/** `store` with `open` returning readers whose bytes feed a CrcSource. */
export function trackingStore(
  store: CheckpointStore,
  onOpen: (crc: CrcSource) => void,
): CheckpointStore {
  return wrapReaders(store, (file) => {
    const crc = new CrcSource(file);
    onOpen(crc);
    return crc;
  });
}
