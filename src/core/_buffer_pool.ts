// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A tiny pool of fixed-size byte buffers kept across saves and loads.
 *
 * Fresh memory costs ~15 µs per 4 KiB page on our machines (see docs/performance.md), so
 * a 4 MiB staging buffer allocated per save would cost ~15 ms before a single
 * byte is written. Buffers taken from here are already touched.
 *
 * @module
 */

/** Size of every pooled buffer: 4 MiB. */
export const POOL_BUFFER_SIZE = 4 * 1024 * 1024;

/** At most this many idle buffers are kept. */
const MAX_IDLE = 2;

const idle: Uint8Array<ArrayBuffer>[] = [];

/**
 * Takes a buffer of {@linkcode POOL_BUFFER_SIZE} bytes from the pool (or makes
 * one). Its contents are unspecified. Give it back with
 * {@linkcode releaseBuffer} when done.
 */
export function acquireBuffer(): Uint8Array<ArrayBuffer> {
  return idle.pop() ?? new Uint8Array(POOL_BUFFER_SIZE);
}

/** Returns a buffer taken with {@linkcode acquireBuffer} to the pool. */
export function releaseBuffer(buffer: Uint8Array<ArrayBuffer>): void {
  if (
    buffer.byteLength === POOL_BUFFER_SIZE && idle.length < MAX_IDLE &&
    !idle.includes(buffer)
  ) {
    idle.push(buffer);
  }
}
