// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Read-ahead over a {@linkcode ByteSource}: small reads are served from a
 * pooled 4 MiB window filled by one read, so loading thousands of small
 * tensors in file order costs one read per 4 MiB instead of one per tensor.
 * Large reads go straight into the caller's memory.
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";
import { acquireBuffer, releaseBuffer } from "../core/_buffer_pool.ts";

/** Reads at least this long bypass the window. */
const DIRECT_MIN = 1024 * 1024;

/** A source that reads ahead; call {@linkcode ReadAheadSource.release} when done. */
export class ReadAheadSource implements ByteSource {
  readonly size: number;
  #source: ByteSource;
  #window: Uint8Array<ArrayBuffer> | null = null;
  #start = 0;
  #length = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(source: ByteSource) {
    this.#source = source;
    this.size = source.size;
  }

  readAt(position: number, into: Uint8Array): Promise<void> {
    const run = this.#queue.then(() => this.#read(position, into));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(position: number, into: Uint8Array): Promise<void> {
    const n = into.byteLength;
    if (n >= DIRECT_MIN || position + n > this.size || position < 0) {
      return this.#source.readAt(position, into);
    }
    const start = this.#start;
    if (
      this.#window === null || position < start ||
      position + n > start + this.#length
    ) {
      this.#window ??= acquireBuffer();
      const length = Math.min(this.#window.byteLength, this.size - position);
      this.#length = 0; // invalid until the read succeeds
      await this.#source.readAt(position, this.#window.subarray(0, length));
      this.#start = position;
      this.#length = length;
    }
    const at = position - this.#start;
    into.set(this.#window.subarray(at, at + n));
  }

  /** Gives the window back to the pool (after reads in flight finish). */
  release(): Promise<void> {
    return this.#queue.then(() => {
      if (this.#window !== null) releaseBuffer(this.#window);
      this.#window = null;
      this.#length = 0;
    });
  }
}
