// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: does a file still have the size and checksum recorded for it?
// The one place that compares a file with what meta.json (or a caller)
// recorded; verifyCheckpoint and findResumeCheckpoint both use it.

import { CHECKSUM_ALGORITHM } from "../store/_checksum.ts";
import { checksumFile } from "../store/checksum_file.ts";
import { type CheckpointStore, isNotFound } from "../store/store.ts";

/** Why a checkpoint failed `verifyCheckpoint`. */
export type VerifyFailureKind =
  /** The file does not exist. */
  | "missing"
  /** The path is not a regular file. */
  | "not-a-file"
  /** Its size differs from the recorded one. */
  | "size"
  /** Its checksum differs from the recorded one. */
  | "checksum"
  /** Its content is malformed (truncated, a length that lies, …). */
  | "corrupt"
  /** It could not be decrypted: wrong key or mode, or tampered. */
  | "decryption"
  /** Encrypted without a key given, or a key given for a plain file. */
  | "encryption"
  /** The `meta.json` that should describe it is malformed. */
  | "meta";

/** Why a file does not match what was recorded for it. */
export interface RecordedMismatch {
  readonly kind: VerifyFailureKind;
  readonly reason: string;
}

/**
 * The size of the regular file at `path`, or why there is none (missing,
 * or not a regular file).
 */
export async function statFile(
  store: CheckpointStore,
  path: string,
): Promise<number | RecordedMismatch> {
  const info = await store.stat(path);
  if (info === null) {
    return { kind: "missing", reason: "the file does not exist" };
  }
  if (info.kind !== "file") {
    return { kind: "not-a-file", reason: "it is not a regular file" };
  }
  return info.size;
}

/**
 * Compares a file of `size` bytes with the size, then the checksum (which
 * covers every byte), that `source` (`"meta.json"`, `"expected"`) recorded.
 *
 * @returns Why it differs, or `null` when it matches.
 */
export async function compareRecorded(
  store: CheckpointStore,
  file: string,
  size: number,
  recorded: { readonly bytes?: number; readonly checksum?: string },
  source: string,
): Promise<RecordedMismatch | null> {
  if (recorded.bytes !== undefined && size !== recorded.bytes) {
    return {
      kind: "size",
      reason: `it has ${size} bytes, ${source} records ${recorded.bytes}`,
    };
  }
  if (recorded.checksum === undefined) return null;
  if (!recorded.checksum.startsWith(`${CHECKSUM_ALGORITHM}:`)) {
    return {
      kind: "meta",
      reason: `${source} records a checksum of an unknown algorithm: ${
        JSON.stringify(recorded.checksum)
      }`,
    };
  }
  let sum: string;
  try {
    sum = await checksumFile(file, store);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    return { kind: "missing", reason: "the file disappeared while being read" };
  }
  if (sum !== recorded.checksum) {
    return {
      kind: "checksum",
      reason: `its checksum is ${sum}, ${source} records ${recorded.checksum}`,
    };
  }
  return null;
}

/**
 * Compares the file at `file` with the size and checksum `meta.json`
 * recorded when it was committed.
 *
 * @returns Why it differs, or `null` when it matches.
 */
export async function checkRecorded(
  store: CheckpointStore,
  file: string,
  recorded: { readonly bytes: number; readonly checksum: string },
): Promise<RecordedMismatch | null> {
  const size = await statFile(store, file);
  if (typeof size === "object") {
    return size.kind === "missing"
      ? {
        kind: "missing",
        reason: "meta.json lists it, but the file does not exist",
      }
      : size;
  }
  return await compareRecorded(store, file, size, recorded, "meta.json");
}
