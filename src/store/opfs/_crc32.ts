// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * zlib's CRC-32 in plain TypeScript, for runtimes without `node:zlib` (the
 * browser). It gives the same `"crc32:<8 hex digits>"` as `../_checksum.ts`,
 * slice-by-8: eight 256-entry tables consume eight bytes per step.
 *
 * @module
 */

/** The reflected CRC-32 polynomial (zlib, gzip, PNG). */
const POLYNOMIAL = 0xedb88320;

/** Tables `k * 256 .. k * 256 + 255` for k = 0..7, built once. */
export const CRC32_TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n]!;
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

/**
 * Continues a CRC-32 over `bytes` (zlib's `crc32(bytes, crc)`). It uses
 * nothing but its arguments, so its source can run in a helper Worker
 * (`_parallel_crc32.ts`).
 *
 * @param t {@linkcode CRC32_TABLES}.
 * @param crc The CRC of the bytes before (0 to start).
 * @param bytes The next bytes.
 * @returns The CRC of all bytes so far, as an unsigned 32-bit number.
 */
export function crc32Update(
  t: Uint32Array,
  crc: number,
  bytes: Uint8Array,
): number {
  let c = ~crc;
  let i = 0;
  const end8 = bytes.length - (bytes.length & 7);
  while (i < end8) {
    const a = c ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) |
        (bytes[i + 3]! << 24));
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < bytes.length) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

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

/** Renders a CRC as the library's checksum string. */
export function crc32String(crc: number): string {
  return `crc32:${crc.toString(16).padStart(8, "0")}`;
}
