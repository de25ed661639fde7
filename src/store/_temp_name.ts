// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the naming rule of this library's temporary files, runtime
// neutral (shared by the Deno file store and NodeStore).

/**
 * The names of temporary files: `.<final name>.<12 hex digits>.tmp`.
 * Nothing else matches, so MindSpore's own `X.tmp` files and a user's files
 * are never touched. The 12 digits are the capture group.
 */
export const TEMP_NAME = /^\..+\.([0-9a-f]{12})\.tmp$/;

/**
 * Whether a temporary file's final name starts with one of `prefixes`
 * (every temporary file when `prefixes` is `undefined`).
 */
export function tempNameHasPrefix(
  name: string,
  prefixes: readonly string[] | undefined,
): boolean {
  return prefixes === undefined ||
    prefixes.some((p) => name.startsWith(`.${p}`));
}
