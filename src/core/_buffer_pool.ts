// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The one pool of byte buffers kept across saves and loads. Fresh memory
 * costs ~15 µs per 4 KiB page on our machines (page faults; see
 * docs/performance.md), so a 4 MiB
 * staging buffer allocated per save would cost ~15 ms before a single byte
 * is written; buffers taken from here are already touched. Encryption
 * pieces and SM4 worker transfers come from here too.
 *
 * @module
 */

/** Bytes of idle buffers kept at most: 192 MiB (the oldest go first). */
const MAX_KEPT_BYTES = 192 * 1024 * 1024;

const free: ArrayBuffer[] = [];
let keptBytes = 0;

/**
 * A buffer of exactly `size` bytes, reused when one is free. Its contents
 * are unspecified. Give it back with {@linkcode giveBuffer} when done.
 *
 * @param size Bytes.
 * @returns The buffer.
 */
export function takeBuffer(size: number): ArrayBuffer {
  const i = free.findIndex((b) => b.byteLength === size);
  if (i >= 0) {
    const [buffer] = free.splice(i, 1);
    keptBytes -= size;
    return buffer!;
  }
  return new ArrayBuffer(size);
}

/**
 * Gives `buffer` back. It is kept when the pool has room; the oldest buffers
 * are dropped to make room. A detached buffer, or one already given back,
 * is ignored.
 *
 * @param buffer The buffer.
 */
export function giveBuffer(buffer: ArrayBuffer): void {
  const size = buffer.byteLength;
  if (size === 0 || size > MAX_KEPT_BYTES || free.includes(buffer)) return;
  while (keptBytes + size > MAX_KEPT_BYTES && free.length > 0) {
    keptBytes -= free.shift()!.byteLength;
  }
  free.push(buffer);
  keptBytes += size;
}

/** Size of the staging buffers of {@linkcode acquireBuffer}: 4 MiB. */
export const POOL_BUFFER_SIZE = 4 * 1024 * 1024;

/**
 * A staging buffer of {@linkcode POOL_BUFFER_SIZE} bytes from the pool.
 * Give it back with {@linkcode releaseBuffer} when done.
 *
 * @returns The buffer.
 */
export function acquireBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(takeBuffer(POOL_BUFFER_SIZE));
}

/**
 * Returns a buffer taken with {@linkcode acquireBuffer} to the pool.
 *
 * @param buffer The buffer.
 */
export function releaseBuffer(buffer: Uint8Array<ArrayBuffer>): void {
  if (buffer.byteOffset === 0 && buffer.byteLength === POOL_BUFFER_SIZE) {
    giveBuffer(buffer.buffer);
  }
}
