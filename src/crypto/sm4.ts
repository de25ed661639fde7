/**
 * SM4 (GB/T 32907-2016) in pure TypeScript: the block cipher, ECB and CBC
 * without padding, and CBC with PKCS#7 padding as OpenSSL's
 * `openssl enc -sm4-cbc` and MindSpore's `SM4-CBC` mode write it.
 *
 * The implementation is built for speed: the S-box and the linear transform
 * are folded into four 256-entry 32-bit tables ("T-tables"), data is read and
 * written through 32-bit views, the round keys are expanded once per key, and
 * nothing is allocated per block. CBC decryption works on two blocks at a
 * time; CBC encryption is one serial chain per stream, so
 * {@linkcode Sm4.encryptCbcMany} encrypts several independent streams
 * interleaved in one loop.
 *
 * **Timing.** Table lookups indexed by secret data are used on every round.
 * JavaScript cannot promise constant-time execution, and table-based ciphers
 * leak through cache timing to an attacker who shares the machine. Use this
 * module where that threat does not apply (files written on a machine you
 * trust), not to protect keys from co-located code.
 *
 * @example Encrypt and decrypt with CBC and PKCS#7 padding
 * ```ts
 * import { sm4 } from "@ckpt/monitor/sm4";
 * const key = crypto.getRandomValues(new Uint8Array(16));
 * const iv = crypto.getRandomValues(new Uint8Array(16));
 * const cipher = sm4(key);
 * const sealed = cipher.encryptCbc(new TextEncoder().encode("hello"), iv);
 * console.assert(sealed.length === 16);
 * const opened = cipher.decryptCbc(sealed, iv);
 * console.assert(new TextDecoder().decode(opened) === "hello");
 * cipher.destroy();
 * ```
 *
 * @module
 */

import { sm4Internals } from "./_sm4_hook.ts";

// ---------------------------------------------------------------------------
// Constants

// deno-fmt-ignore
const SBOX: Uint8Array = new Uint8Array([
  0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7, 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c, 0x05,
  0x2b, 0x67, 0x9a, 0x76, 0x2a, 0xbe, 0x04, 0xc3, 0xaa, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99,
  0x9c, 0x42, 0x50, 0xf4, 0x91, 0xef, 0x98, 0x7a, 0x33, 0x54, 0x0b, 0x43, 0xed, 0xcf, 0xac, 0x62,
  0xe4, 0xb3, 0x1c, 0xa9, 0xc9, 0x08, 0xe8, 0x95, 0x80, 0xdf, 0x94, 0xfa, 0x75, 0x8f, 0x3f, 0xa6,
  0x47, 0x07, 0xa7, 0xfc, 0xf3, 0x73, 0x17, 0xba, 0x83, 0x59, 0x3c, 0x19, 0xe6, 0x85, 0x4f, 0xa8,
  0x68, 0x6b, 0x81, 0xb2, 0x71, 0x64, 0xda, 0x8b, 0xf8, 0xeb, 0x0f, 0x4b, 0x70, 0x56, 0x9d, 0x35,
  0x1e, 0x24, 0x0e, 0x5e, 0x63, 0x58, 0xd1, 0xa2, 0x25, 0x22, 0x7c, 0x3b, 0x01, 0x21, 0x78, 0x87,
  0xd4, 0x00, 0x46, 0x57, 0x9f, 0xd3, 0x27, 0x52, 0x4c, 0x36, 0x02, 0xe7, 0xa0, 0xc4, 0xc8, 0x9e,
  0xea, 0xbf, 0x8a, 0xd2, 0x40, 0xc7, 0x38, 0xb5, 0xa3, 0xf7, 0xf2, 0xce, 0xf9, 0x61, 0x15, 0xa1,
  0xe0, 0xae, 0x5d, 0xa4, 0x9b, 0x34, 0x1a, 0x55, 0xad, 0x93, 0x32, 0x30, 0xf5, 0x8c, 0xb1, 0xe3,
  0x1d, 0xf6, 0xe2, 0x2e, 0x82, 0x66, 0xca, 0x60, 0xc0, 0x29, 0x23, 0xab, 0x0d, 0x53, 0x4e, 0x6f,
  0xd5, 0xdb, 0x37, 0x45, 0xde, 0xfd, 0x8e, 0x2f, 0x03, 0xff, 0x6a, 0x72, 0x6d, 0x6c, 0x5b, 0x51,
  0x8d, 0x1b, 0xaf, 0x92, 0xbb, 0xdd, 0xbc, 0x7f, 0x11, 0xd9, 0x5c, 0x41, 0x1f, 0x10, 0x5a, 0xd8,
  0x0a, 0xc1, 0x31, 0x88, 0xa5, 0xcd, 0x7b, 0xbd, 0x2d, 0x74, 0xd0, 0x12, 0xb8, 0xe5, 0xb4, 0xb0,
  0x89, 0x69, 0x97, 0x4a, 0x0c, 0x96, 0x77, 0x7e, 0x65, 0xb9, 0xf1, 0x09, 0xc5, 0x6e, 0xc6, 0x84,
  0x18, 0xf0, 0x7d, 0xec, 0x3a, 0xdc, 0x4d, 0x20, 0x79, 0xee, 0x5f, 0x3e, 0xd7, 0xcb, 0x39, 0x48,
]);

/** System parameter FK of the key schedule (big-endian words). */
const FK: readonly number[] = [0xa3b1bac6, 0x56aa3350, 0x677d9197, 0xb27022dc];

/** Bytes per block. */
const BLOCK = 16;

/**
 * True when the platform stores 32-bit words little-endian (every platform
 * Deno ships for). The tables and round keys are laid out for the native
 * order, so 32-bit views can be used on either.
 */
const LITTLE_ENDIAN: boolean =
  new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function _rotl(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

function _bswap(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) |
    (x >>> 24)) >>> 0;
}

/** Applies the S-box to each byte of a big-endian word (τ). */
function _tau(a: number): number {
  return ((SBOX[a >>> 24]! << 24) | (SBOX[(a >>> 16) & 0xff]! << 16) |
    (SBOX[(a >>> 8) & 0xff]! << 8) | SBOX[a & 0xff]!) >>> 0;
}

/**
 * The round function's tables, in native word order. A state word `w` read
 * through a native 32-bit view is turned into `T(w)` (τ then L, also in
 * native order) by `TA[w & 255] ^ TB[(w >>> 8) & 255] ^ TC[(w >>> 16) & 255]
 * ^ TD[w >>> 24]`: on little-endian machines the low byte of the native word
 * is the first (most significant) byte of the big-endian word, so the tables
 * hold byte-swapped entries and no word ever has to be swapped.
 */
const TA: Int32Array = new Int32Array(256);
const TB: Int32Array = new Int32Array(256);
const TC: Int32Array = new Int32Array(256);
const TD: Int32Array = new Int32Array(256);

for (let i = 0; i < 256; i++) {
  const s = SBOX[i]! << 24 >>> 0;
  // L(B) = B ^ (B <<< 2) ^ (B <<< 10) ^ (B <<< 18) ^ (B <<< 24)
  const t0 = (s ^ _rotl(s, 2) ^ _rotl(s, 10) ^ _rotl(s, 18) ^ _rotl(s, 24)) >>>
    0;
  const t1 = _rotl(t0, 24); // input byte in bits 16..23
  const t2 = _rotl(t0, 16); // bits 8..15
  const t3 = _rotl(t0, 8); // bits 0..7
  if (LITTLE_ENDIAN) {
    TA[i] = _bswap(t0);
    TB[i] = _bswap(t1);
    TC[i] = _bswap(t2);
    TD[i] = _bswap(t3);
  } else {
    TA[i] = t3;
    TB[i] = t2;
    TC[i] = t1;
    TD[i] = t0;
  }
}

// ---------------------------------------------------------------------------
// Key schedule

function _checkKey(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot use SM4 key: expected a Uint8Array, received ${
        key === null
          ? "null"
          : typeof key === "object"
          ? (key.constructor?.name ?? "object")
          : typeof key
      }`,
    );
  }
  if (key.length !== 16) {
    throw new RangeError(
      `Cannot use SM4 key: expected 16 bytes, received ${key.length}`,
    );
  }
  return key;
}

/**
 * Expands a 16-byte key into SM4's 32 encryption round keys
 * `rk0 … rk31`, as big-endian word values (the numbers the standard prints).
 * Decryption uses them in reverse order. Most callers want
 * {@linkcode sm4}, which does this once and keeps the keys private; this is
 * for tests against the standard's intermediate values. The caller owns the
 * returned array and should `fill(0)` it when done.
 *
 * @param key The 16-byte key.
 * @returns A new array of the 32 round keys.
 * @throws {TypeError} If `key` is not a `Uint8Array`.
 * @throws {RangeError} If `key` is not 16 bytes long.
 *
 * @example Round keys of the standard's example 1
 * ```ts
 * import { sm4KeySchedule } from "@ckpt/monitor/sm4";
 * const key = Uint8Array.from([
 *   0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
 *   0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
 * ]);
 * const rk = sm4KeySchedule(key);
 * console.assert(rk[0] === 0xf12186f9 && rk[31] === 0x9124a012);
 * rk.fill(0);
 * ```
 */
export function sm4KeySchedule(key: Uint8Array): Uint32Array {
  _checkKey(key);
  const rk = new Uint32Array(32);
  let k0 = ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) ^
    FK[0]!;
  let k1 = ((key[4]! << 24) | (key[5]! << 16) | (key[6]! << 8) | key[7]!) ^
    FK[1]!;
  let k2 = ((key[8]! << 24) | (key[9]! << 16) | (key[10]! << 8) | key[11]!) ^
    FK[2]!;
  let k3 = ((key[12]! << 24) | (key[13]! << 16) | (key[14]! << 8) | key[15]!) ^
    FK[3]!;
  for (let i = 0; i < 32; i++) {
    // CK[i] byte j = (4i + j) * 7 mod 256
    const c = 28 * i;
    const ck = (((c & 0xff) << 24) | (((c + 7) & 0xff) << 16) |
      (((c + 14) & 0xff) << 8) | ((c + 21) & 0xff)) >>> 0;
    const b = _tau((k1 ^ k2 ^ k3 ^ ck) >>> 0);
    // L'(B) = B ^ (B <<< 13) ^ (B <<< 23)
    const next = (k0 ^ b ^ _rotl(b, 13) ^ _rotl(b, 23)) >>> 0;
    rk[i] = next;
    k0 = k1;
    k1 = k2;
    k2 = k3;
    k3 = next;
  }
  k0 =
    k1 =
    k2 =
    k3 =
      0;
  return rk;
}

// ---------------------------------------------------------------------------
// Cores. `rk` holds 32 round keys in native word order; `src`/`dst` are
// native 32-bit views; `si`/`di` are word indices; `n` counts blocks; `iv` is
// the 4-word chaining value, updated in place.

/** ECB over `n` blocks (encryption or decryption, by the round keys given). */
function _ecb(
  rk: Int32Array,
  src: Int32Array,
  si: number,
  dst: Int32Array,
  di: number,
  n: number,
): void {
  const ta = TA, tb = TB, tc = TC, td = TD;
  for (let blk = 0; blk < n; blk++, si += 4, di += 4) {
    let x0 = src[si]!, x1 = src[si + 1]!, x2 = src[si + 2]!, x3 = src[si + 3]!;
    let t = 0;
    for (let r = 0; r < 32; r += 4) {
      t = x1 ^ x2 ^ rk[r]! ^ x3;
      x0 = x0 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x2 ^ x3 ^ rk[r + 1]! ^ x0;
      x1 = x1 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x3 ^ x0 ^ rk[r + 2]! ^ x1;
      x2 = x2 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x0 ^ x1 ^ rk[r + 3]! ^ x2;
      x3 = x3 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
    }
    dst[di] = x3;
    dst[di + 1] = x2;
    dst[di + 2] = x1;
    dst[di + 3] = x0;
  }
}

/** CBC encryption of `n` blocks: one serial chain. */
function _cbcEnc(
  rk: Int32Array,
  src: Int32Array,
  si: number,
  dst: Int32Array,
  di: number,
  n: number,
  iv: Int32Array,
): void {
  const ta = TA, tb = TB, tc = TC, td = TD;
  let c0 = iv[0]!, c1 = iv[1]!, c2 = iv[2]!, c3 = iv[3]!;
  for (let blk = 0; blk < n; blk++, si += 4, di += 4) {
    let x0 = src[si]! ^ c0, x1 = src[si + 1]! ^ c1;
    let x2 = src[si + 2]! ^ c2, x3 = src[si + 3]! ^ c3;
    let t = 0;
    for (let r = 0; r < 32; r += 4) {
      t = x1 ^ x2 ^ rk[r]! ^ x3;
      x0 = x0 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x2 ^ x3 ^ rk[r + 1]! ^ x0;
      x1 = x1 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x3 ^ x0 ^ rk[r + 2]! ^ x1;
      x2 = x2 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x0 ^ x1 ^ rk[r + 3]! ^ x2;
      x3 = x3 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
    }
    c0 = x3;
    c1 = x2;
    c2 = x1;
    c3 = x0;
    dst[di] = c0;
    dst[di + 1] = c1;
    dst[di + 2] = c2;
    dst[di + 3] = c3;
  }
  iv[0] = c0;
  iv[1] = c1;
  iv[2] = c2;
  iv[3] = c3;
}

/**
 * CBC encryption of `n` blocks of two independent streams, interleaved so
 * the CPU works on both dependency chains at once.
 */
function _cbcEnc2(
  rk: Int32Array,
  sa: Int32Array,
  sai: number,
  da: Int32Array,
  dai: number,
  ivA: Int32Array,
  sb: Int32Array,
  sbi: number,
  db: Int32Array,
  dbi: number,
  ivB: Int32Array,
  n: number,
): void {
  const ta = TA, tb = TB, tc = TC, td = TD;
  let a0 = ivA[0]!, a1 = ivA[1]!, a2 = ivA[2]!, a3 = ivA[3]!;
  let b0 = ivB[0]!, b1 = ivB[1]!, b2 = ivB[2]!, b3 = ivB[3]!;
  for (
    let blk = 0;
    blk < n;
    blk++, sai += 4, dai += 4, sbi += 4, dbi += 4
  ) {
    let x0 = sa[sai]! ^ a0, x1 = sa[sai + 1]! ^ a1;
    let x2 = sa[sai + 2]! ^ a2, x3 = sa[sai + 3]! ^ a3;
    let y0 = sb[sbi]! ^ b0, y1 = sb[sbi + 1]! ^ b1;
    let y2 = sb[sbi + 2]! ^ b2, y3 = sb[sbi + 3]! ^ b3;
    let t = 0, u = 0, k = 0;
    for (let r = 0; r < 32; r += 4) {
      k = rk[r]!;
      t = x1 ^ x2 ^ k ^ x3;
      u = y1 ^ y2 ^ k ^ y3;
      x0 = x0 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y0 = y0 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
      k = rk[r + 1]!;
      t = x2 ^ x3 ^ k ^ x0;
      u = y2 ^ y3 ^ k ^ y0;
      x1 = x1 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y1 = y1 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
      k = rk[r + 2]!;
      t = x3 ^ x0 ^ k ^ x1;
      u = y3 ^ y0 ^ k ^ y1;
      x2 = x2 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y2 = y2 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
      k = rk[r + 3]!;
      t = x0 ^ x1 ^ k ^ x2;
      u = y0 ^ y1 ^ k ^ y2;
      x3 = x3 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y3 = y3 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
    }
    a0 = x3;
    a1 = x2;
    a2 = x1;
    a3 = x0;
    b0 = y3;
    b1 = y2;
    b2 = y1;
    b3 = y0;
    da[dai] = a0;
    da[dai + 1] = a1;
    da[dai + 2] = a2;
    da[dai + 3] = a3;
    db[dbi] = b0;
    db[dbi + 1] = b1;
    db[dbi + 2] = b2;
    db[dbi + 3] = b3;
  }
  ivA[0] = a0;
  ivA[1] = a1;
  ivA[2] = a2;
  ivA[3] = a3;
  ivB[0] = b0;
  ivB[1] = b1;
  ivB[2] = b2;
  ivB[3] = b3;
}

/**
 * CBC decryption of `n` blocks, two blocks at a time (they are independent).
 * Every ciphertext word is read before the block's plaintext is written, so
 * `src` and `dst` may be the same memory.
 */
function _cbcDec(
  rk: Int32Array,
  src: Int32Array,
  si: number,
  dst: Int32Array,
  di: number,
  n: number,
  iv: Int32Array,
): void {
  const ta = TA, tb = TB, tc = TC, td = TD;
  let p0 = iv[0]!, p1 = iv[1]!, p2 = iv[2]!, p3 = iv[3]!;
  let blk = 0;
  for (; blk + 1 < n; blk += 2, si += 8, di += 8) {
    const c0 = src[si]!, c1 = src[si + 1]!, c2 = src[si + 2]!;
    const c3 = src[si + 3]!, e0 = src[si + 4]!, e1 = src[si + 5]!;
    const e2 = src[si + 6]!, e3 = src[si + 7]!;
    let x0 = c0, x1 = c1, x2 = c2, x3 = c3;
    let y0 = e0, y1 = e1, y2 = e2, y3 = e3;
    let t = 0, u = 0, k = 0;
    for (let r = 0; r < 32; r += 4) {
      k = rk[r]!;
      t = x1 ^ x2 ^ k ^ x3;
      u = y1 ^ y2 ^ k ^ y3;
      x0 = x0 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y0 = y0 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
      k = rk[r + 1]!;
      t = x2 ^ x3 ^ k ^ x0;
      u = y2 ^ y3 ^ k ^ y0;
      x1 = x1 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y1 = y1 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
      k = rk[r + 2]!;
      t = x3 ^ x0 ^ k ^ x1;
      u = y3 ^ y0 ^ k ^ y1;
      x2 = x2 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y2 = y2 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
      k = rk[r + 3]!;
      t = x0 ^ x1 ^ k ^ x2;
      u = y0 ^ y1 ^ k ^ y2;
      x3 = x3 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      y3 = y3 ^ (ta[u & 255]! ^ tb[(u >>> 8) & 255]!) ^
        (tc[(u >>> 16) & 255]! ^ td[u >>> 24]!);
    }
    dst[di] = x3 ^ p0;
    dst[di + 1] = x2 ^ p1;
    dst[di + 2] = x1 ^ p2;
    dst[di + 3] = x0 ^ p3;
    dst[di + 4] = y3 ^ c0;
    dst[di + 5] = y2 ^ c1;
    dst[di + 6] = y1 ^ c2;
    dst[di + 7] = y0 ^ c3;
    p0 = e0;
    p1 = e1;
    p2 = e2;
    p3 = e3;
  }
  if (blk < n) {
    const c0 = src[si]!, c1 = src[si + 1]!, c2 = src[si + 2]!;
    const c3 = src[si + 3]!;
    let x0 = c0, x1 = c1, x2 = c2, x3 = c3;
    let t = 0;
    for (let r = 0; r < 32; r += 4) {
      t = x1 ^ x2 ^ rk[r]! ^ x3;
      x0 = x0 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x2 ^ x3 ^ rk[r + 1]! ^ x0;
      x1 = x1 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x3 ^ x0 ^ rk[r + 2]! ^ x1;
      x2 = x2 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
      t = x0 ^ x1 ^ rk[r + 3]! ^ x2;
      x3 = x3 ^ (ta[t & 255]! ^ tb[(t >>> 8) & 255]!) ^
        (tc[(t >>> 16) & 255]! ^ td[t >>> 24]!);
    }
    dst[di] = x3 ^ p0;
    dst[di + 1] = x2 ^ p1;
    dst[di + 2] = x1 ^ p2;
    dst[di + 3] = x0 ^ p3;
    p0 = c0;
    p1 = c1;
    p2 = c2;
    p3 = c3;
  }
  iv[0] = p0;
  iv[1] = p1;
  iv[2] = p2;
  iv[3] = p3;
}

// ---------------------------------------------------------------------------
// Scratch memory and alignment. Typed-array views need 4-byte alignment;
// unaligned data goes through these buffers in chunks. JavaScript runs one
// synchronous call at a time per thread, so module-level scratch is safe.

const CHUNK_BLOCKS = 4096; // 64 KiB
const SCRATCH_IN = new Int32Array(CHUNK_BLOCKS * 4);
const SCRATCH_OUT = new Int32Array(CHUNK_BLOCKS * 4);
const SCRATCH_IN_U8 = new Uint8Array(SCRATCH_IN.buffer);
const SCRATCH_OUT_U8 = new Uint8Array(SCRATCH_OUT.buffer);
/** One block (the padded tail, single blocks). */
const BLOCK_SCRATCH = new Int32Array(4);
const BLOCK_SCRATCH_U8 = new Uint8Array(BLOCK_SCRATCH.buffer);

/** A native 32-bit view of the first `blocks` blocks of `u8`, or null. */
function _view(u8: Uint8Array, blocks: number): Int32Array | null {
  if ((u8.byteOffset & 3) !== 0) return null;
  return new Int32Array(u8.buffer, u8.byteOffset, blocks * 4);
}

type _Core = (
  src: Int32Array,
  si: number,
  dst: Int32Array,
  di: number,
  n: number,
) => void;

/**
 * Runs `core` over the first `blocks` blocks of `src` into `dst`, through
 * 32-bit views when both are aligned, else in chunks through scratch buffers
 * (which are wiped afterwards).
 */
function _run(
  src: Uint8Array,
  dst: Uint8Array,
  blocks: number,
  core: _Core,
): void {
  if (blocks === 0) return;
  const sv = _view(src, blocks);
  const dv = _view(dst, blocks);
  if (sv !== null && dv !== null) {
    core(sv, 0, dv, 0, blocks);
    return;
  }
  let used = 0;
  for (let done = 0; done < blocks; done += CHUNK_BLOCKS) {
    const n = Math.min(CHUNK_BLOCKS, blocks - done);
    const bytes = n * BLOCK;
    const off = done * BLOCK;
    let s: Int32Array, si: number;
    if (sv !== null) {
      s = sv;
      si = done * 4;
    } else {
      SCRATCH_IN_U8.set(src.subarray(off, off + bytes));
      s = SCRATCH_IN;
      si = 0;
    }
    if (dv !== null) {
      core(s, si, dv, done * 4, n);
    } else {
      core(s, si, SCRATCH_OUT, 0, n);
      dst.set(SCRATCH_OUT_U8.subarray(0, bytes), off);
    }
    used = Math.max(used, bytes);
  }
  SCRATCH_IN_U8.fill(0, 0, used);
  SCRATCH_OUT_U8.fill(0, 0, used);
}

// ---------------------------------------------------------------------------
// Public API

/**
 * The one error every failed SM4-CBC decryption throws, whatever the cause
 * (a ciphertext length that is not a positive multiple of 16, or bad PKCS#7
 * padding, which is what a wrong key usually produces). The message is the
 * same for every cause, so it cannot be used as a padding oracle. The
 * framing layer maps it to `DecryptionError`.
 *
 * @example
 * ```ts
 * import { sm4, Sm4DecryptError } from "@ckpt/monitor/sm4";
 * const c = sm4(new Uint8Array(16));
 * try {
 *   c.decryptCbc(new Uint8Array(16), new Uint8Array(16));
 * } catch (e) {
 *   console.assert(e instanceof Sm4DecryptError);
 * }
 * ```
 */
export class Sm4DecryptError extends Error {
  /**
   * Makes the error. Its message never says which check failed.
   *
   * @param options Standard error options.
   */
  constructor(options?: ErrorOptions) {
    super("Cannot decrypt SM4-CBC data: wrong key or corrupted data", options);
    this.name = "Sm4DecryptError";
  }
}

/**
 * One stream for {@linkcode Sm4.encryptCbcMany}.
 *
 * @example
 * ```ts
 * import { sm4, type Sm4CbcItem } from "@ckpt/monitor/sm4";
 * const item: Sm4CbcItem = { plain: new Uint8Array(40), iv: new Uint8Array(16) };
 * const [ct] = sm4(new Uint8Array(16)).encryptCbcMany([item]);
 * console.assert(ct!.length === 48);
 * ```
 */
export interface Sm4CbcItem {
  /** The plaintext of this stream (any length). Not modified. */
  plain: Uint8Array;
  /** This stream's 16-byte IV. Not modified. */
  iv: Uint8Array;
  /**
   * Where to write the ciphertext: at least `16 * (floor(plain.length / 16)
   * + 1)` bytes. A new buffer is allocated when absent.
   */
  out?: Uint8Array;
}

/**
 * An SM4 cipher with its round keys expanded, made by {@linkcode sm4}.
 *
 * No method modifies its input buffers. Every method that takes `out` writes
 * there instead of allocating; `out` must not partly overlap the input
 * (exactly the same memory is allowed: in-place operation). Table lookups
 * in JavaScript cannot promise constant time (see the module docs).
 *
 * @example Reuse one output buffer for many blocks of the same size
 * ```ts
 * import { sm4, type Sm4 } from "@ckpt/monitor/sm4";
 * const cipher: Sm4 = sm4(crypto.getRandomValues(new Uint8Array(16)));
 * const out = new Uint8Array(16 * (Math.floor(1000 / 16) + 1));
 * for (let i = 0; i < 3; i++) {
 *   const iv = crypto.getRandomValues(new Uint8Array(16));
 *   const ct = cipher.encryptCbc(new Uint8Array(1000), iv, out);
 *   console.assert(ct === out);
 * }
 * cipher.destroy();
 * ```
 */
export interface Sm4 {
  /**
   * Encrypts one 16-byte block.
   *
   * @param block 16 bytes.
   * @param out Where to write the 16 ciphertext bytes (new when absent).
   * @returns The ciphertext block (`out` when given).
   * @throws {RangeError} If `block` or `out` is not 16 bytes.
   */
  encryptBlock(block: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * Decrypts one 16-byte block.
   *
   * @param block 16 bytes.
   * @param out Where to write the 16 plaintext bytes (new when absent).
   * @returns The plaintext block (`out` when given).
   * @throws {RangeError} If `block` or `out` is not 16 bytes.
   */
  decryptBlock(block: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * ECB encryption without padding.
   *
   * @param plain A multiple of 16 bytes.
   * @param out At least `plain.length` bytes (new when absent).
   * @returns The ciphertext, `plain.length` bytes.
   * @throws {RangeError} If `plain` is not a multiple of 16 bytes or `out`
   * is too short.
   */
  encryptEcb(plain: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * ECB decryption without padding.
   *
   * @param cipher A multiple of 16 bytes.
   * @param out At least `cipher.length` bytes (new when absent).
   * @returns The plaintext, `cipher.length` bytes.
   * @throws {RangeError} If `cipher` is not a multiple of 16 bytes or `out`
   * is too short.
   */
  decryptEcb(cipher: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * CBC encryption without padding.
   *
   * @param plain A multiple of 16 bytes.
   * @param iv 16 bytes.
   * @param out At least `plain.length` bytes (new when absent).
   * @returns The ciphertext, `plain.length` bytes.
   * @throws {RangeError} If a length is wrong.
   */
  encryptCbcNoPad(
    plain: Uint8Array,
    iv: Uint8Array,
    out?: Uint8Array,
  ): Uint8Array;
  /**
   * CBC decryption without padding.
   *
   * @param cipher A multiple of 16 bytes.
   * @param iv 16 bytes.
   * @param out At least `cipher.length` bytes (new when absent).
   * @returns The plaintext, `cipher.length` bytes.
   * @throws {RangeError} If a length is wrong.
   */
  decryptCbcNoPad(
    cipher: Uint8Array,
    iv: Uint8Array,
    out?: Uint8Array,
  ): Uint8Array;
  /**
   * CBC encryption with PKCS#7 padding (what `openssl enc -sm4-cbc` and
   * MindSpore write). The output is `16 * (floor(n / 16) + 1)` bytes for
   * `n` plaintext bytes.
   *
   * @param plain The plaintext, any length.
   * @param iv 16 bytes.
   * @param out At least `16 * (floor(plain.length / 16) + 1)` bytes, so
   * callers can reuse buffers (new when absent).
   * @returns The ciphertext: `out` (or a view of its start when `out` is
   * longer than needed).
   * @throws {RangeError} If `iv` is not 16 bytes or `out` is too short.
   */
  encryptCbc(plain: Uint8Array, iv: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * CBC decryption with the PKCS#7 padding checked. The check looks at all
   * 16 bytes of the last block without an early exit. On failure `out` is
   * zeroed and {@linkcode Sm4DecryptError} is thrown, with the same message
   * for every cause.
   *
   * @param cipher The ciphertext.
   * @param iv 16 bytes.
   * @param out At least `cipher.length` bytes (new when absent).
   * @returns A view of the plaintext at the start of `out`.
   * @throws {Sm4DecryptError} If `cipher` is not a positive multiple of 16
   * bytes or the padding is bad.
   * @throws {RangeError} If `iv` is not 16 bytes or `out` is too short.
   */
  decryptCbc(cipher: Uint8Array, iv: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * CBC + PKCS#7 encryption of several independent streams (each with its
   * own IV), interleaved two at a time in one loop, which is faster than
   * encrypting them one after another because CBC encryption of one stream
   * is a serial chain. Each result equals `encryptCbc(plain, iv, out)`.
   * Two lanes run at once and each takes the next stream when its own ends,
   * so streams of unequal length and odd counts keep both busy. Streams whose
   * buffers are not 4-byte aligned are encrypted on their own. All items are
   * checked before any is encrypted.
   *
   * @param items The streams.
   * @returns The ciphertexts, in the order of `items`.
   * @throws {RangeError} If an IV is not 16 bytes or an `out` is too short.
   */
  encryptCbcMany(items: readonly Sm4CbcItem[]): Uint8Array[];
  /**
   * Wipes the round keys. Every later call throws a `TypeError`.
   */
  destroy(): void;
}

function _checkBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot use SM4 ${what}: expected a Uint8Array, received ${
        value === null ? "null" : typeof value
      }`,
    );
  }
  return value;
}

function _checkIv(iv: unknown): Uint8Array {
  const v = _checkBytes(iv, "IV");
  if (v.length !== BLOCK) {
    throw new RangeError(
      `Cannot use SM4 IV: expected 16 bytes, received ${v.length}`,
    );
  }
  return v;
}

function _checkMultiple(data: Uint8Array, what: string): void {
  if (data.length % BLOCK !== 0) {
    throw new RangeError(
      `Cannot process SM4 ${what} without padding: length must be a multiple of 16, received ${data.length}`,
    );
  }
}

/** Checks or allocates `out`; returns a view of exactly `len` bytes. */
function _output(
  out: Uint8Array | undefined,
  len: number,
  input: Uint8Array,
): Uint8Array {
  if (out === undefined) return new Uint8Array(len);
  _checkBytes(out, "output");
  if (out.length < len) {
    throw new RangeError(
      `Cannot write SM4 output: "out" needs at least ${len} bytes, received ${out.length}`,
    );
  }
  if (
    out.buffer === input.buffer && out.byteOffset !== input.byteOffset &&
    out.byteOffset < input.byteOffset + input.length &&
    input.byteOffset < out.byteOffset + len
  ) {
    throw new RangeError(
      `Cannot write SM4 output: "out" partly overlaps the input`,
    );
  }
  return out.length === len ? out : out.subarray(0, len);
}

/** Loads a 16-byte IV into a 4-word native chaining value. */
function _loadIv(iv: Uint8Array, words: Int32Array): void {
  new Uint8Array(words.buffer, words.byteOffset, BLOCK).set(iv);
}

/** A stream in progress inside `encryptCbcMany`. */
interface _Lane {
  plain: Uint8Array;
  out: Uint8Array;
  src: Int32Array;
  dst: Int32Array;
  /** Word index of the next block. */
  pos: number;
  /** Full blocks still to encrypt. */
  left: number;
  chain: Int32Array;
}

class _Sm4 implements Sm4 {
  /** Encryption round keys (0..31) then decryption ones (32..63). */
  #rk: Int32Array;
  #enc: Int32Array;
  #dec: Int32Array;
  #destroyed = false;
  #ivA = new Int32Array(4);
  #ivB = new Int32Array(4);

  static {
    sm4Internals.roundKeysOf = (c) => (c as _Sm4).#rk;
  }

  constructor(key: Uint8Array) {
    const rk = sm4KeySchedule(key);
    this.#rk = new Int32Array(64);
    for (let i = 0; i < 32; i++) {
      const w = LITTLE_ENDIAN ? _bswap(rk[i]!) : rk[i]!;
      this.#rk[i] = w;
      this.#rk[63 - i] = w;
    }
    rk.fill(0);
    this.#enc = this.#rk.subarray(0, 32);
    this.#dec = this.#rk.subarray(32, 64);
  }

  #alive(): void {
    if (this.#destroyed) {
      throw new TypeError("Cannot use SM4 cipher: it was destroyed");
    }
  }

  #block(block: Uint8Array, out: Uint8Array | undefined, rk: Int32Array) {
    this.#alive();
    _checkBytes(block, "block");
    if (block.length !== BLOCK) {
      throw new RangeError(
        `Cannot process SM4 block: expected 16 bytes, received ${block.length}`,
      );
    }
    if (out !== undefined && out.length !== BLOCK) {
      throw new RangeError(
        `Cannot write SM4 block: "out" must be 16 bytes, received ${out.length}`,
      );
    }
    const o = out ?? new Uint8Array(BLOCK);
    BLOCK_SCRATCH_U8.set(block);
    _ecb(rk, BLOCK_SCRATCH, 0, BLOCK_SCRATCH, 0, 1);
    o.set(BLOCK_SCRATCH_U8);
    BLOCK_SCRATCH.fill(0);
    return o;
  }

  encryptBlock(block: Uint8Array, out?: Uint8Array): Uint8Array {
    return this.#block(block, out, this.#enc);
  }

  decryptBlock(block: Uint8Array, out?: Uint8Array): Uint8Array {
    return this.#block(block, out, this.#dec);
  }

  #ecbRun(data: Uint8Array, out: Uint8Array | undefined, rk: Int32Array) {
    this.#alive();
    _checkBytes(data, "data");
    _checkMultiple(data, "ECB data");
    const o = _output(out, data.length, data);
    _run(data, o, data.length >>> 4, (s, si, d, di, n) => {
      _ecb(rk, s, si, d, di, n);
    });
    return o;
  }

  encryptEcb(plain: Uint8Array, out?: Uint8Array): Uint8Array {
    return this.#ecbRun(plain, out, this.#enc);
  }

  decryptEcb(cipher: Uint8Array, out?: Uint8Array): Uint8Array {
    return this.#ecbRun(cipher, out, this.#dec);
  }

  encryptCbcNoPad(
    plain: Uint8Array,
    iv: Uint8Array,
    out?: Uint8Array,
  ): Uint8Array {
    this.#alive();
    _checkBytes(plain, "plaintext");
    _checkIv(iv);
    _checkMultiple(plain, "CBC plaintext");
    const o = _output(out, plain.length, plain);
    const chain = this.#ivA;
    _loadIv(iv, chain);
    const rk = this.#enc;
    _run(plain, o, plain.length >>> 4, (s, si, d, di, n) => {
      _cbcEnc(rk, s, si, d, di, n, chain);
    });
    chain.fill(0);
    return o;
  }

  decryptCbcNoPad(
    cipher: Uint8Array,
    iv: Uint8Array,
    out?: Uint8Array,
  ): Uint8Array {
    this.#alive();
    _checkBytes(cipher, "ciphertext");
    _checkIv(iv);
    _checkMultiple(cipher, "CBC ciphertext");
    const o = _output(out, cipher.length, cipher);
    this.#cbcDecInto(cipher, iv, o);
    return o;
  }

  #cbcDecInto(cipher: Uint8Array, iv: Uint8Array, o: Uint8Array): void {
    const chain = this.#ivA;
    _loadIv(iv, chain);
    const rk = this.#dec;
    _run(cipher, o, cipher.length >>> 4, (s, si, d, di, n) => {
      _cbcDec(rk, s, si, d, di, n, chain);
    });
    chain.fill(0);
  }

  /** Encrypts the padded last block of `plain` with the chain in `chain`. */
  #encryptTail(plain: Uint8Array, o: Uint8Array, chain: Int32Array): void {
    const full = plain.length & ~15;
    const rest = plain.length - full;
    const pad = BLOCK - rest;
    BLOCK_SCRATCH_U8.set(plain.subarray(full));
    BLOCK_SCRATCH_U8.fill(pad, rest);
    _cbcEnc(this.#enc, BLOCK_SCRATCH, 0, BLOCK_SCRATCH, 0, 1, chain);
    o.set(BLOCK_SCRATCH_U8, full);
    BLOCK_SCRATCH.fill(0);
    chain.fill(0);
  }

  encryptCbc(plain: Uint8Array, iv: Uint8Array, out?: Uint8Array): Uint8Array {
    this.#alive();
    _checkBytes(plain, "plaintext");
    _checkIv(iv);
    const full = plain.length >>> 4;
    const o = _output(out, (full + 1) * BLOCK, plain);
    const chain = this.#ivA;
    _loadIv(iv, chain);
    const rk = this.#enc;
    _run(plain, o, full, (s, si, d, di, n) => {
      _cbcEnc(rk, s, si, d, di, n, chain);
    });
    this.#encryptTail(plain, o, chain);
    return o;
  }

  decryptCbc(cipher: Uint8Array, iv: Uint8Array, out?: Uint8Array): Uint8Array {
    this.#alive();
    _checkBytes(cipher, "ciphertext");
    _checkIv(iv);
    const len = cipher.length;
    if (len === 0 || (len & 15) !== 0) throw new Sm4DecryptError();
    const o = _output(out, len, cipher);
    this.#cbcDecInto(cipher, iv, o);
    // Constant-shape PKCS#7 check: all 16 bytes of the last block are
    // examined whatever the padding byte says.
    const p = o[len - 1]!;
    let bad = (p - 1) >>> 4; // non-zero unless 1 <= p <= 16
    for (let i = 0; i < BLOCK; i++) {
      const inPad = -((i - p) >>> 31); // all ones when i < p
      bad |= (o[len - 1 - i]! ^ p) & inPad;
    }
    if (bad !== 0) {
      o.fill(0);
      throw new Sm4DecryptError();
    }
    return o.subarray(0, len - p);
  }

  encryptCbcMany(items: readonly Sm4CbcItem[]): Uint8Array[] {
    this.#alive();
    if (!Array.isArray(items)) {
      throw new TypeError(
        `Cannot encrypt SM4 streams: expected an array of items, received ${typeof items}`,
      );
    }
    // Check everything before encrypting anything.
    const outs: Uint8Array[] = [];
    for (const it of items) {
      _checkBytes(it.plain, "plaintext");
      _checkIv(it.iv);
      outs.push(
        _output(it.out, ((it.plain.length >>> 4) + 1) * BLOCK, it.plain),
      );
    }
    const pending: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!, o = outs[i]!;
      if ((it.plain.byteOffset & 3) === 0 && (o.byteOffset & 3) === 0) {
        pending.push(i);
      } else {
        this.encryptCbc(it.plain, it.iv, o);
      }
    }
    // Two lanes: each takes the next stream as soon as its own is done, so
    // both dependency chains stay busy whatever the lengths; only the tail of
    // the last stream runs alone.
    const rk = this.#enc;
    let next = 0;
    const take = (chain: Int32Array): _Lane | null => {
      if (next >= pending.length) return null;
      const i = pending[next++]!;
      const it = items[i]!, o = outs[i]!;
      const blocks = it.plain.length >>> 4;
      _loadIv(it.iv, chain);
      return {
        plain: it.plain,
        out: o,
        src: new Int32Array(it.plain.buffer, it.plain.byteOffset, blocks * 4),
        dst: new Int32Array(o.buffer, o.byteOffset, blocks * 4),
        pos: 0,
        left: blocks,
        chain,
      };
    };
    let a = take(this.#ivA), b = take(this.#ivB);
    while (a !== null && b !== null) {
      const m = Math.min(a.left, b.left);
      _cbcEnc2(
        rk,
        a.src,
        a.pos,
        a.dst,
        a.pos,
        a.chain,
        b.src,
        b.pos,
        b.dst,
        b.pos,
        b.chain,
        m,
      );
      a.pos += 4 * m;
      a.left -= m;
      b.pos += 4 * m;
      b.left -= m;
      if (a.left === 0) {
        this.#encryptTail(a.plain, a.out, a.chain);
        a = take(a.chain);
      }
      if (b.left === 0) {
        this.#encryptTail(b.plain, b.out, b.chain);
        b = take(b.chain);
      }
    }
    const last = a ?? b;
    if (last !== null) {
      _cbcEnc(
        rk,
        last.src,
        last.pos,
        last.dst,
        last.pos,
        last.left,
        last.chain,
      );
      this.#encryptTail(last.plain, last.out, last.chain);
    }
    return outs;
  }

  destroy(): void {
    this.#rk.fill(0);
    this.#ivA.fill(0);
    this.#ivB.fill(0);
    this.#destroyed = true;
  }
}

/**
 * Makes an SM4 cipher for `key`: the key schedule runs once here, and the
 * returned {@linkcode Sm4} encrypts and decrypts blocks, ECB and CBC (with
 * or without PKCS#7 padding) with it. Call `destroy()` when done to wipe the
 * round keys. The key itself is not kept or modified.
 *
 * Table lookups in JavaScript cannot promise constant time: see the module
 * docs.
 *
 * @param key The 16-byte key.
 * @returns The cipher.
 * @throws {TypeError} If `key` is not a `Uint8Array`.
 * @throws {RangeError} If `key` is not 16 bytes long.
 *
 * @example The standard's example 1
 * ```ts
 * import { sm4 } from "@ckpt/monitor/sm4";
 * const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));
 * const key = hex("0123456789abcdeffedcba9876543210");
 * const c = sm4(key);
 * const ct = c.encryptBlock(key);
 * console.assert(ct[0] === 0x68 && ct[15] === 0x46);
 * console.assert(c.decryptBlock(ct).every((b, i) => b === key[i]));
 * c.destroy();
 * ```
 */
export function sm4(key: Uint8Array): Sm4 {
  _checkKey(key);
  return new _Sm4(key);
}
