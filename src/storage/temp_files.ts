// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Cleaning up after a crash: the temporary files {@linkcode atomicWrite}
 * leaves when the process dies between creating one and renaming it.
 *
 * @module
 */

import { join } from "node:path";
import { checkPath } from "./_paths.ts";

/**
 * The names {@linkcode atomicWrite} gives its temporary files:
 * `.<final name>.<12 hex digits>.tmp`. Nothing else matches, so MindSpore's
 * own `X.tmp` files and a user's files are never touched.
 */
const TEMP_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

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

/**
 * Removes the temporary files a crashed {@linkcode atomicWrite} left in a
 * folder (a process killed after creating `.<name>.<random>.tmp` and before
 * renaming it). Call it when a writer starts, before its first save, and
 * never while another writer saves into the same folder. A missing folder
 * is not an error.
 *
 * @param folder The folder to clean (not recursive).
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
export async function removeTempFiles(folder: string): Promise<string[]> {
  checkPath(folder, "remove temporary files");
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (!entry.isFile || !isTempFileName(entry.name)) continue;
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
