// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Cleaning up after a crash: the temporary files {@linkcode atomicWrite}
 * leaves when the process dies between creating one and renaming it.
 *
 * @module
 */

import { join } from "node:path";
import { checkPath } from "./_paths.ts";
import { TEMP_NAME, tempNameHasPrefix } from "./_temp_name.ts";

/**
 * Returns whether a file name is one of this library's temporary names
 * (`.<final name>.<12 hex digits>.tmp`).
 *
 * @param name A file name, without folders.
 * @returns `true` for a temporary name of {@linkcode atomicWrite}.
 *
 * @example
 * ```ts
 * import { isTempFileName } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * equal(isTempFileName(".CKP_rank_0-1_5.ckpt.0a1b2c3d4e5f.tmp"), true);
 * equal(isTempFileName("CKP_rank_0-1_5.tmp"), false);
 * ```
 */
export function isTempFileName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** Options of {@linkcode removeTempFiles}. */
export interface RemoveTempFilesOptions {
  /**
   * Remove only temporary files whose final name starts with one of these.
   * @default {undefined} (every temporary file of this library)
   */
  readonly prefixes?: readonly string[];
}

/**
 * Removes the temporary files a crashed {@linkcode atomicWrite} left in a
 * folder (a process killed after creating `.<name>.<random>.tmp` and before
 * renaming it). Call it when a writer starts, before its first save, and
 * never while another writer saves into the same folder. A missing folder
 * is not an error.
 *
 * @param folder The folder to clean (not recursive).
 * @param options `prefixes`: remove only temporary files whose final name
 *   starts with one of these (a monitor passes its own file prefix and
 *   `meta.json`, so another writer's files in a shared folder are left alone).
 * @returns The paths removed.
 * @throws {TypeError} When `folder` is not a string.
 *
 * @example
 * ```ts
 * import { removeTempFiles } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await Deno.writeTextFile(`${dir}/.m.ckpt.0123456789ab.tmp`, "partial");
 *   await Deno.writeTextFile(`${dir}/notes.tmp`, "not ours");
 *   deepEqual(await removeTempFiles(dir), [`${dir}/.m.ckpt.0123456789ab.tmp`]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function removeTempFiles(
  folder: string,
  options: RemoveTempFilesOptions = {},
): Promise<string[]> {
  checkPath(folder, "remove temporary files");
  const prefixes = options.prefixes;
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (!entry.isFile || !isTempFileName(entry.name)) continue;
      if (!tempNameHasPrefix(entry.name, prefixes)) continue;
      const path = join(folder, entry.name);
      try {
        await Deno.remove(path);
        removed.push(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return removed;
    throw error;
  }
  return removed.sort();
}
