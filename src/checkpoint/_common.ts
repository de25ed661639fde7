// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the public types of one checkpoint file (re-exported by
// checkpoint.ts) and the option checks saving and opening share.

import { type EncMode, validateCipher } from "../crypto/cipher.ts";
import type { AppendValue, DType, Tensor } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import type { CheckpointStore } from "../store/store.ts";

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
   * (the local file system for a plain path; see `storeFor`).
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
  /**
   * Called once every byte of the file has been handed to the operating
   * system, before the fsync and rename that make it durable and visible:
   * from then on the tensors' memory is no longer read (a background save
   * gives its snapshot back there). Called by the local store only; a
   * failure of the commit still rejects the save.
   */
  onWritten?: () => void;
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
   * `EncryptionMismatchError` naming its cipher; with it a plain
   * file is an `EncryptionMismatchError` too. A wrong key or mode,
   * or a modified file, is a `DecryptionError`.
   *
   * @default {undefined}
   */
  decKey?: Uint8Array;
  /**
   * The cipher for `decKey`. Only valid together with `decKey`. When
   * omitted, the cipher the file's framing names is used (its first bytes
   * say which); when given, a file framed with another cipher is a
   * `DecryptionError`.
   *
   * @default {the file's cipher}
   */
  decMode?: EncMode;
  /**
   * Where the file lives. When omitted, the store is chosen by the path
   * (the local file system for a plain path; see `storeFor`).
   *
   * @default {undefined}
   */
  store?: CheckpointStore;
  /**
   * Most entries a file may hold (a `.ckpt` tensor's split parts counted one
   * by one): a larger file is a `CorruptCheckpointError` before
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

export function checkFormat(format: unknown, action: string): CheckpointFormat {
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
export function checkCipherOptions(
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

export function checkOptions(options: unknown, action: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${action}: options must be an object, received ${
        describe(options)
      }`,
    );
  }
}
