// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * What every part of the OPFS store shares: the path form (`opfs:/a/b`),
 * temporary names, Web Lock names, and errors with a Node-style `code`.
 *
 * @module
 */

import type { DirectoryHandle } from "./_opfs_types.ts";

/** The scheme of every OPFS path. */
export const SCHEME = "opfs:";

/** Temporary names: `.<final name>.<12 hex digits>.tmp` (as the local store). */
export const TEMP_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Web Lock name prefixes (one namespace per purpose). */
export const LOCK_USER = "ckpt-opfs-lock:";
export const LOCK_FILE = "ckpt-opfs-file:";
export const LOCK_WRITE = "ckpt-opfs-write:";

/** An error with a Node-style `code` (`ENOENT`, `EEXIST`, `EDQUOT`, …). */
export function codedError(
  message: string,
  code: string,
  cause?: unknown,
): Error {
  const error = new Error(message, { cause });
  (error as Error & { code: string }).code = code;
  return error;
}

/** The DOMException name of an error, or `undefined`. */
export function domName(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : undefined;
}

/** `NotFoundError` (missing) or `TypeMismatchError` (a file on the way). */
export function isMissing(error: unknown): boolean {
  const name = domName(error);
  return name === "NotFoundError" || name === "TypeMismatchError";
}

export function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Removes a failed write's temporary file. Chromium may still hold the file
 * for a moment after an aborted `createWritable()` (the removal then fails
 * with `NoModificationAllowedError`), so that is retried a few times; a
 * file already gone (moved, or never made) is fine. Should it still fail,
 * the file is left for {@linkcode OpfsStore.removeIncomplete}: the caller
 * reports the write's own error, not this one.
 */
export async function removeTemp(
  dir: DirectoryHandle,
  name: string,
): Promise<void> {
  for (let delay = 5;; delay *= 2) {
    try {
      await dir.removeEntry(name);
      return;
    } catch (error) {
      if (domName(error) === "NotFoundError") return;
      if (
        delay > 320 || (domName(error) !== "NoModificationAllowedError" &&
          domName(error) !== "InvalidModificationError")
      ) return;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Whether this code runs in a dedicated Worker. */
export function inDedicatedWorker(): boolean {
  const scope = (globalThis as { DedicatedWorkerGlobalScope?: unknown })
    .DedicatedWorkerGlobalScope;
  return typeof scope === "function" && globalThis instanceof scope;
}

/** A parsed `opfs:` path. */
export interface OpfsPath {
  /** The canonical form, `opfs:/a/b`. */
  readonly path: string;
  /** The segments, root first. */
  readonly segments: readonly string[];
}

/**
 * Parses an `opfs:` path (`opfs:/a/b` or `opfs:a/b`, both from the OPFS
 * root); empty and `.` segments are dropped, `..` is refused.
 */
export function parsePath(path: unknown, action: string): OpfsPath {
  if (typeof path !== "string" || !path.startsWith(SCHEME)) {
    throw new TypeError(
      `Cannot ${action}: expected an OPFS path such as "opfs:/run/model.ckpt", received ${
        JSON.stringify(path) ?? String(path)
      }`,
    );
  }
  const segments = path.slice(SCHEME.length).split("/").filter((s) =>
    s !== "" && s !== "."
  );
  if (segments.some((s) => s === ".." || s.includes("\0"))) {
    throw new RangeError(
      `Cannot ${action}: OPFS path "${path}" has a ".." or NUL segment`,
    );
  }
  return { path: `${SCHEME}/${segments.join("/")}`, segments };
}
