// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Whether an `ArrayBuffer` was transferred away. Node.js 20 has no
 * `ArrayBuffer.prototype.detached` (it reads `undefined`); there a
 * transferred buffer is known by its length, 0 (an empty buffer counts as
 * transferred: the caller then drops it rather than reuse it).
 *
 * @module
 */

/** Whether `buffer` was transferred (detached). */
export function isDetached(buffer: ArrayBuffer): boolean {
  const detached = (buffer as { detached?: boolean }).detached;
  return typeof detached === "boolean" ? detached : buffer.byteLength === 0;
}
