// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Joining CRC-32s of consecutive parts (zlib's `crc32_combine`), so that the
 * parts of one file can be summed on different threads.
 *
 * @module
 */

/** The reflected CRC-32 polynomial (zlib, gzip, PNG). */
const POLYNOMIAL = 0xedb88320;

/** `a(x) * b(x) mod P(x)`, bit-reflected (zlib's `multmodp`). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLYNOMIAL : b >>> 1;
  }
  return p >>> 0;
}

/** `x^(2^k) mod P(x)` for k = 0..31. */
const X2N: Uint32Array = (() => {
  const t = new Uint32Array(32);
  let p = 0x40000000; // x^1
  t[0] = p;
  for (let k = 1; k < 32; k++) t[k] = p = multModP(p, p);
  return t;
})();

/**
 * The CRC-32 of `A` followed by `B` from the CRCs of each and the length of
 * `B` (zlib's `crc32_combine`).
 *
 * @param crcA The CRC of the first part.
 * @param crcB The CRC of the second part.
 * @param lengthB The second part's length in bytes.
 * @returns The CRC of both, as an unsigned 32-bit number.
 */
export function crc32Combine(
  crcA: number,
  crcB: number,
  lengthB: number,
): number {
  // x^(8 * lengthB) mod P, by squaring.
  let p = 0x80000000; // x^0
  let k = 3;
  for (let n = lengthB; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) p = multModP(X2N[k & 31]!, p);
  }
  return (multModP(p, crcA) ^ crcB) >>> 0;
}
