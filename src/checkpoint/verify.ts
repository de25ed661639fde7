// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Full integrity check of one checkpoint file, with a typed result instead
 * of an exception for a bad file.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import {
  type CheckpointFormat,
  type LoadCheckpointOptions,
  openCheckpoint,
} from "./checkpoint.ts";
import {
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
} from "../core/errors.ts";
import { readMeta } from "./_meta.ts";
import { checkPath } from "../store/_paths.ts";
import { storeFor } from "../store/resolve.ts";
import {
  basenamePath as basename,
  dirnamePath as dirname,
  isNotFound,
  joinPath as join,
} from "../store/store.ts";
import {
  compareRecorded,
  statFile,
  type VerifyFailureKind,
} from "./_recorded.ts";

/** The size and checksum a file is expected to have. */
export interface ExpectedFile {
  /** Its size in bytes. */
  readonly bytes?: number;
  /** Its checksum, `"crc32:<8 hex digits>"` as {@linkcode saveCheckpoint} reports it. */
  readonly checksum?: string;
}

/**
 * Options of {@linkcode verifyCheckpoint}: those of
 * {@linkcode loadCheckpoint} (the format, and the key and cipher of an
 * encrypted file), and where the expected size and checksum come from.
 */
export interface VerifyCheckpointOptions extends LoadCheckpointOptions {
  /**
   * The `meta.json` to look the file up in (by its base name, in `files`);
   * `false` to skip it. A missing `meta.json`, or one that does not list
   * the file, only means there is nothing to compare with; a malformed one
   * fails the check (kind `"meta"`).
   *
   * @default {"<folder of path>/meta.json"}
   */
  readonly meta?: string | false;
  /**
   * The size and checksum to compare with, instead of looking them up in
   * `meta.json`.
   *
   * @default {undefined}
   */
  readonly expected?: ExpectedFile;
}

export type { VerifyFailureKind } from "./_recorded.ts";

/** A checkpoint that passed {@linkcode verifyCheckpoint}. */
export interface VerifySuccess {
  /** It passed. */
  readonly ok: true;
  /** The file. */
  readonly path: string;
  /** Its format. */
  readonly format: CheckpointFormat;
  /** Its size in bytes. */
  readonly bytes: number;
  /** How many entries it holds (a split `.ckpt` tensor counts once). */
  readonly entries: number;
  /** The checksum computed, or `null` when there was none to compare with. */
  readonly checksum: string | null;
  /** Where the size and checksum compared with came from, or `null`. */
  readonly checkedAgainst: "meta.json" | "expected" | null;
  /**
   * The check the file carries over its own bytes, verified (`"crc32"`),
   * or `null` when it carries none (a file of another writer, or saved
   * with `check: false`): then only its structure, and the GCM tags or CBC
   * padding of an encrypted file, were checked.
   */
  readonly fileCheck: "crc32" | null;
}

/** A checkpoint that failed {@linkcode verifyCheckpoint}. */
export interface VerifyFailure {
  /** It failed. */
  readonly ok: false;
  /** The file. */
  readonly path: string;
  /** Which check failed. */
  readonly kind: VerifyFailureKind;
  /** What is wrong, in words (without the path). */
  readonly reason: string;
  /** The error behind the failure, when there was one. */
  readonly error?: unknown;
}

/** The result of {@linkcode verifyCheckpoint}. */
export type VerifyResult = VerifySuccess | VerifyFailure;

function checkExpected(value: unknown): ExpectedFile {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `Cannot verify checkpoint: option "expected" must be an object, received ${
        describe(value)
      }`,
    );
  }
  const e = value as Record<string, unknown>;
  if (
    e.bytes !== undefined &&
    (typeof e.bytes !== "number" || !Number.isSafeInteger(e.bytes) ||
      e.bytes < 0)
  ) {
    throw new RangeError(
      `Cannot verify checkpoint: "expected.bytes" must be a non-negative integer, received ${
        describe(e.bytes)
      }`,
    );
  }
  if (e.checksum !== undefined && typeof e.checksum !== "string") {
    throw new TypeError(
      `Cannot verify checkpoint: "expected.checksum" must be a string, received ${
        describe(e.checksum)
      }`,
    );
  }
  return e as ExpectedFile;
}

/**
 * Checks one checkpoint file completely, without throwing for a bad file:
 *
 * 1. it exists and is a regular file;
 * 2. its size and checksum equal those recorded for it (in the sibling
 *    `meta.json`'s `files`, or in `options.expected`), when recorded;
 * 3. its structure: every entry parses, and every entry's bytes are read
 *    (for an encrypted file, this checks every GCM tag on the way);
 * 4. the CRC-32 the file carries over its own bytes, when it carries one
 *    (every file {@linkcode saveCheckpoint} writes, unless `check: false`),
 *    so a damaged file fails even when no `meta.json` lists it.
 *
 * @param path The checkpoint file.
 * @param options Where the expected size and checksum come from, and the
 *   options of {@linkcode loadCheckpoint}.
 * @returns `{ ok: true, … }` with the format, size and entry count, or
 *   `{ ok: false, kind, reason }` saying which check failed.
 * @throws {TypeError} When `path` or an option has the wrong type.
 * @throws {RangeError} When `path` is empty or an option is out of range.
 * @throws {Deno.errors.PermissionDenied} When read permission is missing.
 *
 * @example Verify a checkpoint, then catch a flipped byte
 * ```ts
 * import { saveCheckpoint, verifyCheckpoint } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const path = `${dir}/m.ckpt`;
 *   const saved = await saveCheckpoint(path, {
 *     w: { dtype: "Float32", shape: [3], data: new Float32Array([1, 2, 3]) },
 *   }, { fileMode: 0o600 });
 *   const good = await verifyCheckpoint(path, { expected: saved });
 *   equal(good.ok, true);
 *
 *   const bytes = await Deno.readFile(path);
 *   bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
 *   await Deno.writeFile(path, bytes);
 *   const bad = await verifyCheckpoint(path, { expected: saved });
 *   equal(bad.ok, false);
 *   if (!bad.ok) equal(bad.kind, "checksum");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function verifyCheckpoint(
  path: string,
  options: VerifyCheckpointOptions = {},
): Promise<VerifyResult> {
  checkPath(path, "verify checkpoint");
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot verify checkpoint: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  const { meta = join(dirname(path), "meta.json"), expected, ...load } =
    options;
  if (meta !== false) checkPath(meta, "verify checkpoint against meta.json");
  const given = expected === undefined ? undefined : checkExpected(expected);
  const fail = (
    kind: VerifyFailureKind,
    reason: string,
    error?: unknown,
  ): VerifyFailure =>
    error === undefined
      ? { ok: false, path, kind, reason }
      : { ok: false, path, kind, reason, error };

  const store = storeFor(path, load.store);
  const info = await statFile(store, path);
  if (typeof info === "object") return fail(info.kind, info.reason);
  const size = info;

  let want: ExpectedFile | undefined = given;
  let checkedAgainst: VerifySuccess["checkedAgainst"] = given === undefined
    ? null
    : "expected";
  if (want === undefined && meta !== false) {
    const read = await readMeta(meta, store);
    if (read.kind === "invalid") {
      return fail("meta", `${meta} is malformed: ${read.reason}`);
    }
    if (read.kind === "ok") {
      const name = basename(path);
      const entry = read.meta.files?.find((f) => f.name === name);
      if (entry !== undefined) {
        want = entry;
        checkedAgainst = "meta.json";
      }
    }
  }

  let checksum: string | null = null;
  if (want !== undefined) {
    const mismatch = await compareRecorded(
      store,
      path,
      size,
      want,
      checkedAgainst!,
    );
    if (mismatch !== null) return fail(mismatch.kind, mismatch.reason);
    if (want.checksum !== undefined) checksum = want.checksum;
  }

  try {
    await using reader = await openCheckpoint(path, load);
    // Tensors are read into one reused buffer (of the largest), strings
    // decoded; fresh memory for every tensor would cost page faults.
    let largest = 0;
    for (const e of reader.entries) {
      if (e.dtype !== "str") largest = Math.max(largest, e.byteLength);
    }
    const scratch = new Uint8Array(largest);
    for (const e of reader.entries) {
      if (e.dtype === "str") await reader.read(e.name);
      else await reader.readInto(e.name, scratch.subarray(0, e.byteLength));
    }
    return {
      ok: true,
      path,
      format: reader.format,
      bytes: size,
      entries: reader.entries.length,
      checksum,
      checkedAgainst,
      fileCheck: reader.check,
    };
  } catch (error) {
    if (error instanceof CorruptCheckpointError) {
      return fail("corrupt", error.reason, error);
    }
    if (error instanceof DecryptionError) {
      return fail("decryption", error.message, error);
    }
    if (error instanceof EncryptionMismatchError) {
      return fail("encryption", error.message, error);
    }
    if (isNotFound(error)) {
      return fail("missing", "the file disappeared while being read", error);
    }
    throw error;
  }
}
