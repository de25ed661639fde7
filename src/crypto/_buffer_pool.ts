// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A small pool of byte buffers kept across saves. Touching fresh pages is the
 * slowest thing a save does (see docs/performance.md), so staging buffers for encryption
 * are taken from here and given back when a stream finishes.
 */

const _MAX_KEPT_BYTES = 192 * 1024 * 1024;
const _free: ArrayBuffer[] = [];
let _keptBytes = 0;

/** A buffer of exactly `size` bytes, reused when one is free. */
export function takeBuffer(size: number): ArrayBuffer {
  const i = _free.findIndex((b) => b.byteLength === size);
  if (i >= 0) {
    const [buffer] = _free.splice(i, 1);
    _keptBytes -= size;
    return buffer!;
  }
  return new ArrayBuffer(size);
}

/**
 * Gives `buffer` back. It is kept when the pool has room; the oldest buffers
 * are dropped to make room. A detached buffer is ignored.
 */
export function giveBuffer(buffer: ArrayBuffer): void {
  const size = buffer.byteLength;
  if (size === 0 || size > _MAX_KEPT_BYTES) return;
  while (_keptBytes + size > _MAX_KEPT_BYTES && _free.length > 0) {
    _keptBytes -= _free.shift()!.byteLength;
  }
  _free.push(buffer);
  _keptBytes += size;
}
