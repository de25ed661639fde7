// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the checks of a random-access file read, runtime neutral
// (shared by the Deno file source and NodeStore's reader).

import { CorruptCheckpointError } from "../core/errors.ts";

/** Throws a `RangeError` unless `length` bytes at `position` fit in `size`. */
export function checkReadRange(
  path: string,
  position: number,
  length: number,
  size: number,
): void {
  if (
    !Number.isSafeInteger(position) || position < 0 || position + length > size
  ) {
    throw new RangeError(
      `Cannot read "${path}": bytes ${position}..${
        position + length
      } are outside the file's ${size} bytes`,
    );
  }
}

/** The error of a file that ended at byte `at`, before its `size`. */
export function truncatedError(
  path: string,
  at: number,
  size: number,
): CorruptCheckpointError {
  return new CorruptCheckpointError(
    path,
    `file ended at byte ${at}, before its recorded size of ${size} bytes (was it truncated while being read?)`,
  );
}
