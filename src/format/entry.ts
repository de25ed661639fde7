// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * What the encoders take and the parsers return, shared by both formats.
 * Runtime neutral: nothing here touches `Deno.*`.
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";
import { formatShape } from "../tensor/_shape.ts";
import {
  type DType,
  type Tensor,
  typedArrayFromBytes,
} from "../tensor/types.ts";

/** One value to encode: a named tensor or a named string. */
export interface EncodeEntry {
  /** The entry's name (unique in the file). */
  readonly name: string;
  /** A tensor, or a string (append info). */
  readonly value: Tensor | string;
}

/** A run of bytes in a source. */
export interface ByteRange {
  /** Start, in bytes from the start of the source. */
  readonly offset: number;
  /** Number of bytes. */
  readonly length: number;
}

/** One entry found by a parser: its description and where its bytes are. */
export interface ParsedEntry {
  /** The entry's name. */
  readonly name: string;
  /** Its dtype, or `"str"` for a string. */
  readonly dtype: DType | "str";
  /** Its shape (`[]` for scalars and strings). */
  readonly shape: readonly number[];
  /** Bytes of its content in the file. */
  readonly byteLength: number;
  /**
   * The dtype name as the file spells it (`"Float32"` in `.ckpt`, `"F32"` or
   * `"F8_E4M3"` in safetensors).
   */
  readonly fileDtype: string;
  /**
   * How the content is stored: `"raw"` tensor elements, a `"utf-32le"`
   * string, or `"text"`, a string held in `text` (safetensors metadata).
   */
  readonly encoding: "raw" | "utf-32le" | "text";
  /** Where the content is, in order (several for a split `.ckpt` tensor). */
  readonly ranges: readonly ByteRange[];
  /** The string, when `encoding` is `"text"`. */
  readonly text?: string;
}

/** A run of bytes in a source whose CRC-32 may already be known. */
export interface CheckedRange extends ByteRange {
  /** Its CRC-32, when the parser computed it (safetensors' header). */
  readonly crc?: number;
}

/**
 * The CRC-32 a file carries over its own bytes `[0, end)`: the `crc_num`
 * trailer of a `.ckpt` file, or the `ckpt.crc32` metadata of a safetensors
 * file our writer made. The entries' content ranges and `others` tile
 * `[0, end)` exactly, so the CRC of the whole is known once every entry has
 * been read.
 */
export interface FileCheck {
  /** The CRC-32 the file records. */
  readonly expected: number;
  /** Every covered byte that is in no entry's content (headers). */
  readonly others: readonly CheckedRange[];
}

/** What a parser found: the entries, and the check the file carries. */
export interface ParsedFile {
  /** The entries, in the order the parser lists them. */
  readonly entries: ParsedEntry[];
  /** The file's own check, or `null` when it carries none. */
  readonly check: FileCheck | null;
}

/** Most dims a shape may have (as MindSpore's and numpy's 64). */
export const MAX_DIMS = 64;

/**
 * Most bytes a tensor's shape may describe, its zero dims read as 1:
 * 2^48 (256 TiB). A shape such as `[2^53 - 1, 0]` holds no element, so
 * its content cannot refute it; no real tensor has such a dim.
 */
export const MAX_SHAPE_BYTES = 2 ** 48;

/**
 * Why a shape is absurd, or `null`: more than {@linkcode MAX_DIMS} dims, or
 * over {@linkcode MAX_SHAPE_BYTES} with its zero dims read as 1.
 *
 * @param shape The dims, each a non-negative safe integer.
 * @param elementSize Bytes per element.
 * @returns The reason, or `null`.
 */
export function checkShapeSize(
  shape: readonly number[],
  elementSize: number,
): string | null {
  if (shape.length > MAX_DIMS) {
    return `has ${shape.length} dims, more than ${MAX_DIMS}`;
  }
  let bytes = elementSize;
  for (const d of shape) bytes *= Math.max(d, 1);
  return bytes > MAX_SHAPE_BYTES
    ? `has shape ${
      formatShape(shape)
    }, whose dims (zeros read as 1) describe over 2^48 bytes`
    : null;
}

/**
 * Decodes UTF-32-LE bytes (numpy's unicode), dropping trailing NULs as numpy
 * does.
 *
 * @returns The string, or `null` when a code point is invalid.
 */
export function decodeUtf32(bytes: Uint8Array): string | null {
  if (bytes.byteLength % 4 !== 0) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let n = bytes.byteLength / 4;
  while (n > 0 && view.getUint32((n - 1) * 4, true) === 0) n--;
  const parts: string[] = [];
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = view.getUint32(i * 4, true);
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return null;
    codes.push(c);
    if (codes.length === 4096) {
      parts.push(String.fromCodePoint(...codes));
      codes.length = 0;
    }
  }
  parts.push(String.fromCodePoint(...codes));
  return parts.join("");
}

/**
 * Encodes a well-formed string as UTF-32-LE.
 *
 * @param text The string.
 * @returns 4 bytes per code point.
 */
export function encodeUtf32(text: string): Uint8Array {
  let n = 0;
  for (const _ of text) n++;
  const out = new Uint8Array(n * 4);
  const view = new DataView(out.buffer);
  let i = 0;
  for (const ch of text) {
    view.setUint32(i, ch.codePointAt(0)!, true);
    i += 4;
  }
  return out;
}

/**
 * Reads one entry's content bytes, joined from all its ranges, into `into`
 * (exactly `entry.byteLength` bytes).
 *
 * @param source The source the entry was parsed from.
 * @param entry The entry.
 * @param into Where the bytes go.
 * @param onRange Called with each range's index and bytes once read.
 */
export async function readEntryBytes(
  source: ByteSource,
  entry: ParsedEntry,
  into: Uint8Array,
  onRange?: (index: number, bytes: Uint8Array) => void,
): Promise<void> {
  let at = 0;
  for (const [index, r] of entry.ranges.entries()) {
    const part = into.subarray(at, at + r.length);
    await source.readAt(r.offset, part);
    onRange?.(index, part);
    at += r.length;
  }
}

/**
 * Reads one parsed entry's value: a tensor in a fresh, aligned typed array
 * of exactly its size (joined from all its ranges), or a string. Memory
 * used is the value's own size.
 *
 * @param source The source the entry was parsed from.
 * @param entry The entry.
 * @param fail Reports a malformed value (a string that is not valid UTF-32).
 * @param onRange Called with each range's index and bytes once read.
 * @returns The value.
 */
export async function readParsedEntry(
  source: ByteSource,
  entry: ParsedEntry,
  fail: (reason: string) => never,
  onRange?: (index: number, bytes: Uint8Array) => void,
): Promise<Tensor | string> {
  if (entry.encoding === "text") return entry.text ?? "";
  const bytes = new Uint8Array(entry.byteLength);
  await readEntryBytes(source, entry, bytes, onRange);
  if (entry.encoding === "utf-32le" || entry.dtype === "str") {
    const text = decodeUtf32(bytes);
    if (text === null) {
      fail(`string entry "${entry.name}" is not valid UTF-32`);
    }
    return text;
  }
  const dtype = entry.dtype;
  return { dtype, shape: entry.shape, data: typedArrayFromBytes(dtype, bytes) };
}
