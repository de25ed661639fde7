// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian
 * header length `N`, `N` bytes of JSON padded with spaces (to a multiple of
 * 8, so the data starts 8-aligned), then the tensors' bytes, each tensor
 * described by `{"dtype", "shape", "data_offsets": [begin, end]}` relative
 * to the data start, the offsets tiling the data exactly. Strings live in
 * the `__metadata__` string map. Runtime neutral: nothing here touches
 * `Deno.*`.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../core/io.ts";
import { CorruptCheckpointError } from "../core/errors.ts";
import { crc32 } from "../core/_crc32.ts";
import {
  type DType,
  DTYPE_SIZE,
  type Tensor,
  tensorBytes,
} from "../tensor/types.ts";
import { ChunkWriter } from "./_chunk_writer.ts";
import { DEFAULT_MAX_ENTRIES } from "./ckpt.ts";
import type { Fail } from "./_cursor.ts";
import {
  checkShapeSize,
  type EncodeEntry,
  type ParsedEntry,
  type ParsedFile,
} from "./entry.ts";

/** Largest header accepted: 100,000,000 bytes, as the Rust reader. */
export const SAFETENSORS_HEADER_CAP = 100_000_000;

/** Our dtypes to safetensors' names. */
const TO_FILE: Readonly<Record<DType, string>> = {
  Bool: "BOOL",
  Int8: "I8",
  UInt8: "U8",
  Int16: "I16",
  UInt16: "U16",
  Int32: "I32",
  UInt32: "U32",
  Int64: "I64",
  UInt64: "U64",
  Float16: "F16",
  BFloat16: "BF16",
  Float32: "F32",
  Float64: "F64",
};

/**
 * safetensors' names to our dtypes. The 8-bit float types have no typed
 * array: they read as raw `UInt8` bytes, one per element.
 */
const FROM_FILE: ReadonlyMap<string, DType> = new Map<string, DType>([
  ...Object.entries(TO_FILE).map(([d, f]) => [f, d as DType] as const),
  ["F8_E5M2", "UInt8"],
  ["F8_E4M3", "UInt8"],
  ["F8_E8M0", "UInt8"],
  ["F8_E4M3FNUZ", "UInt8"],
  ["F8_E5M2FNUZ", "UInt8"],
]);

/** Sub-byte and complex types we know of but cannot represent. */
const UNSUPPORTED = new Set(["F4", "F6_E2M3", "F6_E3M2", "C64"]);

const TEXT = new TextEncoder();

/**
 * The `__metadata__` key of the file's own check: the CRC-32, as 8
 * lowercase hex digits, of every byte of the file with these 8 digits read
 * as `00000000`.
 */
export const SAFETENSORS_CHECK_KEY = "ckpt.crc32";

/** The check's key and value as our writer spells them in the header. */
const CHECK_FIELD = TEXT.encode(`${JSON.stringify(SAFETENSORS_CHECK_KEY)}:"`);
const CHECK_ZEROS = TEXT.encode("00000000");

/** Options of {@linkcode encodeSafetensors}. */
export interface EncodeSafetensorsOptions {
  /**
   * Makes the file check itself: a `ckpt.crc32` entry in `__metadata__`
   * (see {@linkcode SAFETENSORS_CHECK_KEY}). Costs one CRC pass over the
   * tensors before they are written.
   *
   * @default {false}
   */
  check?: boolean;
}

/**
 * Writes entries as a safetensors file: tensors in the given order (not
 * re-sorted), strings in `__metadata__` (in the given order). The JSON
 * header is built once; tensor bytes go from the typed arrays to the sink in
 * pieces of at most 4 MiB, small tensors coalesced in one pooled buffer.
 *
 * @param sink Where the bytes go.
 * @param entries The values; names must be unique and not `__metadata__`
 * (nor `ckpt.crc32` among strings when `check` is on).
 * @param options Options.
 * @returns A promise that resolves when every byte has been written.
 */
export async function encodeSafetensors(
  sink: ByteSink,
  entries: Iterable<EncodeEntry>,
  options: EncodeSafetensorsOptions = {},
): Promise<void> {
  const check = options.check ?? false;
  const tensors: { name: string; tensor: Tensor }[] = [];
  const meta: string[] = [];
  for (const { name, value } of entries) {
    if (
      name === "__metadata__" ||
      (check && name === SAFETENSORS_CHECK_KEY && typeof value === "string")
    ) {
      throw new RangeError(
        `Cannot write safetensors: the name ${
          JSON.stringify(name)
        } is reserved`,
      );
    }
    if (typeof value === "string") {
      meta.push(`${JSON.stringify(name)}:${JSON.stringify(value)}`);
    } else tensors.push({ name, tensor: value });
  }
  if (check) {
    meta.push(`${JSON.stringify(SAFETENSORS_CHECK_KEY)}:"00000000"`);
  }
  const fields: string[] = [];
  if (meta.length > 0) fields.push(`"__metadata__":{${meta.join(",")}}`);
  let offset = 0;
  for (const { name, tensor } of tensors) {
    const end = offset + tensor.data.byteLength;
    fields.push(
      `${JSON.stringify(name)}:{"dtype":"${TO_FILE[tensor.dtype]}","shape":[${
        tensor.shape.join(",")
      }],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = TEXT.encode(`{${fields.join(",")}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  head.fill(0x20, 8 + json.byteLength);
  if (check) {
    let crc = crc32(head);
    for (const { tensor } of tensors) crc = crc32(tensorBytes(tensor), crc);
    const digits = TEXT.encode(crc.toString(16).padStart(8, "0"));
    head.set(digits, 8 + indexOf(json, CHECK_FIELD) + CHECK_FIELD.length);
  }
  const out = new ChunkWriter(sink);
  let ok = false;
  try {
    const h = out.write(head);
    if (h !== undefined) await h;
    for (const { tensor } of tensors) {
      const p = out.write(tensorBytes(tensor));
      if (p !== undefined) await p;
    }
    ok = true;
  } finally {
    await out.close(ok);
  }
}

/** Where `needle` first starts in `bytes`, or -1. */
function indexOf(bytes: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  for (let i = bytes.indexOf(first); i >= 0; i = bytes.indexOf(first, i + 1)) {
    if (i + needle.length > bytes.length) return -1;
    let k = 1;
    while (k < needle.length && bytes[i + k] === needle[k]) k++;
    if (k === needle.length) return i;
  }
  return -1;
}

/**
 * Whether a metadata entry is our check with its key damaged: 8 hex digits
 * under a key of the same length that differs in at most 3 characters
 * (else a flipped bit in the key would make a checked file read as one
 * without a check).
 */
function looksLikeCheck(key: string, value: unknown): boolean {
  if (typeof value !== "string" || !/^[0-9a-fA-F]{8}$/.test(value)) {
    return false;
  }
  if (key.length !== SAFETENSORS_CHECK_KEY.length) return false;
  let differ = 0;
  for (let i = 0; i < key.length; i++) {
    if (key[i] !== SAFETENSORS_CHECK_KEY[i]) differ++;
  }
  return differ <= 3;
}

/** Options of {@linkcode parseSafetensors}. */
export interface ParseSafetensorsOptions {
  /** The file's path, for error messages. */
  path: string;
  /**
   * Most entries (tensors and listed metadata strings) accepted.
   *
   * @default {DEFAULT_MAX_ENTRIES}
   */
  maxEntries?: number;
}

/**
 * Deepest nesting a safetensors header has: the header object, a tensor's
 * object, its `shape` array.
 */
const MAX_DEPTH = 3;

/**
 * One pass over the header's JSON text before it is parsed: refuses nesting
 * deeper than {@linkcode MAX_DEPTH} (an 86 MB header of nested arrays took
 * 34 s and 4.6 GB in `JSON.parse`) and more top-level keys than
 * `maxEntries`, and counts the keys written at each depth, so that
 * {@linkcode checkNoDuplicates} can tell that `JSON.parse` kept them all.
 */
function scanHeader(
  bytes: Uint8Array,
  maxEntries: number,
  fail: Fail,
): number[] {
  const keys = new Array<number>(MAX_DEPTH + 1).fill(0);
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > MAX_DEPTH) {
        fail(
          `safetensors header nests deeper than ${MAX_DEPTH} levels (at byte ${
            8 + i
          })`,
        );
      }
    } else if (b === 0x7d || b === 0x5d) depth--;
    else if (b === 0x3a && depth >= 1) {
      if (++keys[depth]! > maxEntries + 1 && depth === 1) {
        fail(
          `it holds more than ${maxEntries} entries (the maxEntries option raises the cap)`,
        );
      }
    }
  }
  return keys;
}

/**
 * Fails when the parsed header holds fewer keys at some depth than the text
 * wrote: `JSON.parse` keeps the last of two equal keys, silently.
 */
function checkNoDuplicates(header: unknown, written: number[], fail: Fail) {
  const kept = new Array<number>(MAX_DEPTH + 1).fill(0);
  const walk = (value: unknown, depth: number): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v, depth + 1);
    } else if (typeof value === "object" && value !== null) {
      const entries = Object.entries(value);
      kept[depth + 1]! += entries.length;
      for (const [, v] of entries) walk(v, depth + 1);
    }
  };
  walk(header, 0);
  if (kept.some((n, d) => n !== written[d])) {
    fail("safetensors header repeats a key (JSON keeps only the last value)");
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface Located extends ParsedEntry {
  begin: number;
  end: number;
}

function parseTensorInfo(
  name: string,
  info: unknown,
  dataSize: number,
  fail: Fail,
): Located {
  const what = `tensor ${JSON.stringify(name)}`;
  if (!isRecord(info)) fail(`${what} is not described by an object`);
  const fileDtype = info.dtype;
  if (typeof fileDtype !== "string") fail(`${what} has no dtype string`);
  const dtype = FROM_FILE.get(fileDtype);
  if (dtype === undefined) {
    fail(
      `${what} has ${
        UNSUPPORTED.has(fileDtype) ? "unsupported" : "unknown"
      } dtype ${JSON.stringify(fileDtype)}`,
    );
  }
  const shape = info.shape;
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
  ) {
    fail(`${what} has a shape that is not a list of non-negative integers`);
  }
  const absurd = checkShapeSize(shape as number[], DTYPE_SIZE[dtype]);
  if (absurd !== null) fail(`${what} ${absurd}`);
  const offsets = info.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    fail(`${what} has data_offsets that are not two non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`${what} has data_offsets [${begin}, ${end}] reversed`);
  if (end > dataSize) {
    fail(
      `${what} ends at data offset ${end}, past the ${dataSize} bytes of data (truncated file?)`,
    );
  }
  let need = DTYPE_SIZE[dtype];
  for (const d of shape as number[]) need *= d;
  if (need !== end - begin) {
    fail(
      `${what}: shape [${
        (shape as number[]).join(", ")
      }] of ${fileDtype} needs ${
        Number.isSafeInteger(need) ? need : "over 2^53"
      } bytes, data_offsets give ${end - begin}`,
    );
  }
  return {
    name,
    dtype,
    shape: shape as number[],
    byteLength: end - begin,
    fileDtype,
    encoding: "raw",
    ranges: [],
    begin,
    end,
  };
}

/**
 * Lists the entries of a safetensors file without reading the tensor data:
 * tensors in the order of their data, then `__metadata__` strings (a key
 * that names a tensor is a note about it and is not listed, nor is the
 * file's own check, `ckpt.crc32`). Checks the header length against a
 * 100 MB cap and the file size before reading it, every dtype, shape and
 * offset, and that the offsets tile the data exactly.
 *
 * @param source The bytes.
 * @param options The path for error messages.
 * @returns The entries, and the file's check when it carries one.
 * @throws {CorruptCheckpointError} When the file is malformed.
 */
export async function parseSafetensors(
  source: ByteSource,
  options: ParseSafetensorsOptions,
): Promise<ParsedFile> {
  const path = options.path;
  const fail: Fail = (reason) => {
    throw new CorruptCheckpointError(path, reason);
  };
  if (source.size < 8) {
    fail(
      `file has ${source.size} bytes, fewer than the 8-byte safetensors header length`,
    );
  }
  const prefix = new Uint8Array(8);
  await source.readAt(0, prefix);
  const n = new DataView(prefix.buffer).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_HEADER_CAP)) {
    fail(
      `safetensors header length ${n} is over the cap of ${SAFETENSORS_HEADER_CAP} bytes`,
    );
  }
  const headerLength = Number(n);
  if (8 + headerLength > source.size) {
    fail(
      `safetensors header length ${headerLength} is longer than the ${
        source.size - 8
      } bytes after it (truncated file?)`,
    );
  }
  const headerBytes = new Uint8Array(headerLength);
  await source.readAt(8, headerBytes);
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const written = scanHeader(headerBytes, maxEntries, fail);
  let text: string;
  try {
    text = UTF8.decode(headerBytes);
  } catch {
    return fail("safetensors header is not valid UTF-8");
  }
  if (!text.startsWith("{")) fail(`safetensors header does not start with "{"`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return fail(
      `safetensors header is not valid JSON (${(error as Error).message})`,
    );
  }
  checkNoDuplicates(header, written, fail);
  if (!isRecord(header)) fail("safetensors header is not a JSON object");
  const dataStart = 8 + headerLength;
  const dataSize = source.size - dataStart;
  const tensors: Located[] = [];
  let metadata: Record<string, unknown> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isRecord(info)) fail("__metadata__ is not a JSON object");
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== "string") {
          fail(`__metadata__ value of ${JSON.stringify(k)} is not a string`);
        }
      }
      metadata = info;
    } else tensors.push(parseTensorInfo(name, info, dataSize, fail));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const t of tensors) {
    if (t.begin !== expected) {
      fail(
        t.begin < expected
          ? `tensor ${
            JSON.stringify(t.name)
          } at data offset ${t.begin} overlaps the tensor before it (which ends at ${expected})`
          : `data bytes ${expected}..${t.begin} before tensor ${
            JSON.stringify(t.name)
          } belong to no tensor`,
      );
    }
    expected = t.end;
  }
  if (expected !== dataSize) {
    fail(
      `the tensors cover ${expected} data bytes but the file has ${dataSize}`,
    );
  }
  const out: ParsedEntry[] = tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    byteLength: t.byteLength,
    fileDtype: t.fileDtype,
    encoding: "raw",
    ranges: [{ offset: dataStart + t.begin, length: t.byteLength }],
  }));
  const names = new Set(tensors.map((t) => t.name));
  names.add(SAFETENSORS_CHECK_KEY);
  for (const [k, v] of Object.entries(metadata)) {
    if (names.has(k)) continue;
    const value = v as string;
    out.push({
      name: k,
      dtype: "str",
      shape: [],
      byteLength: TEXT.encode(value).byteLength,
      fileDtype: "str",
      encoding: "text",
      ranges: [],
      text: value,
    });
  }
  if (out.length > maxEntries) {
    fail(
      `it holds more than ${maxEntries} entries (the maxEntries option raises the cap)`,
    );
  }
  const digits = metadata[SAFETENSORS_CHECK_KEY];
  if (digits === undefined) {
    const damaged = Object.entries(metadata).find(([k, v]) =>
      looksLikeCheck(k, v)
    );
    if (damaged !== undefined) {
      fail(
        `its metadata holds ${
          JSON.stringify(damaged[0])
        }, a damaged ${SAFETENSORS_CHECK_KEY} check`,
      );
    }
    return { entries: out, check: null };
  }
  if (typeof digits !== "string" || !/^[0-9a-f]{8}$/.test(digits)) {
    fail(`its ${SAFETENSORS_CHECK_KEY} metadata is not 8 lowercase hex digits`);
  }
  const at = indexOf(headerBytes, CHECK_FIELD);
  if (at < 0) {
    fail(
      `its ${SAFETENSORS_CHECK_KEY} metadata is not spelled as the writer of the check spells it`,
    );
  }
  const digitsAt = at + CHECK_FIELD.length;
  if (UTF8.decode(headerBytes.subarray(digitsAt, digitsAt + 8)) !== digits) {
    fail(
      `its ${SAFETENSORS_CHECK_KEY} metadata is not spelled as the writer of the check spells it`,
    );
  }
  let crc = crc32(prefix);
  crc = crc32(headerBytes.subarray(0, digitsAt), crc);
  crc = crc32(CHECK_ZEROS, crc);
  crc = crc32(headerBytes.subarray(digitsAt + 8), crc);
  return {
    entries: out,
    check: {
      expected: parseInt(digits, 16),
      others: [{ offset: 0, length: dataStart, crc }],
    },
  };
}
