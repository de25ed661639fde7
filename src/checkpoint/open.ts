// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: openCheckpoint and loadCheckpoint (re-exported by checkpoint.ts).

import type { ByteSource } from "../core/io.ts";
import {
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
} from "../core/errors.ts";
import {
  type DecryptingSource,
  detectCipher,
  openDecryptingSource,
} from "../crypto/framing.ts";
import type { Tensor } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  type ParsedEntry,
  type ParsedFile,
  readEntryBytes,
  readParsedEntry,
} from "../format/entry.ts";
import { DEFAULT_MAX_ENTRIES, parseCkpt } from "../format/ckpt.ts";
import { parseSafetensors } from "../format/safetensors.ts";
import { FileCheckTracker } from "./_file_check.ts";
import { ReadAheadSource } from "../format/_read_ahead.ts";
import { storeFor } from "../store/resolve.ts";
import { checkPath } from "../store/_paths.ts";

import {
  checkCipherOptions,
  checkFormat,
  checkOptions,
  type CheckpointEntry,
  type CheckpointFormat,
  type CheckpointReader,
  type LoadCheckpointOptions,
} from "./_common.ts";

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
