// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The storage seam: the one interface through which every byte the library
 * reads or writes flows. The local file system ({@linkcode localStore}) is
 * the default implementation; object storage and the browser's file system
 * implement the same interface, so the monitor, resume and the rank merge
 * never know where their files live.
 *
 * The interface is shaped by its weakest implementation: no rename (object
 * stores commit by completing an upload), no `flock` (a lock is a
 * conditional create of a claim object), reads are random access by range.
 *
 * Paths are strings in the store's own syntax, always with `/` between
 * segments: an OS path for the local store, `s3://bucket/key` for S3,
 * `opfs:/folder/file` for the browser. {@linkcode joinPath},
 * {@linkcode dirnamePath} and {@linkcode basenamePath} work on all of them.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../core/io.ts";

/** What kind of thing a path names. */
export type StoreEntryKind = "file" | "directory" | "other";

/** One entry of {@linkcode CheckpointStore.list}. */
export interface StoreEntry {
  /** The entry's name inside the folder (no `/`). */
  readonly name: string;
  /** File, folder, or anything else (a FIFO, a device, a socket). */
  readonly kind: StoreEntryKind;
}

/** What {@linkcode CheckpointStore.stat} reports. */
export interface StoreStat {
  /** File, folder, or anything else. */
  readonly kind: StoreEntryKind;
  /** Size in bytes (0 for folders). */
  readonly size: number;
  /** Last modification, in ms since the epoch, when the store knows it. */
  readonly mtimeMs: number | null;
  /**
   * Whether the path itself is a symbolic link (the other fields describe
   * its target). Always `false` on stores without links.
   */
  readonly isSymlink: boolean;
}

/** An open file for random-access reads; close it when done. */
export interface StoreReader extends ByteSource, AsyncDisposable {
  /** The file's path. */
  readonly path: string;
  /** Closes the file; reads in flight finish first, later reads reject. */
  close(): Promise<void>;
}

/** Options of {@linkcode CheckpointStore.write}. */
export interface StoreWriteOptions {
  /**
   * Permission bits of the committed file, where the store has them.
   *
   * @default {0o400}
   */
  readonly fileMode?: number;
  /**
   * Whether the commit may replace an existing file at `path`. With
   * `false`, the commit fails with `Deno.errors.AlreadyExists` (or an error
   * whose `code` is `"EEXIST"`) when `path` exists, and nothing is replaced.
   *
   * @default {true}
   */
  readonly overwrite?: boolean;
  /**
   * Called once every byte of the file has been handed to the operating
   * system, before the commit (fsync, rename) that makes it durable and
   * visible; the memory the bytes came from is no longer read after it.
   * A store that cannot tell when that is does not call it. A failure of
   * the commit still fails the write.
   */
  readonly onWritten?: () => void;
}

/** What {@linkcode CheckpointStore.write} committed. */
export interface StoreWriteResult {
  /** Number of bytes in the file. */
  readonly bytes: number;
  /** `"crc32:<8 lowercase hex digits>"` of the bytes as written. */
  readonly checksum: string;
}

/** Options of {@linkcode CheckpointStore.lock}. */
export interface StoreLockOptions {
  /**
   * Wait until the lock is free (`true`) or return `null` at once when
   * another holder has it (`false`).
   *
   * @default {true}
   */
  readonly wait?: boolean;
  /** Who takes the lock, recorded for the error a refused taker sees. */
  readonly owner?: string;
}

/** A held lock. Releasing twice is harmless. */
export interface StoreLock extends AsyncDisposable {
  /** Releases the lock. */
  release(): Promise<void>;
}

/** Options of {@linkcode CheckpointStore.removeIncomplete}. */
export interface RemoveIncompleteOptions {
  /**
   * Remove only incomplete writes whose final name starts with one of these.
   *
   * @default {undefined} (every incomplete write of this library)
   */
  readonly prefixes?: readonly string[];
}

/**
 * Where checkpoints live. Every file the library reads or writes goes
 * through one of these.
 *
 * Errors: a missing path is `Deno.errors.NotFound` (or, outside Deno, an
 * error whose `code` is `"ENOENT"`); use {@linkcode isNotFound} to test.
 */
export interface CheckpointStore {
  /** A short name for messages: `"file"`, `"s3"`, `"opfs"`, `"memory"`. */
  readonly name: string;

  /**
   * Opens a regular file for random-access reads. Anything but a regular
   * file (a folder, a FIFO, a device) is refused without being opened for
   * reading.
   */
  open(path: string): Promise<StoreReader>;

  /**
   * Reads a whole regular file of at most `maxBytes` bytes (a larger file
   * is a `RangeError` naming the path and the limit, found before reading).
   */
  readFile(path: string, maxBytes: number): Promise<Uint8Array>;

  /**
   * Writes a file through an atomic commit: `produce` streams the bytes
   * into the sink; the file appears at `path`, complete and durable, only
   * when the returned promise resolves. On any failure nothing appears,
   * whatever was at `path` before is unchanged, and the partial data is
   * removed (or, after a crash, left for {@linkcode removeIncomplete}).
   * A store whose files take writes at any offset may give the sink a
   * `writeAt` (see {@linkcode ByteSink}; the local store does), which
   * producers that know their layout (the encrypting sink) use to write
   * several ranges at once; stores that only append leave it out.
   */
  write(
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
    options?: StoreWriteOptions,
  ): Promise<StoreWriteResult>;

  /** Describes a path, following links; `null` when nothing is there. */
  stat(path: string): Promise<StoreStat | null>;

  /**
   * Lists a folder's entries (not recursive, in no particular order);
   * `null` when the folder does not exist.
   */
  list(dir: string): Promise<StoreEntry[] | null>;

  /** Removes a file; resolves `false` when it was already gone. */
  remove(path: string): Promise<boolean>;

  /**
   * Makes sure a folder exists, creating it and its parents (mode 0700
   * where the store has modes). A no-op on stores without folders.
   */
  ensureDir(path: string): Promise<void>;

  /**
   * Takes an exclusive lock named `path`, shared with other processes and
   * freed when its holder dies (the local store: `flock`; object stores: a
   * claim object with a lease). Resolves `null` only with `wait: false` when
   * another holder has it.
   */
  lock(path: string, options?: StoreLockOptions): Promise<StoreLock | null>;

  /**
   * Removes what crashed writes left in a folder (temporary files, incomplete
   * uploads) and returns their paths. Never touches a write in progress of a
   * live writer that holds the folder's lock.
   */
  removeIncomplete(
    dir: string,
    options?: RemoveIncompleteOptions,
  ): Promise<string[]>;

  /**
   * Throws when this process may not do `access` under `dir` (for Deno:
   * `Deno.errors.PermissionDenied` naming the exact `--allow-*` flag),
   * without prompting. Stores without permissions do nothing.
   */
  checkAccess(dir: string, access: "read" | "write"): void;
}

/**
 * Joins path segments with `/`, dropping empty segments and `.` and keeping
 * a scheme such as `s3://` intact.
 *
 * @param base The first segment (may carry a scheme or a leading `/`).
 * @param parts Further segments.
 * @returns The joined path.
 *
 * @example
 * ```ts
 * import { joinPath } from "@ckpt/monitor";
 * console.assert(joinPath("s3://b/run", "rank_0", "x.ckpt") === "s3://b/run/rank_0/x.ckpt");
 * console.assert(joinPath("/tmp/", "a") === "/tmp/a");
 * console.assert(joinPath("./output", "x") === "output/x");
 * ```
 */
export function joinPath(base: string, ...parts: string[]): string {
  let out = base;
  for (const part of parts) {
    if (part === "" || part === ".") continue;
    if (out === "" || out === ".") {
      out = part;
    } else {
      out = out.endsWith("/") ? out + part : `${out}/${part}`;
    }
  }
  // As node:path's join does for these: "./a//b/./c" is "a/b/c" ("..",
  // which needs the file system's view of links, is left alone).
  const [scheme, rest] = splitScheme(out);
  const tidy = rest.replace(/\/{2,}/g, "/").replace(/(^|\/)(\.\/)+/g, "$1")
    .replace(/\/\.$/, "");
  return scheme + (tidy === "" && scheme === "" ? "." : tidy);
}

/** Splits off the scheme (`s3://`, `opfs:`) so that path rules see the rest. */
function splitScheme(path: string): [string, string] {
  const m = /^[a-z][a-z0-9+.-]*:(\/\/)?/i.exec(path);
  // A one-letter "scheme" is a Windows drive ("C:"), not a scheme.
  if (m === null || m[0].length === 2) return ["", path];
  return [m[0], path.slice(m[0].length)];
}

/**
 * The folder part of a path (`/` separated, scheme kept).
 *
 * @param path A path.
 * @returns Everything before the last segment, or `.` when there is none.
 *
 * @example
 * ```ts
 * import { dirnamePath } from "@ckpt/monitor";
 * console.assert(dirnamePath("s3://b/run/x.ckpt") === "s3://b/run");
 * console.assert(dirnamePath("x.ckpt") === ".");
 * ```
 */
export function dirnamePath(path: string): string {
  const [scheme, rest] = splitScheme(path);
  const trimmed = rest.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return scheme === "" ? "." : scheme;
  if (i === 0) return scheme + "/";
  return scheme + trimmed.slice(0, i);
}

/**
 * The last segment of a path.
 *
 * @param path A path.
 * @returns The name after the last `/`.
 *
 * @example
 * ```ts
 * import { basenamePath } from "@ckpt/monitor";
 * console.assert(basenamePath("s3://b/run/x.ckpt") === "x.ckpt");
 * ```
 */
export function basenamePath(path: string): string {
  const [, rest] = splitScheme(path);
  const trimmed = rest.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/**
 * Whether an error means "no such file or folder", from any store.
 *
 * @param error Anything thrown.
 * @returns `true` for `Deno.errors.NotFound` or an error with code `ENOENT`.
 *
 * @example
 * ```ts
 * import { isNotFound } from "@ckpt/monitor";
 * console.assert(isNotFound(Object.assign(new Error("x"), { code: "ENOENT" })));
 * ```
 */
export function isNotFound(error: unknown): boolean {
  const deno = (globalThis as { Deno?: { errors?: { NotFound?: unknown } } })
    .Deno;
  const notFound = deno?.errors?.NotFound;
  if (typeof notFound === "function" && error instanceof notFound) return true;
  return (error as { code?: unknown } | null)?.code === "ENOENT";
}

/**
 * Whether `error` says this program may not do what it tried: Deno's
 * `PermissionDenied` / `NotCapable`, or `EACCES` / `EPERM` (Node.js).
 */
export function isPermissionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return error.name === "PermissionDenied" || error.name === "NotCapable" ||
    code === "EACCES" || code === "EPERM";
}
