// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Saving and loading checkpoint files: MindSpore `.ckpt` or safetensors,
 * streamed, durable and atomic.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../core/io.ts";
import {
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
} from "../core/errors.ts";
import { type EncMode, validateCipher } from "../crypto/cipher.ts";
import {
  createEncryptingSink,
  type DecryptingSource,
  detectCipher,
  openDecryptingSource,
} from "../crypto/framing.ts";
import {
  type AppendValue,
  type DType,
  type Network,
  networkParameters,
  type Tensor,
  validateTensor,
} from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  type EncodeEntry,
  type ParsedEntry,
  type ParsedFile,
  readEntryBytes,
  readParsedEntry,
} from "../format/entry.ts";
import {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_SPLIT_SIZE,
  encodeCkpt,
  parseCkpt,
} from "../format/ckpt.ts";
import {
  encodeSafetensors,
  parseSafetensors,
  SAFETENSORS_CHECK_KEY,
} from "../format/safetensors.ts";
import { FileCheckTracker } from "./_file_check.ts";
import { ReadAheadSource } from "../format/_read_ahead.ts";
import type { CheckpointStore } from "../store/store.ts";
import { storeFor } from "../store/resolve.ts";
import { checkFileMode, checkPath } from "../store/_paths.ts";

export { checksumFile } from "../store/checksum_file.ts";

/** The two file formats: MindSpore's `.ckpt` and safetensors. */
export type CheckpointFormat = "ckpt" | "safetensors";

/**
 * Values stored after the parameters (MindSpore's `append_info`). Use a
 * `Map` when the order matters and keys look like integers: a plain object
 * lists such keys first.
 */
export type AppendInfo =
  | Readonly<Record<string, AppendValue>>
  | ReadonlyMap<string, AppendValue>;

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /**
   * The file format: MindSpore's `"ckpt"` or `"safetensors"`.
   *
   * @default {"ckpt"}
   */
  format?: CheckpointFormat;
  /**
   * Values stored after the parameters, with MindSpore's conversions: a
   * string is a `str` entry (UTF-32-LE, dims `[0]`); a `bigint` or an
   * integer `number` an `Int64` scalar; any other `number` (fractions, NaN,
   * ±Infinity) a `Float32` scalar; a `boolean` a `Bool` scalar; a tensor is
   * stored as it is. An integer outside the Int64 range is a RangeError.
   * (JavaScript cannot tell `1.0` from `1`: pass a Float32 tensor to store a
   * whole float as Float32.) A key equal to a parameter's name replaces that
   * parameter's value in place, as MindSpore's ordered dict does. In
   * safetensors, strings go to `__metadata__` and numbers and booleans
   * become 0-d tensors.
   *
   * @default {undefined}
   */
  appendInfo?: AppendInfo;
  /**
   * `.ckpt` only: a tensor longer than this many bytes is cut into
   * consecutive entries of the same name, as MindSpore does at 512 MiB.
   *
   * @default {536870912}
   */
  splitSize?: number;
  /**
   * Permission bits of the saved file, set before it is committed under its
   * final name (MindSpore makes checkpoints read-only).
   *
   * @default {0o400}
   */
  fileMode?: number;
  /**
   * Encrypts the file with this raw key (16, 24 or 32 bytes for AES, 16 for
   * SM4) in MindSpore's block framing, which MindSpore's
   * `load_checkpoint(dec_key=…, dec_mode=…)` decrypts. The key is checked
   * before anything is written. The bytes stream through the cipher in
   * pieces: the file is never held whole in memory.
   *
   * @default {undefined}
   */
  encKey?: Uint8Array;
  /**
   * The cipher for `encKey`: `"AES-GCM"`, `"AES-CBC"` or `"SM4-CBC"`. Only
   * valid together with `encKey`.
   *
   * @default {"AES-GCM"}
   */
  encMode?: EncMode;
  /**
   * Where the file lives. When omitted, the store is chosen by the path
   * (the local file system for a plain path; see {@linkcode storeFor}).
   *
   * @default {undefined}
   */
  store?: CheckpointStore;
  /**
   * Whether the commit may replace a file already at `path`. With `false`
   * the save fails (`Deno.errors.AlreadyExists`, or an error whose `code`
   * is `"EEXIST"`) and whatever is there stays untouched.
   *
   * @default {true}
   */
  overwrite?: boolean;
  /**
   * Makes the file carry a CRC-32 of its own bytes (inside the encryption,
   * when encrypted), which every load verifies once it has read every
   * entry: in `.ckpt`, MindSpore's `crc_num` trailer (which MindSpore
   * strips, and verifies with `crc_check=True`) after a 2-byte mark at the
   * start that protobuf readers skip; in safetensors, a `ckpt.crc32` entry
   * in `__metadata__`. A file cut short, or changed after it was written
   * (flipped bits, reordered or repeated encrypted blocks), then fails to
   * load instead of loading other values. `false` writes exactly
   * MindSpore's bytes. See `docs/format.md`.
   *
   * @default {true}
   */
  check?: boolean;
}

/** What {@linkcode saveCheckpoint} wrote. */
export interface SaveResult {
  /** The file's path, as given. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /**
   * The checksum of the bytes as written to disk, `"crc32:<8 hex digits>"`
   * (zlib's CRC-32); {@linkcode checksumFile} recomputes it.
   */
  checksum: string;
}

/** Options of {@linkcode loadCheckpoint} and {@linkcode openCheckpoint}. */
export interface LoadCheckpointOptions {
  /**
   * The file format. When omitted it comes from the extension
   * (`.ckpt`, `.safetensors`), else from the first bytes.
   *
   * @default {undefined}
   */
  format?: CheckpointFormat;
  /**
   * The raw key of an encrypted file. Without it an encrypted file is an
   * {@linkcode EncryptionMismatchError} naming its cipher; with it a plain
   * file is an {@linkcode EncryptionMismatchError} too. A wrong key or mode,
   * or a modified file, is a {@linkcode DecryptionError}.
   *
   * @default {undefined}
   */
  decKey?: Uint8Array;
  /**
   * The cipher for `decKey`. Only valid together with `decKey`. When
   * omitted, the cipher the file's framing names is used (its first bytes
   * say which); when given, a file framed with another cipher is a
   * {@linkcode DecryptionError}.
   *
   * @default {the file's cipher}
   */
  decMode?: EncMode;
  /**
   * Where the file lives. When omitted, the store is chosen by the path
   * (the local file system for a plain path; see {@linkcode storeFor}).
   *
   * @default {undefined}
   */
  store?: CheckpointStore;
  /**
   * Most entries a file may hold (a `.ckpt` tensor's split parts counted one
   * by one): a larger file is a {@linkcode CorruptCheckpointError} before
   * its entries are listed. Each listed entry costs a few hundred bytes of
   * memory; raise it for a file that really holds more.
   *
   * @default {1000000}
   */
  maxEntries?: number;
}

/** One value in a checkpoint, as listed by {@linkcode openCheckpoint}. */
export interface CheckpointEntry {
  /** Its name. */
  readonly name: string;
  /**
   * Its dtype, or `"str"` for a string. safetensors' 8-bit float types
   * (`F8_*`) read as `"UInt8"` raw bytes; `fileDtype` keeps the original.
   */
  readonly dtype: DType | "str";
  /** Its shape; `[]` for scalars and strings. */
  readonly shape: readonly number[];
  /** Bytes of its content in the file. */
  readonly byteLength: number;
  /** The dtype as the file spells it (`"Float32"`, `"F32"`, `"F8_E4M3"`, …). */
  readonly fileDtype: string;
}

/** A checkpoint opened for reading one entry at a time. */
export interface CheckpointReader extends AsyncDisposable {
  /** The file's path. */
  readonly path: string;
  /** The file's format. */
  readonly format: CheckpointFormat;
  /** The entries, in file order. */
  readonly entries: readonly CheckpointEntry[];
  /**
   * The check the file carries over its own bytes (a `crc_num` trailer, or
   * safetensors `ckpt.crc32` metadata), or `null` when it carries none. It
   * is verified when the last byte of the file's entries has been read, in
   * any order: that read fails when it does not match. A reader that reads
   * only some entries gets no whole-file verification.
   */
  readonly check: "crc32" | null;
  /**
   * Reads one entry: a tensor (split `.ckpt` parts joined) or a string.
   * Memory used is the entry's own size.
   *
   * @param name The entry's name.
   * @returns Its value.
   */
  read(name: string): Promise<Tensor | string>;
  /**
   * Reads one tensor entry's raw little-endian bytes straight into `into`
   * (for example the bytes of the typed array it is restored into), with no
   * allocation. `into.byteLength` must equal the entry's `byteLength`.
   *
   * @param name The entry's name; a tensor, not a string.
   * @param into Where the bytes go.
   * @returns When `into` holds the bytes.
   */
  readInto(name: string, into: Uint8Array): Promise<void>;
  /** Closes the file. */
  close(): Promise<void>;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot save checkpoint: ${what} must be a string, received ${
        describe(name)
      }`,
    );
  }
  if (name.length === 0 || name.includes("\0")) {
    throw new RangeError(
      `Cannot save checkpoint: ${what} must be non-empty and without NUL, received ${
        JSON.stringify(name)
      }`,
    );
  }
  return name;
}

function int64Scalar(value: bigint, key: string): Tensor {
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new RangeError(
      `Cannot save checkpoint: appendInfo "${key}" does not fit in Int64, received ${value}`,
    );
  }
  return { dtype: "Int64", shape: [], data: new BigInt64Array([value]) };
}

/** Converts one append-info value the way MindSpore does. */
function appendValue(
  key: string,
  value: unknown,
  format: CheckpointFormat,
): Tensor | string {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new RangeError(
          `Cannot save checkpoint: appendInfo "${key}" holds a lone surrogate, received ${
            describe(value)
          }`,
        );
      }
      if (format === "ckpt" && value.endsWith("\0")) {
        throw new RangeError(
          `Cannot save checkpoint: appendInfo "${key}" ends with NUL, which .ckpt strings (numpy unicode) drop, received ${
            describe(value)
          }`,
        );
      }
      return value;
    case "bigint":
      return int64Scalar(value, key);
    case "number":
      if (Number.isInteger(value)) {
        if (Math.abs(value) >= 2 ** 63) {
          throw new RangeError(
            `Cannot save checkpoint: appendInfo "${key}" is an integer outside Int64, received ${value}`,
          );
        }
        return int64Scalar(BigInt(value), key);
      }
      return { dtype: "Float32", shape: [], data: new Float32Array([value]) };
    case "boolean":
      return {
        dtype: "Bool",
        shape: [],
        data: new Uint8Array([value ? 1 : 0]),
      };
    case "object":
      if (value !== null) return validateTensor(value, `appendInfo "${key}"`);
  }
  throw new TypeError(
    `Cannot save checkpoint: appendInfo "${key}" must be a number, bigint, boolean, string or Tensor, received ${
      describe(value)
    }`,
  );
}

/**
 * The entries of a save, in file order: the network's parameters, then the
 * append info (a key equal to an earlier name replaces its value in place).
 */
function collectEntries(
  network: Network,
  appendInfo: AppendInfo | undefined,
  format: CheckpointFormat,
  check: boolean,
): EncodeEntry[] {
  const values = new Map<string, Tensor | string>();
  for (const p of networkParameters(network)) {
    values.set(p.name, { dtype: p.dtype, shape: p.shape, data: p.data });
  }
  if (appendInfo !== undefined) {
    let pairs: Iterable<[unknown, unknown]>;
    if (appendInfo instanceof Map) pairs = appendInfo;
    else if (
      typeof appendInfo === "object" && appendInfo !== null &&
      !Array.isArray(appendInfo)
    ) {
      pairs = Object.entries(appendInfo);
    } else {
      throw new TypeError(
        `Cannot save checkpoint: appendInfo must be a Map or a record, received ${
          describe(appendInfo)
        }`,
      );
    }
    for (const [key, value] of pairs) {
      const name = checkName(key, "an appendInfo key");
      values.set(name, appendValue(name, value, format));
    }
  }
  if (format === "safetensors" && values.has("__metadata__")) {
    throw new RangeError(
      `Cannot save checkpoint as safetensors: the name "__metadata__" is reserved`,
    );
  }
  if (
    format === "safetensors" && check &&
    typeof values.get(SAFETENSORS_CHECK_KEY) === "string"
  ) {
    throw new RangeError(
      `Cannot save checkpoint as safetensors: the string name "${SAFETENSORS_CHECK_KEY}" is reserved for the file's check`,
    );
  }
  for (const name of values.keys()) {
    if (!name.isWellFormed()) {
      throw new RangeError(
        `Cannot save checkpoint: name ${
          JSON.stringify(name)
        } holds a lone surrogate, which UTF-8 cannot store`,
      );
    }
  }
  return Array.from(values, ([name, value]) => ({ name, value }));
}

function checkFormat(format: unknown, action: string): CheckpointFormat {
  if (format === "ckpt" || format === "safetensors") return format;
  if (typeof format !== "string") {
    throw new TypeError(
      `Cannot ${action}: format must be "ckpt" or "safetensors", received ${
        describe(format)
      }`,
    );
  }
  throw new RangeError(
    `Cannot ${action}: format must be "ckpt" or "safetensors", received ${
      JSON.stringify(format)
    }`,
  );
}

/**
 * The key and mode of a save or load, checked, or `null` for a plain file.
 * The key is copied, so a caller that wipes its key after the call returns
 * does not change a save in progress.
 */
function checkCipherOptions(
  key: unknown,
  mode: unknown,
  keyName: string,
  modeName: string,
  action: string,
): { key: Uint8Array; mode: EncMode } | null {
  if (key === undefined) {
    if (mode !== undefined) {
      throw new TypeError(
        `Cannot ${action}: ${modeName} was given without ${keyName}`,
      );
    }
    return null;
  }
  const checked = validateCipher(key, mode ?? "AES-GCM", {
    keyName,
    modeName,
  });
  return { key: (key as Uint8Array).slice(), mode: checked };
}

function checkOptions(options: unknown, action: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${action}: options must be an object, received ${
        describe(options)
      }`,
    );
  }
}

/**
 * Saves a network's parameters (and append info) to a checkpoint file,
 * durably and atomically (see {@linkcode atomicWrite}): the bytes stream
 * from the tensors' typed arrays to a temporary file in bounded pieces,
 * which is fsynced and renamed over `path`. In `.ckpt` the bytes are those
 * MindSpore writes for the same values, with `crc_check=True`'s trailer
 * and a 2-byte mark before them (unless `check: false`: then exactly
 * MindSpore's bytes).
 *
 * @param path The file to write; its folder must exist.
 * @param network The parameters: an iterable of parameters, a `Map` or a
 *   record of name to tensor.
 * @param options Options.
 * @returns The path, size and checksum of the file.
 * @throws {TypeError} When an argument has the wrong type (the message
 *   names it and the value).
 * @throws {RangeError} When a value is out of range: an empty name or one
 *   with NUL, a shape that disagrees with the data, an unknown format, an
 *   unknown `encMode` or an `encKey` of the wrong length for it.
 *
 * @example Save two tensors and an epoch number
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const saved = await saveCheckpoint(`${dir}/net.ckpt`, {
 *     "dense.weight": { dtype: "Float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 *     "dense.bias": { dtype: "Float32", shape: [2], data: new Float32Array([0, 1]) },
 *   }, { appendInfo: { epoch_num: 3, note: "first run" } });
 *   const loaded = await loadCheckpoint(saved.path);
 *   assertEquals([...loaded.keys()], ["dense.weight", "dense.bias", "epoch_num", "note"]);
 *   assertEquals(loaded.get("note"), "first run");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @example Encrypt with AES-256-GCM, as MindSpore's `enc_key` does
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = crypto.getRandomValues(new Uint8Array(32));
 *   const w = { dtype: "Float32", shape: [2], data: new Float32Array([1, 2]) } as const;
 *   await saveCheckpoint(`${dir}/secret.ckpt`, { w }, { encKey: key, encMode: "AES-GCM" });
 *   const m = await loadCheckpoint(`${dir}/secret.ckpt`, { decKey: key, decMode: "AES-GCM" });
 *   assertEquals(m.get("w"), w);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function saveCheckpoint(
  path: string,
  network: Network,
  options: SaveCheckpointOptions = {},
): Promise<SaveResult> {
  checkPath(path, "save checkpoint");
  checkOptions(options, "save checkpoint");
  const format = checkFormat(options.format ?? "ckpt", "save checkpoint");
  const splitSize = options.splitSize ?? DEFAULT_SPLIT_SIZE;
  if (typeof splitSize !== "number") {
    throw new TypeError(
      `Cannot save checkpoint: splitSize must be a number, received ${
        describe(splitSize)
      }`,
    );
  }
  if (!Number.isSafeInteger(splitSize) || splitSize < 1) {
    throw new RangeError(
      `Cannot save checkpoint: splitSize must be a positive integer, received ${splitSize}`,
    );
  }
  const fileMode = checkFileMode(options.fileMode ?? 0o400, "save checkpoint");
  const cipher = checkCipherOptions(
    options.encKey,
    options.encMode,
    "encKey",
    "encMode",
    "save checkpoint",
  );
  const check = options.check ?? true;
  if (typeof check !== "boolean") {
    throw new TypeError(
      `Cannot save checkpoint: check must be a boolean, received ${
        describe(check)
      }`,
    );
  }
  const entries = collectEntries(network, options.appendInfo, format, check);
  const encode = (sink: ByteSink): Promise<void> =>
    format === "ckpt"
      ? encodeCkpt(sink, entries, { splitSize, check })
      : encodeSafetensors(sink, entries, { check });
  // The one place the sink is chosen: an encrypting sink wraps `fileSink`.
  // The checksum stays over the bytes on disk (the ciphertext).
  const store = storeFor(path, options.store);
  const written = await store.write(path, async (fileSink) => {
    if (cipher === null) return await encode(fileSink);
    const sink = createEncryptingSink(fileSink, cipher);
    try {
      await encode(sink);
      await sink.finish();
    } catch (error) {
      sink.abort();
      throw error;
    } finally {
      cipher.key.fill(0);
    }
  }, {
    fileMode,
    ...(options.overwrite === undefined
      ? {}
      : { overwrite: options.overwrite }),
  });
  return { path, bytes: written.bytes, checksum: written.checksum };
}

/** Works out the format from the extension, else the first bytes. */
async function detectFormat(
  path: string,
  source: ByteSource,
): Promise<CheckpointFormat> {
  const lower = path.toLowerCase();
  if (lower.endsWith(".safetensors")) return "safetensors";
  if (lower.endsWith(".ckpt")) return "ckpt";
  // safetensors: an 8-byte little-endian header length, then "{".
  if (source.size >= 9) {
    const head = new Uint8Array(9);
    await source.readAt(0, head);
    if (head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0) {
      return "safetensors";
    }
  }
  return "ckpt";
}

class Reader implements CheckpointReader {
  readonly path: string;
  readonly format: CheckpointFormat;
  readonly entries: readonly CheckpointEntry[];
  readonly check: "crc32" | null;
  #source: ByteSource;
  #byName: Map<string, ParsedEntry>;
  #close: (() => Promise<void>) | null;
  #encrypted: boolean;
  #tracker: FileCheckTracker | null;
  /** Entries with content not read yet (while the check is pending). */
  #unread: Set<ParsedEntry>;

  constructor(
    path: string,
    format: CheckpointFormat,
    source: ByteSource,
    file: ParsedFile,
    close: () => Promise<void>,
    encrypted: boolean,
    tracker: FileCheckTracker | null,
  ) {
    const parsed = file.entries;
    this.#encrypted = encrypted;
    this.#tracker = tracker;
    this.#unread = new Set(
      tracker === null ? [] : parsed.filter((e) => e.ranges.length > 0),
    );
    this.check = tracker === null ? null : "crc32";
    this.path = path;
    this.format = format;
    const ahead = new ReadAheadSource(source);
    this.#source = ahead;
    this.#close = async () => {
      await ahead.release();
      await close();
    };
    this.#byName = new Map(parsed.map((e) => [e.name, e]));
    this.entries = Object.freeze(parsed.map((e) =>
      Object.freeze({
        name: e.name,
        dtype: e.dtype,
        shape: Object.freeze([...e.shape]),
        byteLength: e.byteLength,
        fileDtype: e.fileDtype,
      })
    ));
  }

  read(name: string): Promise<Tensor | string> {
    if (this.#close === null) {
      return Promise.reject(
        new TypeError(
          `Cannot read entry ${
            JSON.stringify(name)
          } of checkpoint "${this.path}": the reader is closed`,
        ),
      );
    }
    const entry = this.#byName.get(name);
    if (entry === undefined) {
      return Promise.reject(
        new RangeError(
          `Cannot read entry of checkpoint "${this.path}": it has no entry named ${
            typeof name === "string" ? JSON.stringify(name) : describe(name)
          }`,
        ),
      );
    }
    const fail = (reason: string): never => {
      throw this.#corrupt(reason);
    };
    return readParsedEntry(this.#source, entry, fail, this.#onRange(entry))
      .then(
        (value) => {
          this.#checkFile(entry);
          return value;
        },
      );
  }

  /** What takes the CRC of each range of `entry` as it is read. */
  #onRange(
    entry: ParsedEntry,
  ): ((index: number, bytes: Uint8Array) => void) | undefined {
    const tracker = this.#tracker;
    return tracker === null
      ? undefined
      : (index, bytes) => tracker.record(entry, index, bytes);
  }

  /** A damaged file's error: a decryption failure when it is encrypted. */
  #corrupt(reason: string): Error {
    const error = new CorruptCheckpointError(this.path, reason);
    return this.#encrypted ? _opaque(this.path, error) : error;
  }

  /** Fails when every byte has been read and the file's check differs. */
  #checkFile(entry: ParsedEntry): void {
    const tracker = this.#tracker;
    if (tracker === null) return;
    this.#unread.delete(entry);
    const wrong = tracker.result();
    if (typeof wrong === "string") throw this.#corrupt(wrong);
    if (wrong === undefined && this.#unread.size === 0) {
      // Every entry read, and still bytes unseen: a bug of ours, not a
      // damaged file; it must not pass as verified.
      throw new Error(
        `Cannot verify checkpoint "${this.path}": its check did not cover every byte after every entry was read (a bug of @ckpt/monitor)`,
      );
    }
  }

  async readInto(name: string, into: Uint8Array): Promise<void> {
    if (this.#close === null) {
      throw new TypeError(
        `Cannot read entry ${
          JSON.stringify(name)
        } of checkpoint "${this.path}": the reader is closed`,
      );
    }
    const entry = this.#byName.get(name);
    if (entry === undefined || entry.encoding !== "raw") {
      throw new RangeError(
        `Cannot read entry of checkpoint "${this.path}" into bytes: it has no tensor named ${
          typeof name === "string" ? JSON.stringify(name) : describe(name)
        }`,
      );
    }
    if (!(into instanceof Uint8Array) || into.byteLength !== entry.byteLength) {
      throw new RangeError(
        `Cannot read entry ${
          JSON.stringify(name)
        } of checkpoint "${this.path}": it has ${entry.byteLength} bytes, the target ${
          into instanceof Uint8Array ? into.byteLength : describe(into)
        }`,
      );
    }
    await readEntryBytes(this.#source, entry, into, this.#onRange(entry));
    this.#checkFile(entry);
  }

  close(): Promise<void> {
    const close = this.#close;
    this.#close = null;
    return close === null ? Promise.resolve() : close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a checkpoint for reading one entry at a time: the entries' names,
 * dtypes and shapes are listed from the headers without reading the
 * contents, and each {@linkcode CheckpointReader.read} reads only that
 * entry. Use `await using` or call `close()`.
 *
 * @param path The file.
 * @param options Options.
 * @returns An open reader.
 * @throws {CorruptCheckpointError} When the file is malformed (the message
 *   names the file and what is wrong).
 * @throws {EncryptionMismatchError} When the file is encrypted and no
 *   `decKey` was given (the message names the cipher), or it is plain and a
 *   `decKey` was given.
 * @throws {DecryptionError} When an encrypted file cannot be decrypted: wrong
 *   key or mode, or modified (one message for every cause).
 * @throws {TypeError} When `path` is not a string, or `decKey` not a
 *   `Uint8Array`.
 * @throws {RangeError} When `decMode` is unknown or `decKey` has the wrong
 *   length for it.
 *
 * @example List a checkpoint, then read one tensor
 * ```ts
 * import { openCheckpoint, saveCheckpoint, type Tensor } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await saveCheckpoint(`${dir}/m.safetensors`, {
 *     a: { dtype: "Int32", shape: [3], data: new Int32Array([1, 2, 3]) },
 *     b: { dtype: "Float64", shape: [], data: new Float64Array([0.5]) },
 *   }, { format: "safetensors" });
 *   await using reader = await openCheckpoint(`${dir}/m.safetensors`);
 *   assertEquals(reader.entries.map((e) => [e.name, e.dtype, e.shape]), [
 *     ["a", "Int32", [3]],
 *     ["b", "Float64", []],
 *   ]);
 *   const a = await reader.read("a") as Tensor<"Int32">;
 *   assertEquals(Array.from(a.data), [1, 2, 3]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function openCheckpoint(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<CheckpointReader> {
  checkPath(path, "open checkpoint");
  checkOptions(options, "open checkpoint");
  const chosen = options.format === undefined
    ? undefined
    : checkFormat(options.format, "open checkpoint");
  const cipher = checkCipherOptions(
    options.decKey,
    options.decMode,
    "decKey",
    "decMode",
    "open checkpoint",
  );
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
    throw new RangeError(
      `Cannot open checkpoint: maxEntries must be a non-negative integer, received ${
        describe(maxEntries)
      }`,
    );
  }
  const file = await storeFor(path, options.store).open(path);
  let decrypted: DecryptingSource | null = null;
  try {
    // The one place the source is chosen: a decrypting source wraps `file`.
    let source: ByteSource = file;
    const head = new Uint8Array(Math.min(4, file.size));
    await file.readAt(0, head);
    const fileMode = detectCipher(head);
    if (cipher === null) {
      if (fileMode !== null) {
        throw new EncryptionMismatchError(path, fileMode, null);
      }
    } else {
      // Without decMode, the cipher the file's framing names (a plain file
      // keeps the default, and is refused as not encrypted). A decMode that
      // disagrees with the framing is refused as a wrong mode.
      const mode = options.decMode === undefined && fileMode !== null
        ? fileMode
        : cipher.mode;
      try {
        decrypted = await openDecryptingSource(file, { ...cipher, mode, path });
      } finally {
        cipher.key.fill(0);
      }
      source = _opaqueSource(decrypted, path);
    }
    const format = chosen ?? await detectFormat(path, source);
    const parsed = format === "ckpt"
      ? await parseCkpt(source, { path, maxEntries })
      : await parseSafetensors(source, { path, maxEntries });
    let tracker: FileCheckTracker | null = null;
    if (parsed.check !== null) {
      tracker = new FileCheckTracker(parsed.check, parsed.entries);
      await tracker.readOthers(source);
      // A file with no content to read is verified now.
      const wrong = tracker.result();
      if (typeof wrong === "string") {
        throw new CorruptCheckpointError(path, wrong);
      }
    }
    const opened = decrypted;
    return new Reader(
      path,
      format,
      source,
      parsed,
      async () => {
        opened?.close();
        await file.close();
      },
      opened !== null,
      tracker,
    );
  } catch (error) {
    decrypted?.close();
    await file.close();
    // A malformed plaintext inside an encrypted file (a CBC file tampered
    // with past its padding, blocks reordered or dropped) is reported like
    // every other decryption failure.
    if (decrypted !== null && error instanceof CorruptCheckpointError) {
      throw _opaque(path, error);
    }
    throw error;
  }
}

/**
 * A failure inside an encrypted file as the one {@linkcode DecryptionError}
 * every cause gives: its message does not say which check failed; the
 * underlying error is kept as `cause`, for debugging. A decryption error,
 * or a bad argument (`RangeError`, `TypeError`), is returned as it is.
 */
function _opaque(path: string, error: unknown): Error {
  if (
    error instanceof DecryptionError || error instanceof RangeError ||
    error instanceof TypeError
  ) return error;
  return new DecryptionError(path, { cause: error });
}

/**
 * `source` with every read failure that is not a decryption failure turned
 * into one: inside an encrypted file, a short or corrupt read means the
 * ciphertext was modified.
 */
function _opaqueSource(source: ByteSource, path: string): ByteSource {
  return {
    size: source.size,
    readAt: (position, into) =>
      source.readAt(position, into).catch((error: unknown) => {
        throw _opaque(path, error);
      }),
  };
}

/**
 * Loads every entry of a checkpoint into a `Map`, in file order: tensors
 * (split `.ckpt` parts joined; scalars have shape `[]`) and strings (`.ckpt`
 * `str` entries, safetensors `__metadata__`). Either the whole file loads or
 * an error is thrown; there is no partial result.
 *
 * @param path The file.
 * @param options Options.
 * @returns Name to value, in file order.
 * @throws {CorruptCheckpointError} When the file is malformed (the message
 *   names the file and what is wrong).
 * @throws {EncryptionMismatchError} When the file is encrypted and no
 *   `decKey` was given (the message names the cipher), or it is plain and a
 *   `decKey` was given.
 * @throws {DecryptionError} When an encrypted file cannot be decrypted: wrong
 *   key or mode, or modified (one message for every cause).
 * @throws {TypeError} When `path` is not a string, or `decKey` not a
 *   `Uint8Array`.
 * @throws {RangeError} When `decMode` is unknown or `decKey` has the wrong
 *   length for it.
 *
 * @example Round-trip a network
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await saveCheckpoint(`${dir}/m.ckpt`, new Map([
 *     ["w", { dtype: "Float32", shape: [2], data: new Float32Array([1.5, -2]) }],
 *   ]), { appendInfo: { step_num: 10n } });
 *   const m = await loadCheckpoint(`${dir}/m.ckpt`);
 *   assertEquals(m.get("w"), { dtype: "Float32", shape: [2], data: new Float32Array([1.5, -2]) });
 *   assertEquals(m.get("step_num"), { dtype: "Int64", shape: [], data: new BigInt64Array([10n]) });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function loadCheckpoint(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<Map<string, Tensor | string>> {
  const reader = await openCheckpoint(path, options);
  try {
    const out = new Map<string, Tensor | string>();
    for (const e of reader.entries) out.set(e.name, await reader.read(e.name));
    return out;
  } finally {
    await reader.close();
  }
}
