// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The index of an encrypted file's blocks: where each block is in the file
 * and where its plaintext is in the decrypted stream, read from the block
 * headers (and, for CBC, from each block's padding).
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";
import type { EncMode, PieceCipher } from "./cipher.ts";
import { _headerLength, _parseHeader } from "./_block_header.ts";

/** One block of an encrypted file. */
export interface _Block {
  /** Offset of the block (its header) in the file. */
  fileAt: number;
  cipherLength: number;
  /** Offset of the block's plaintext in the decrypted stream. */
  plainAt: number;
  plainLength: number;
}

/** Files of more blocks than this are first read as evenly cut. */
const _UNIFORM_MIN_BLOCKS = 8;

/**
 * The index of every block: offsets in the file and in the plaintext.
 *
 * Writers cut the plaintext into equal pieces (ours, MindSpore's), so every
 * block but the last has the same length. For a file of many blocks, the
 * first and the last header are read and the rest is predicted from them;
 * the prediction holds only when the last header sits exactly where it
 * says and the lengths add up to the file's size. Every predicted header is
 * read and checked when its block is decrypted (a header that differs is a
 * {@linkcode DecryptionError}). Any other file has every header read here.
 */
export async function _index(
  inner: ByteSource,
  cipher: PieceCipher,
  mode: EncMode,
): Promise<_Block[]> {
  const uniform = await _uniformIndex(inner, mode);
  const blocks = uniform ?? await _scan(inner, mode);
  if (mode !== "AES-GCM") {
    await _cbcLengths(inner, cipher, blocks, uniform !== null);
  }
  return blocks;
}

async function _uniformIndex(
  inner: ByteSource,
  mode: EncMode,
): Promise<_Block[] | null> {
  const headerLength = _headerLength(mode);
  if (inner.size < headerLength) return null;
  const header = new Uint8Array(headerLength);
  await inner.readAt(0, header);
  const first = _parseHeader(header, 0, mode).cipherLength;
  const stride = headerLength + first;
  const count = Math.ceil(inner.size / stride);
  if (count <= _UNIFORM_MIN_BLOCKS) return null;
  const lastAt = (count - 1) * stride;
  if (lastAt + headerLength > inner.size) return null;
  await inner.readAt(lastAt, header);
  let last: number;
  try {
    last = _parseHeader(header, 0, mode).cipherLength;
  } catch {
    return null;
  }
  if (last > first || lastAt + headerLength + last !== inner.size) return null;
  const blocks: _Block[] = [];
  for (let k = 0; k < count; k++) {
    const cipherLength = k === count - 1 ? last : first;
    blocks.push({
      fileAt: k * stride,
      cipherLength,
      plainAt: k * first,
      plainLength: cipherLength, // CBC: fixed by _cbcLengths
    });
  }
  return blocks;
}

/** Block headers are read in windows of this size. */
const _SCAN_WINDOW = 1024 * 1024;

async function _scan(inner: ByteSource, mode: EncMode): Promise<_Block[]> {
  const headerLength = _headerLength(mode);
  // One read per window, not per header: a file of many small blocks.
  const window = new Uint8Array(Math.min(_SCAN_WINDOW, inner.size));
  let windowAt = 0;
  let windowLength = 0;
  const blocks: _Block[] = [];
  let at = 0;
  let plainAt = 0;
  while (at < inner.size) {
    if (at + headerLength > inner.size) throw new Error("truncated header");
    if (at + headerLength > windowAt + windowLength) {
      windowAt = at;
      windowLength = Math.min(window.byteLength, inner.size - at);
      await inner.readAt(at, window.subarray(0, windowLength));
    }
    const { cipherLength } = _parseHeader(window, at - windowAt, mode);
    const cipherAt = at + headerLength;
    if (cipherAt + cipherLength > inner.size) throw new Error("truncated");
    blocks.push({
      fileAt: at,
      cipherLength,
      plainAt,
      plainLength: cipherLength, // CBC: fixed by _cbcLengths
    });
    plainAt += cipherLength;
    at = cipherAt + cipherLength;
  }
  if (blocks.length === 0) throw new Error("no blocks");
  return blocks;
}

/**
 * The plaintext length of a CBC block is known only from its padding:
 * decrypts a block's last 16 bytes (the cipher checks the padding), chained
 * to the 16 bytes before them (or to the IV). Done for every block, except
 * in a file read as evenly cut, where the first block tells the length of
 * every block but the last (checked again when each is decrypted): CBC
 * files of more than eight blocks must hold equal pieces but the last, as
 * ours and MindSpore's do.
 */
async function _cbcLengths(
  inner: ByteSource,
  cipher: PieceCipher,
  blocks: _Block[],
  uniform: boolean,
): Promise<void> {
  const headerLength = _headerLength(cipher.mode);
  const probe = uniform ? [0, blocks.length - 1] : blocks.map((_, i) => i);
  const header = new Uint8Array(headerLength);
  const tail = new Uint8Array(32);
  const pending: Promise<number>[] = [];
  for (const i of probe) {
    const block = blocks[i]!;
    const n = block.cipherLength;
    await inner.readAt(block.fileAt, header);
    let iv = _parseHeader(header, 0, cipher.mode).iv;
    if (n === 16) {
      await inner.readAt(block.fileAt + headerLength, tail.subarray(16));
    } else {
      await inner.readAt(block.fileAt + headerLength + n - 32, tail);
      iv = tail.subarray(0, 16);
    }
    // Both arguments are read before decrypt returns. The next file read
    // is awaited before `Promise.all` sees this promise: it is marked
    // handled now, so a wrong key rejects here, not as an unhandled
    // rejection that ends the process.
    const length = cipher.decrypt(tail.subarray(16), iv).then((last) =>
      n - 16 + last.byteLength
    );
    length.catch(() => {});
    pending.push(length);
  }
  const lengths = await Promise.all(pending);
  const middle = lengths[0]!;
  let plainAt = 0;
  blocks.forEach((block, i) => {
    block.plainAt = plainAt;
    block.plainLength = uniform
      ? (i === blocks.length - 1 ? lengths[1]! : middle)
      : lengths[i]!;
    plainAt += block.plainLength;
  });
}
