// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: does a file still have the size and checksum recorded for it?

import type { VerifyFailureKind } from "./verify.ts";
import { CHECKSUM_ALGORITHM } from "../store/_checksum.ts";
import { checksumFile } from "../store/checksum_file.ts";

/** Why a file does not match what was recorded for it. */
export interface RecordedMismatch {
  readonly kind: VerifyFailureKind;
  readonly reason: string;
}

/**
 * Compares a file's size, then its checksum (which covers every byte), with
 * those `meta.json` recorded when it was committed.
 *
 * @returns Why it differs, or `null` when it matches.
 */
export async function checkRecorded(
  file: string,
  recorded: { readonly bytes: number; readonly checksum: string },
): Promise<RecordedMismatch | null> {
  let size: number;
  try {
    const info = await Deno.stat(file);
    if (!info.isFile) {
      return { kind: "not-a-file", reason: "it is not a regular file" };
    }
    size = info.size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return {
        kind: "missing",
        reason: "meta.json lists it, but the file does not exist",
      };
    }
    throw error;
  }
  if (size !== recorded.bytes) {
    return {
      kind: "size",
      reason: `it has ${size} bytes, meta.json records ${recorded.bytes}`,
    };
  }
  if (!recorded.checksum.startsWith(`${CHECKSUM_ALGORITHM}:`)) {
    return {
      kind: "meta",
      reason: `meta.json records a checksum of an unknown algorithm: ${
        JSON.stringify(recorded.checksum)
      }`,
    };
  }
  const sum = await checksumFile(file);
  if (sum !== recorded.checksum) {
    return {
      kind: "checksum",
      reason: `its checksum is ${sum}, meta.json records ${recorded.checksum}`,
    };
  }
  return null;
}
