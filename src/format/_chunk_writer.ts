// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Shared by the encoders: coalesces small writes into one reused buffer and
 * streams large ones straight from the caller's memory in bounded pieces.
 *
 * @module
 */

import type { ByteSink } from "../core/io.ts";
import { acquireBuffer, releaseBuffer } from "../core/_buffer_pool.ts";

/** Largest chunk handed to the sink at once: 4 MiB. */
export const PIECE_SIZE = 4 * 1024 * 1024;

/** Chunks at least this long skip the staging buffer. */
const DIRECT_MIN = 256 * 1024;

/**
 * Writes bytes to a sink in order. Chunks shorter than 256 KiB are copied
 * into a pooled 4 MiB staging buffer, handed to the sink when full; longer
 * ones are passed to the sink as views of the caller's memory, at most
 * {@linkcode PIECE_SIZE} bytes at a time. Call {@linkcode ChunkWriter.close}
 * at the end (also on error) to flush and give the buffer back.
 */
export class ChunkWriter {
  #sink: ByteSink;
  #buffer: Uint8Array<ArrayBuffer> | null = acquireBuffer();
  #used = 0;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /**
   * Appends `bytes`. Returns `undefined` when they were only copied into the
   * staging buffer (no await needed: a promise per small field costs more
   * than the copy), else a promise; the caller may reuse `bytes` once it
   * resolves.
   */
  write(bytes: Uint8Array): Promise<void> | undefined {
    const buffer = this.#buffer;
    if (buffer === null) throw new TypeError("ChunkWriter is closed");
    const n = bytes.byteLength;
    if (n < DIRECT_MIN) {
      if (this.#used + n > buffer.byteLength) return this.#flushThenCopy(bytes);
      buffer.set(bytes, this.#used);
      this.#used += n;
      return undefined;
    }
    return this.#direct(bytes);
  }

  async #flushThenCopy(bytes: Uint8Array): Promise<void> {
    const buffer = this.#buffer!;
    await this.#flush(buffer);
    buffer.set(bytes, this.#used);
    this.#used += bytes.byteLength;
  }

  async #direct(bytes: Uint8Array): Promise<void> {
    await this.#flush(this.#buffer!);
    const n = bytes.byteLength;
    for (let at = 0; at < n; at += PIECE_SIZE) {
      await this.#sink.write(bytes.subarray(at, Math.min(n, at + PIECE_SIZE)));
    }
  }

  async #flush(buffer: Uint8Array): Promise<void> {
    if (this.#used === 0) return;
    const used = this.#used;
    this.#used = 0;
    await this.#sink.write(buffer.subarray(0, used));
  }

  /**
   * Flushes what is buffered (unless `flush` is false, as after an error) and
   * returns the buffer to the pool.
   */
  async close(flush = true): Promise<void> {
    const buffer = this.#buffer;
    if (buffer === null) return;
    try {
      if (flush) await this.#flush(buffer);
    } finally {
      this.#buffer = null;
      this.#used = 0;
      releaseBuffer(buffer);
    }
  }
}

/** A growable scratch byte array for small headers, reused across entries. */
export class Scratch {
  #bytes = new Uint8Array(256);
  #length = 0;

  /** Forgets the content. */
  reset(): void {
    this.#length = 0;
  }

  /** The bytes written since the last reset, as a view. */
  view(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  #room(n: number): void {
    if (this.#length + n <= this.#bytes.byteLength) return;
    let size = this.#bytes.byteLength * 2;
    while (size < this.#length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = next;
  }

  /** Appends one byte. */
  byte(b: number): void {
    this.#room(1);
    this.#bytes[this.#length++] = b;
  }

  /** Appends bytes. */
  bytes(b: Uint8Array): void {
    this.#room(b.byteLength);
    this.#bytes.set(b, this.#length);
    this.#length += b.byteLength;
  }

  /** Appends a protobuf varint of a non-negative safe integer. */
  varint(value: number): void {
    this.#room(10);
    let v = value;
    while (v >= 0x80) {
      this.#bytes[this.#length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#bytes[this.#length++] = v;
  }
}

/**
 * Number of bytes of the protobuf varint of a non-negative safe integer.
 *
 * @param value The value.
 * @returns 1 to 8.
 */
export function varintSize(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}
