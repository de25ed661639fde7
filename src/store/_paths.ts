// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { describeValue as describe } from "../core/_describe.ts";

/**
 * Checks a file path argument: a non-empty string without NUL.
 *
 * @param path The value to check.
 * @param action What could not be done, e.g. `"save checkpoint"`.
 * @returns The path.
 */
export function checkPath(path: unknown, action: string): string {
  if (typeof path !== "string") {
    throw new TypeError(
      `Cannot ${action}: path must be a string, received ${describe(path)}`,
    );
  }
  if (path.length === 0 || path.includes("\0")) {
    throw new RangeError(
      `Cannot ${action}: path must be non-empty and without NUL, received ${
        JSON.stringify(path)
      }`,
    );
  }
  return path;
}

/**
 * Checks a `fileMode` option: an integer permission mode in 0..0o777.
 *
 * @param mode The value to check.
 * @param action What could not be done.
 * @returns The mode.
 */
export function checkFileMode(mode: unknown, action: string): number {
  if (typeof mode !== "number") {
    throw new TypeError(
      `Cannot ${action}: fileMode must be a number, received ${describe(mode)}`,
    );
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `Cannot ${action}: fileMode must be an integer from 0 to 0o777, received ${mode}`,
    );
  }
  return mode;
}

/**
 * Checks that a read of `length` bytes at `position` lies inside a file of
 * `size` bytes.
 *
 * @param path The file, for the message.
 * @param position Where the read starts.
 * @param length How many bytes it reads.
 * @param size The file's size.
 * @throws {RangeError} Naming the range and the size when it does not fit.
 */
export function checkReadRange(
  path: string,
  position: number,
  length: number,
  size: number,
): void {
  if (
    !Number.isSafeInteger(position) || position < 0 ||
    position + length > size
  ) {
    throw new RangeError(
      `Cannot read "${path}": bytes ${position}..${
        position + length
      } are outside the file's ${size} bytes`,
    );
  }
}
