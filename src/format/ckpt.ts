// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * MindSpore's `.ckpt` format, byte for byte as MindSpore 2.4 writes it: a
 * concatenation of single-entry `Checkpoint` protobuf messages
 *
 * ```
 * message Checkpoint { repeated Value value = 1; }
 * message Value { required string tag = 1; TensorProto tensor = 2; }
 * message TensorProto {
 *   repeated int64 dims = 1;            // unpacked: one field per dim
 *   required string tensor_type = 2;    // "Float32", ..., or "str"
 *   required bytes tensor_content = 3;  // little-endian, row-major
 * }
 * ```
 *
 * Scalars have no `dims`; strings have dtype `str`, dims `[0]` and UTF-32-LE
 * content; a tensor over the split size is cut into consecutive entries with
 * the same tag, dims and type. Runtime neutral: nothing here touches
 * `Deno.*`.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../core/io.ts";
import { CorruptCheckpointError } from "../core/errors.ts";
import { crc32 } from "../core/_crc32.ts";
import { DTYPE_SIZE, isDType, tensorBytes } from "../tensor/types.ts";
import { ChunkWriter, Scratch, varintSize } from "./_chunk_writer.ts";
import { Cursor, type Fail, NeedBytes, type Window } from "./_cursor.ts";
import {
  type ByteRange,
  type CheckedRange,
  checkShapeSize,
  type EncodeEntry,
  encodeUtf32,
  MAX_DIMS,
  type ParsedEntry,
  type ParsedFile,
} from "./entry.ts";
import { formatShape } from "../tensor/_shape.ts";
import { checkInteger } from "../core/_validate.ts";

/** MindSpore's split size for large tensors: 512 MiB. */
export const DEFAULT_SPLIT_SIZE = 536_870_912;

/** Options of {@linkcode encodeCkpt}. */
export interface EncodeCkptOptions {
  /**
   * Tensors whose content is longer than this many bytes are cut into
   * consecutive entries of at most this many bytes, as MindSpore does.
   *
   * @default {536870912}
   */
  splitSize?: number;
  /**
   * Makes the file check itself: it starts with {@linkcode CKPT_CHECK_MARK}
   * and ends with MindSpore's `crc_num` trailer, the CRC-32 of every byte
   * before it (as MindSpore's `crc_check=True` writes it). Without it the
   * bytes are exactly MindSpore's.
   *
   * @default {false}
   */
  check?: boolean;
}

/**
 * The first bytes of a `.ckpt` file whose writer ends it with a `crc_num`
 * trailer: field 15 of the `Checkpoint` message, varint 1. Protobuf readers
 * (MindSpore's among them) skip a field they do not know; ours reads it as
 * "this file must end with its check", so a file cut at an entry boundary
 * is refused instead of loading fewer entries.
 */
export const CKPT_CHECK_MARK: Uint8Array = new Uint8Array([0x78, 0x01]);

const TEXT = new TextEncoder();

/** `crc_num` and a 10-byte big-endian CRC-32, as MindSpore writes them. */
function crcTrailer(crc: number): Uint8Array {
  const trailer = new Uint8Array(CRC_TRAILER);
  trailer.set(TEXT.encode(CRC_MAGIC));
  new DataView(trailer.buffer).setUint32(CRC_TRAILER - 4, crc, false);
  return trailer;
}

/**
 * Writes entries as a MindSpore `.ckpt` stream. Tensor bytes go from the
 * entries' typed arrays to the sink in pieces of at most 4 MiB; headers and
 * small tensors are coalesced in one pooled buffer.
 *
 * @param sink Where the bytes go.
 * @param entries The values, in file order; names must be unique.
 * @param options Options.
 * @returns A promise that resolves when every byte has been written.
 */
export async function encodeCkpt(
  sink: ByteSink,
  entries: Iterable<EncodeEntry>,
  options: EncodeCkptOptions = {},
): Promise<void> {
  const splitSize = checkInteger(
    options.splitSize ?? DEFAULT_SPLIT_SIZE,
    "splitSize",
    1,
    "Cannot write .ckpt",
  );
  const check = options.check ?? false;
  let crc = 0;
  // The CRC is taken over the bytes as they leave the coalescing buffer.
  const target: ByteSink = check
    ? {
      write: (chunk) => {
        crc = crc32(chunk, crc);
        return sink.write(chunk);
      },
    }
    : sink;
  const out = new ChunkWriter(target);
  const head = new Scratch();
  let ok = false;
  try {
    if (check) out.write(CKPT_CHECK_MARK);
    for (const { name, value } of entries) {
      const nameBytes = TEXT.encode(name);
      let type: string;
      let dims: readonly number[];
      let content: Uint8Array;
      if (typeof value === "string") {
        type = "str";
        dims = [0];
        content = encodeUtf32(value);
      } else {
        type = value.dtype;
        dims = value.shape;
        content = tensorBytes(value);
      }
      const typeBytes = TEXT.encode(type);
      let dimsLength = 0;
      for (const d of dims) dimsLength += 1 + varintSize(d);
      const total = content.byteLength;
      let at = 0;
      do {
        const piece = Math.min(splitSize, total - at);
        const tensorLength = dimsLength + 1 + varintSize(typeBytes.length) +
          typeBytes.length + 1 + varintSize(piece) + piece;
        const valueLength = 1 + varintSize(nameBytes.length) +
          nameBytes.length + 1 + varintSize(tensorLength) + tensorLength;
        head.reset();
        head.byte(0x0a); // Checkpoint.value
        head.varint(valueLength);
        head.byte(0x0a); // Value.tag
        head.varint(nameBytes.length);
        head.bytes(nameBytes);
        head.byte(0x12); // Value.tensor
        head.varint(tensorLength);
        for (const d of dims) {
          head.byte(0x08); // TensorProto.dims, unpacked
          head.varint(d);
        }
        head.byte(0x12); // TensorProto.tensor_type
        head.varint(typeBytes.length);
        head.bytes(typeBytes);
        head.byte(0x1a); // TensorProto.tensor_content
        head.varint(piece);
        const h = out.write(head.view());
        if (h !== undefined) await h;
        const c = out.write(content.subarray(at, at + piece));
        if (c !== undefined) await c;
        at += piece;
      } while (at < total);
    }
    ok = true;
  } finally {
    await out.close(ok);
  }
  if (check) await sink.write(crcTrailer(crc));
}

/** Options of {@linkcode parseCkpt}. */
export interface ParseCkptOptions {
  /** The file's path, for error messages. */
  path: string;
  /**
   * Most entries accepted (split parts counted one by one).
   *
   * @default {DEFAULT_MAX_ENTRIES}
   */
  maxEntries?: number;
}

/**
 * The most entries a file may hold unless a load says otherwise: 1,000,000.
 * Each listed entry costs a few hundred bytes of memory; a file of this
 * many small entries parses in about a second.
 */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** The window entries are parsed from: 1 MiB. */
const WINDOW = 1024 * 1024;
/** Further windows read for fields past a large content: 64 KiB or more. */
const EXTRA_WINDOW = 64 * 1024;
/** Further windows one entry may need at most. */
const MAX_EXTRA_WINDOWS = 8;

/** Longest entry name accepted: 64 KiB. */
const NAME_CAP = 65_536;
/** Longest dtype name accepted. */
const TYPE_CAP = 64;
/** Most dims accepted. */
const DIMS_CAP = MAX_DIMS;
/** Longest unknown non-content field skipped or packed dims read: 1 MiB. */
const FIELD_CAP = 1 << 20;
const CRC_TRAILER = 17;
const CRC_MAGIC = "crc_num";

interface RawEntry {
  name: string;
  type: string;
  dims: number[] | null;
  content: ByteRange;
  at: number;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Skips a field of an unknown number, checking its length. */
function skipField(
  cur: Cursor,
  wire: number,
  limit: number,
  what: string,
  fail: Fail,
): void {
  let n: number;
  if (wire === 0) {
    cur.varint(limit, what);
    return;
  } else if (wire === 1) n = 8;
  else if (wire === 5) n = 4;
  else if (wire === 2) n = cur.length(limit, what);
  else return fail(`${what} at byte ${cur.pos} has invalid wire type ${wire}`);
  if (n > limit - cur.pos) {
    fail(`${what} at byte ${cur.pos} runs past the end of its message`);
  }
  cur.pos += n;
}

function readString(
  cur: Cursor,
  limit: number,
  cap: number,
  what: string,
  fail: Fail,
): string {
  const n = cur.length(limit, what);
  if (n > cap) {
    fail(
      `${what} at byte ${cur.pos} is ${n} bytes long, over the cap of ${cap}`,
    );
  }
  const at = cur.pos;
  const bytes = cur.bytes(n);
  const ascii = decodeAscii(bytes);
  if (ascii !== null) return ascii;
  try {
    return UTF8.decode(bytes);
  } catch {
    return fail(`${what} at byte ${at} is not valid UTF-8`);
  }
}

/**
 * A short ASCII string without a decoder call (which costs more than the
 * whole rest of a small entry's parse), or `null` for any other bytes.
 */
function decodeAscii(bytes: Uint8Array): string | null {
  if (bytes.byteLength > 128) return null;
  for (let i = 0; i < bytes.byteLength; i++) if (bytes[i]! >= 0x80) return null;
  return String.fromCharCode(...bytes);
}

function parseTensor(
  cur: Cursor,
  limit: number,
  entry: number,
  fail: Fail,
): { type: string; dims: number[] | null; content: ByteRange } {
  let type: string | null = null;
  let dims: number[] | null = null;
  let content: ByteRange | null = null;
  const addDim = (d: number) => {
    dims ??= [];
    if (dims.length >= DIMS_CAP) {
      fail(`entry ${entry} has more than ${DIMS_CAP} dims`);
    }
    dims.push(d);
  };
  while (cur.pos < limit) {
    const key = cur.varint(limit, `field key in entry ${entry}`);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === 0) {
      addDim(cur.varint(limit, `dim of entry ${entry}`));
    } else if (field === 1 && wire === 2) {
      const n = cur.length(limit, `packed dims of entry ${entry}`);
      if (n > FIELD_CAP) {
        fail(
          `packed dims of entry ${entry} at byte ${cur.pos} are ${n} bytes long, over the cap of ${FIELD_CAP}`,
        );
      }
      const end = cur.pos + n;
      while (cur.pos < end) {
        addDim(cur.varint(end, `dim of entry ${entry}`));
      }
    } else if (field === 2 && wire === 2) {
      if (type !== null) fail(`entry ${entry} has two tensor_type fields`);
      type = readString(
        cur,
        limit,
        TYPE_CAP,
        `tensor_type of entry ${entry}`,
        fail,
      );
    } else if (field === 3 && wire === 2) {
      if (content !== null) {
        fail(`entry ${entry} has two tensor_content fields`);
      }
      const n = cur.length(limit, `content of entry ${entry}`);
      content = { offset: cur.pos, length: n };
      cur.pos += n;
    } else if (field >= 1 && field <= 3) {
      fail(
        `field ${field} of the tensor of entry ${entry} has wire type ${wire}, which is wrong for it`,
      );
    } else {
      skipField(
        cur,
        wire,
        limit,
        `field ${field} of entry ${entry}`,
        fail,
      );
    }
  }
  if (type === null) fail(`entry ${entry} has no tensor_type`);
  if (content === null) fail(`entry ${entry} has no tensor_content`);
  return { type, dims, content };
}

function parseValue(
  cur: Cursor,
  limit: number,
  entry: number,
  fail: Fail,
): RawEntry {
  const at = cur.pos;
  let name: string | null = null;
  let tensor: ReturnType<typeof parseTensor> | null = null;
  while (cur.pos < limit) {
    const key = cur.varint(limit, `field key in entry ${entry}`);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === 2) {
      if (name !== null) fail(`entry ${entry} has two tags`);
      name = readString(
        cur,
        limit,
        NAME_CAP,
        `tag of entry ${entry}`,
        fail,
      );
    } else if (field === 2 && wire === 2) {
      if (tensor !== null) fail(`entry ${entry} has two tensors`);
      const n = cur.length(limit, `tensor of entry ${entry}`);
      const end = cur.pos + n;
      tensor = parseTensor(cur, end, entry, fail);
    } else if (field === 3 && wire === 2) {
      fail(
        `entry ${entry}${
          name === null ? "" : ` ("${name}")`
        } is a map tensor (MindSpore MapParameter), which is not supported`,
      );
    } else if (field >= 1 && field <= 3) {
      fail(
        `field ${field} of entry ${entry} has wire type ${wire}, which is wrong for it`,
      );
    } else {
      skipField(
        cur,
        wire,
        limit,
        `field ${field} of entry ${entry}`,
        fail,
      );
    }
  }
  if (name === null) fail(`entry ${entry} at byte ${at} has no tag (name)`);
  if (tensor === null) fail(`entry ${entry} ("${name}") has no tensor`);
  return { name, ...tensor, at };
}

/** Parses one `Checkpoint.value` field: its key, its length, the value. */
function parseEntry(
  cur: Cursor,
  end: number,
  entry: number,
  fail: Fail,
): RawEntry {
  const at = cur.pos;
  const key = cur.varint(end, `key of entry ${entry}`);
  if (key !== 0x0a) {
    fail(
      `expected entry ${entry} (field 1, length-delimited) at byte ${at}, found field ${
        Math.floor(key / 8)
      } with wire type ${key % 8}`,
    );
  }
  const n = cur.length(end, `entry ${entry}`, "the file (truncated?)");
  const limit = cur.pos + n;
  const value = parseValue(cur, limit, entry, fail);
  cur.pos = limit;
  return value;
}

/**
 * The CRC-32 of a `crc_num` trailer in the last 17 bytes, or `null` when
 * there is none.
 */
async function crcTrailerValue(
  source: ByteSource,
  fail: Fail,
): Promise<number | null> {
  if (source.size < CRC_TRAILER) return null;
  const tail = new Uint8Array(CRC_TRAILER);
  await source.readAt(source.size - CRC_TRAILER, tail);
  if (String.fromCharCode(...tail.subarray(0, 7)) !== CRC_MAGIC) return null;
  const view = new DataView(tail.buffer);
  if (view.getUint16(7) !== 0 || view.getUint32(9) !== 0) {
    fail(`its crc_num trailer holds a value over 32 bits`);
  }
  return view.getUint32(13);
}

/** The bytes of `[start, end)` that are in none of `contents` (sorted). */
function gapsBetween(
  contents: readonly ByteRange[],
  start: number,
  end: number,
): CheckedRange[] {
  const gaps: CheckedRange[] = [];
  let at = start;
  for (const r of contents) {
    if (r.offset > at) gaps.push({ offset: at, length: r.offset - at });
    at = r.offset + r.length;
  }
  if (end > at) gaps.push({ offset: at, length: end - at });
  return gaps;
}

/** Joins consecutive same-name raw entries and checks each value's size. */
function joinEntries(raw: RawEntry[], fail: Fail): ParsedEntry[] {
  const out: ParsedEntry[] = [];
  const seen = new Set<string>();
  let i = 0;
  while (i < raw.length) {
    const first = raw[i]!;
    let j = i + 1;
    while (j < raw.length && raw[j]!.name === first.name) j++;
    const group = j === i + 1 ? [first] : raw.slice(i, j);
    const last = group[group.length - 1]!;
    if (seen.has(first.name)) {
      fail(
        `name "${first.name}" appears again at byte ${first.at}, not next to its first entry`,
      );
    }
    seen.add(first.name);
    for (const g of group) {
      if (g.type !== last.type) {
        fail(
          `the split parts of "${first.name}" disagree on the dtype ("${g.type}" and "${last.type}")`,
        );
      }
    }
    const ranges = group.map((g) => g.content);
    let byteLength = 0;
    for (const r of ranges) byteLength += r.length;
    const dims = last.dims ?? [];
    if (last.type === "str") {
      if (byteLength % 4 !== 0) {
        fail(
          `string entry "${first.name}" has ${byteLength} bytes, not a multiple of 4 (UTF-32)`,
        );
      }
      out.push({
        name: first.name,
        dtype: "str",
        shape: [],
        byteLength,
        fileDtype: "str",
        encoding: "utf-32le",
        ranges,
      });
    } else {
      const dtype = last.type;
      if (!isDType(dtype)) {
        fail(
          `entry "${first.name}" has unknown dtype ${JSON.stringify(dtype)}`,
        );
      }
      const size = DTYPE_SIZE[dtype];
      let shape: number[];
      if (dims.length === 0) shape = [];
      else if (dims.length === 1 && dims[0] === 0 && byteLength === size) {
        shape = []; // MindSpore reads dims [0] as a scalar.
      } else shape = dims;
      const absurd = checkShapeSize(shape, size);
      if (absurd !== null) fail(`entry "${first.name}" ${absurd}`);
      let need = size;
      for (const d of shape) need *= d;
      if (need !== byteLength) {
        fail(
          `entry "${first.name}": shape ${
            formatShape(shape)
          } of ${dtype} needs ${
            Number.isSafeInteger(need) ? need : "over 2^53"
          } bytes, its content has ${byteLength}`,
        );
      }
      out.push({
        name: first.name,
        dtype,
        shape,
        byteLength,
        fileDtype: dtype,
        encoding: "raw",
        ranges,
      });
    }
    i = j;
  }
  return out;
}

/**
 * Lists the entries of a `.ckpt` stream without reading their contents:
 * names, dtypes, shapes and where their bytes are. Accepts packed dims,
 * unknown fields, a trailing `crc_num` trailer (returned as the file's
 * check, verified by whoever reads every entry) and joins consecutive
 * entries with the same name. Refuses an empty file, and a file that
 * starts with {@linkcode CKPT_CHECK_MARK} but lacks its trailer (cut
 * short). Reads headers through a 64 KiB window; every length is checked
 * against its enclosing message before use.
 *
 * @param source The bytes (a file, or a decrypting source).
 * @param options The path for error messages.
 * @returns The entries, in file order, and the file's check.
 * @throws {CorruptCheckpointError} When the stream is malformed.
 */
export async function parseCkpt(
  source: ByteSource,
  options: ParseCkptOptions,
): Promise<ParsedFile> {
  const path = options.path;
  const fail: Fail = (reason) => {
    throw new CorruptCheckpointError(path, reason);
  };
  if (source.size === 0) {
    fail("the file is empty (0 bytes), which no checkpoint is");
  }
  const expected = await crcTrailerValue(source, fail);
  const end = expected === null ? source.size : source.size - CRC_TRAILER;
  const first = new Uint8Array(Math.min(2, source.size));
  await source.readAt(0, first);
  const marked = first[0] === CKPT_CHECK_MARK[0] &&
    first[1] === CKPT_CHECK_MARK[1];
  if (marked && expected === null) {
    fail(
      "it starts with the mark of a writer that ends its files with a crc_num trailer, but the trailer is missing (the file was cut short)",
    );
  }
  const cur = new Cursor(fail);
  if (marked) cur.pos = CKPT_CHECK_MARK.length;
  const raw: RawEntry[] = [];
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  // Entries are parsed synchronously out of a 1 MiB window read ahead; one
  // that reaches past it is parsed again from a window that starts with it,
  // and fields past a large content from further small windows.
  const buffer = new Uint8Array(Math.min(WINDOW, source.size));
  let main: Window = { start: 0, bytes: buffer.subarray(0, 0) };
  const read = async (at: number, into: Uint8Array): Promise<Window> => {
    const bytes = into.subarray(0, Math.min(into.byteLength, end - at));
    await source.readAt(at, bytes);
    return { start: at, bytes };
  };
  while (cur.pos < end) {
    const start = cur.pos;
    const extra: Window[] = [];
    let refilled = false;
    for (;;) {
      cur.pos = start;
      cur.windows = extra.length === 0 ? [main] : [main, ...extra];
      try {
        raw.push(parseEntry(cur, end, raw.length, fail));
        break;
      } catch (error) {
        if (!(error instanceof NeedBytes)) throw error;
        if (!refilled) {
          main = await read(start, buffer);
          refilled = true;
        } else if (extra.length < MAX_EXTRA_WINDOWS) {
          const size = Math.max(error.length, EXTRA_WINDOW);
          extra.push(await read(error.pos, new Uint8Array(size)));
        } else {
          fail(
            `entry ${raw.length} at byte ${start} spreads its fields over more than ${MAX_EXTRA_WINDOWS} regions of the file`,
          );
        }
      }
    }
    if (raw.length > maxEntries) {
      fail(
        `it holds more than ${maxEntries} entries (the maxEntries option raises the cap)`,
      );
    }
  }
  const entries = joinEntries(raw, fail);
  if (expected === null) return { entries, check: null };
  const others = gapsBetween(raw.map((r) => r.content), 0, end);
  return { entries, check: { expected, others } };
}
