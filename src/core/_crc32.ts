// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * zlib's CRC-32 (the one `gzip`, Python's `zlib.crc32` and MindSpore's
 * `crc_num` use), and the CRC of a concatenation from the CRCs of its parts,
 * so that parts checked in any order (entries read by name) still give the
 * CRC of the whole file.
 *
 * The combination multiplies polynomials over GF(2) modulo the CRC
 * polynomial (bit-reflected, as the CRC itself): appending `n` bytes to a
 * message multiplies its CRC by x^(8n), and x^(8n) is built from the
 * squares x^(2^k) (32 multiplications at most).
 *
 * @module
 */

import { crc32 as zlibCrc32 } from "node:zlib";

/** The CRC-32 polynomial, bit-reflected. */
const POLY = 0xedb88320;

/**
 * The CRC-32 of `bytes`, continuing from `previous`.
 *
 * @param bytes The bytes.
 * @param previous The CRC of the bytes before them.
 * @returns The CRC, an unsigned 32-bit integer.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  return bytes.byteLength === 0 ? previous : zlibCrc32(bytes, previous) >>> 0;
}

/** a(x) · b(x) modulo the polynomial, both bit-reflected. */
function multiply(a: number, b: number): number {
  let product = 0;
  for (let m = 0x80000000; m !== 0; m >>>= 1) {
    if ((a & m) !== 0) {
      product ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) modulo the polynomial, for k = 0..31 (x^1 is bit 30 reflected). */
const SQUARES: number[] = (() => {
  const table = [0x40000000];
  for (let k = 1; k < 32; k++) {
    table.push(multiply(table[k - 1]!, table[k - 1]!));
  }
  return table;
})();

/** x^(8n) modulo the polynomial. */
function shiftFor(n: number): number {
  let power = 0x80000000; // x^0
  let k = 3; // 8n = n · 2^3
  while (n > 0) {
    if (n % 2 === 1) power = multiply(SQUARES[k % 32]!, power);
    n = Math.floor(n / 2);
    k++;
  }
  return power;
}

/**
 * The CRC-32 of `A ‖ B` from the CRC of `A`, the CRC of `B` and `B`'s
 * length.
 *
 * @param first CRC of the first part.
 * @param second CRC of the second part.
 * @param secondLength Bytes in the second part.
 * @returns The CRC of both, an unsigned 32-bit integer.
 */
export function crc32Combine(
  first: number,
  second: number,
  secondLength: number,
): number {
  if (secondLength === 0) return first >>> 0;
  return (multiply(shiftFor(secondLength), first) ^ second) >>> 0;
}
