// Internal: zlib's CRC-32 in any runtime. Deno and Node.js have zlib's own
// (SIMD, ~20 GB/s here), reached through `process.getBuiltinModule` so that
// nothing imports `node:zlib` statically and a browser bundle still loads;
// elsewhere (a browser) a slicing-by-16 table version in plain JavaScript is
// used, reading aligned 32-bit words.

import { nodeBuiltin } from "./_builtin.ts";

type Crc32Fn = (bytes: Uint8Array, seed: number) => number;

/**
 * Sixteen 256-entry tables for slicing-by-16 (the reflected polynomial), one
 * after the other: table k is entries `k * 256 .. k * 256 + 255`, the CRC of
 * a byte followed by k zero bytes. Signed, so that every entry is a small
 * integer to the JavaScript engine.
 */
function makeTables(): Int32Array {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]! >>> 0;
    for (let k = 1; k < 16; k++) {
      c = (t[c & 0xff]! ^ (c >>> 8)) >>> 0;
      t[k * 256 + n] = c;
    }
  }
  return t;
}

let tables: Int32Array | null = null;

/** The slicing-by-16 tables (built once), for {@linkcode crc32Slice16}. */
export function crc32Tables(): Int32Array {
  return tables ??= makeTables();
}

/**
 * zlib's CRC-32 of `bytes`, continuing from `seed`, slicing by 16 with the
 * tables `t` ({@linkcode crc32Tables}). The bytes up to the first 4-byte
 * boundary go one at a time, then 16 at a time as four 32-bit words read
 * through an `Int32Array` view (little-endian machines; elsewhere bytes are
 * assembled by hand), then the rest one at a time. It uses nothing but its
 * arguments, so its source text can run elsewhere (the OPFS store's helper
 * Worker).
 */
export function crc32Slice16(
  t: Int32Array,
  seed: number,
  bytes: Uint8Array,
): number {
  let c = ~seed;
  let i = 0;
  const n = bytes.length;
  if (n >= 64 && new Uint8Array(Uint32Array.of(1).buffer)[0] === 1) {
    const head = (4 - (bytes.byteOffset & 3)) & 3;
    for (; i < head; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    const count = ((n - i) >>> 4) << 2;
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, count);
    for (let j = 0; j < count; j += 4) {
      const a = w[j]! ^ c;
      const b = w[j + 1]!;
      const d = w[j + 2]!;
      const e = w[j + 3]!;
      c = t[3840 + (a & 0xff)]! ^ t[3584 + ((a >>> 8) & 0xff)]! ^
        t[3328 + ((a >>> 16) & 0xff)]! ^ t[3072 + (a >>> 24)]! ^
        t[2816 + (b & 0xff)]! ^ t[2560 + ((b >>> 8) & 0xff)]! ^
        t[2304 + ((b >>> 16) & 0xff)]! ^ t[2048 + (b >>> 24)]! ^
        t[1792 + (d & 0xff)]! ^ t[1536 + ((d >>> 8) & 0xff)]! ^
        t[1280 + ((d >>> 16) & 0xff)]! ^ t[1024 + (d >>> 24)]! ^
        t[768 + (e & 0xff)]! ^ t[512 + ((e >>> 8) & 0xff)]! ^
        t[256 + ((e >>> 16) & 0xff)]! ^ t[e >>> 24]!;
    }
    i += count << 2;
  }
  for (; i + 8 <= n; i += 8) {
    const a = (bytes[i]! | bytes[i + 1]! << 8 | bytes[i + 2]! << 16 |
      bytes[i + 3]! << 24) ^ c;
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** zlib's CRC-32 of `bytes`, continuing from `seed`, in plain JavaScript. */
export function crc32Portable(bytes: Uint8Array, seed = 0): number {
  return crc32Slice16(crc32Tables(), seed, bytes);
}

function native(): Crc32Fn | null {
  const zlib = nodeBuiltin("node:zlib") as { crc32?: Crc32Fn } | null;
  return typeof zlib?.crc32 === "function" ? zlib.crc32 : null;
}

const crc32Impl: Crc32Fn = native() ?? crc32Portable;

/**
 * zlib's CRC-32 of `bytes` (the one `gzip`, Python's `zlib.crc32` and
 * MindSpore's `crc_num` use), continuing from `previous`; unsigned.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  return bytes.byteLength === 0
    ? previous >>> 0
    : crc32Impl(bytes, previous) >>> 0;
}

// The CRC of a concatenation from the CRCs of its parts (zlib's
// crc32_combine), so parts checked in any order, or on other threads, still
// give the CRC of the whole file: appending n bytes multiplies a CRC by
// x^(8n) modulo the polynomial, built from the squares x^(2^k).

/** The CRC-32 polynomial, bit-reflected. */
const POLY = 0xedb88320;

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
