// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The block header of MindSpore's encrypted checkpoint framing: its magic
 * numbers, lengths and checks, and telling an encrypted file (or a damaged
 * one) from a plain one by its first bytes. See `framing.ts` for the
 * layout.
 *
 * @module
 */

import type { EncMode } from "./cipher.ts";

/** The magic number of each mode's blocks. */
export const MAGIC: Readonly<Record<EncMode, number>> = {
  "AES-GCM": 0x7F3A5ED8,
  "AES-CBC": 0x7F3A5ED9,
  "SM4-CBC": 0x7F3A5EDA,
};

const MIB = 1024 * 1024;

/** The largest `cipher_len` MindSpore's reader accepts: 64 MiB + 50 bytes. */
export const MAX_CIPHER_LEN = 64 * MIB + 50;

/** Bytes of a block header: 48 with the GCM tag, 32 without. */
export function _headerLength(mode: EncMode): number {
  return mode === "AES-GCM" ? 48 : 32;
}

/**
 * The cipher a file is encrypted with, read from the magic number in its
 * first four bytes.
 *
 * @param firstBytes The start of the file (at least 4 bytes to detect
 * anything).
 * @returns The mode, or `null` when the bytes are not a block magic (a plain
 * file).
 *
 * @example
 * ```ts
 * import { detectCipher } from "@ckpt/monitor";
 * console.assert(detectCipher(new Uint8Array([0xd8, 0x5e, 0x3a, 0x7f])) === "AES-GCM");
 * console.assert(detectCipher(new Uint8Array([0x0a, 0x10, 0, 0])) === null);
 * ```
 */
export function detectCipher(firstBytes: Uint8Array): EncMode | null {
  if (firstBytes.byteLength < 4) return null;
  const magic = new DataView(
    firstBytes.buffer,
    firstBytes.byteOffset,
    4,
  ).getUint32(0, true);
  for (const mode of Object.keys(MAGIC) as EncMode[]) {
    if (MAGIC[mode] === magic) return mode;
  }
  return null;
}

/** What one block header says. */
export interface _Header {
  cipherLength: number;
  iv: Uint8Array;
  /** GCM tag, else empty. */
  tag: Uint8Array;
}

/**
 * Reads and checks the block header at `at` of `bytes`: magic against
 * `mode`, IV length, `block_len` against `cipher_len`, `cipher_len` bounds.
 */
export function _parseHeader(
  bytes: Uint8Array,
  at: number,
  mode: EncMode,
): _Header {
  const gcm = mode === "AES-GCM";
  const view = new DataView(bytes.buffer, bytes.byteOffset + at);
  if (view.getUint32(0, true) !== MAGIC[mode]) throw new Error("magic");
  let p = 4;
  const tag = gcm ? bytes.slice(at + 4, at + 20) : new Uint8Array(0);
  if (gcm) p += 16;
  const blockLength = view.getInt32(p, true);
  const ivLength = view.getInt32(p + 4, true);
  const iv = bytes.slice(at + p + 8, at + p + 24);
  const cipherLength = view.getInt32(p + 24, true);
  if (ivLength !== 16) throw new Error("iv_len");
  if (cipherLength < 0 || cipherLength > MAX_CIPHER_LEN) {
    throw new Error("cipher_len");
  }
  if (blockLength !== 24 + cipherLength) throw new Error("block_len");
  if (!gcm && (cipherLength === 0 || cipherLength % 16 !== 0)) {
    throw new Error("cipher_len not a multiple of 16");
  }
  return { cipherLength, iv, tag };
}

/**
 * Whether bytes that start with no valid magic still look like a damaged
 * block: a prefix of a magic (a file cut short), three of the four magic
 * bytes, or a GCM or CBC header whose lengths agree. A plain `.ckpt` or
 * safetensors file does none of these.
 */
export function _looksFramed(head: Uint8Array): boolean {
  if (head.byteLength === 0) return false;
  const magics = Object.values(MAGIC).map((
    m,
  ) => [m & 0xff, (m >>> 8) & 0xff, (m >>> 16) & 0xff, m >>> 24]);
  for (const magic of magics) {
    const n = Math.min(4, head.byteLength);
    let same = 0;
    for (let i = 0; i < n; i++) if (head[i] === magic[i]) same++;
    if (same === n && n < 4) return true;
    if (same >= 3) return true;
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  for (const at of [4, 20]) { // block_len of a CBC / GCM header
    if (at + 28 > head.byteLength) continue;
    const blockLength = view.getInt32(at, true);
    const ivLength = view.getInt32(at + 4, true);
    const cipherLength = view.getInt32(at + 24, true);
    if (ivLength === 16 && blockLength === 24 + cipherLength) return true;
  }
  return false;
}
