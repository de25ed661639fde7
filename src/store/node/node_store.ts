// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A {@linkcode CheckpointStore} on the local file system through
 * `node:fs/promises` only, for Node.js (20 and later); it runs under Deno
 * too. The same commit as the Deno file store (a temporary file in the
 * target's folder, fsynced, renamed, the folder fsynced); a lock without
 * `flock`, which Node.js does not have: a lock file whose holder is checked
 * for life.
 *
 * @module
 */

import { constants } from "node:fs";
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  stat as statPath,
  unlink,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import type { ByteSink } from "../../core/io.ts";
import { CorruptCheckpointError } from "../../core/errors.ts";
import { describeValue as describe } from "../../core/_describe.ts";
import { Crc32 } from "../_checksum.ts";
import { checkFileMode, checkPath } from "../_paths.ts";
import { checkReadRange, truncatedError } from "../_read_range.ts";
import { tempNameHasPrefix } from "../_temp_name.ts";
import type {
  CheckpointStore,
  RemoveIncompleteOptions,
  StoreEntry,
  StoreEntryKind,
  StoreLock,
  StoreLockOptions,
  StoreReader,
  StoreStat,
  StoreWriteOptions,
  StoreWriteResult,
} from "../store.ts";
import { takeLock } from "./_lock_file.ts";
import { forgetTemp, tempNameFor, tempWriterGone } from "./_liveness.ts";

const IS_WINDOWS = process.platform === "win32";

/** Opens for reading without blocking on a FIFO swapped in after the stat. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Bytes written between background `fdatasync` calls: 64 MiB, as the Deno
 * file store does, so the disk works while the rest is produced.
 */
const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * The most bytes one `write` call hands the OS: 1 MiB. Measured under
 * Node.js 20 on ext4 (512 MiB, 4 MiB pieces, 7 rounds interleaved): 4 MiB
 * writes at 4 KiB-aligned file offsets took 349-1,848 ms (median 591), the
 * same bytes in 1 MiB writes 344-418 ms (median 373), as fast as 4 MiB
 * writes at unaligned offsets (median 363).
 */
const WRITE_MAX_BYTES = 1024 * 1024;

function code(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function kindOf(info: {
  isFile(): boolean;
  isDirectory(): boolean;
}): StoreEntryKind {
  if (info.isFile()) return "file";
  return info.isDirectory() ? "directory" : "other";
}

/** An error that keeps the OS error's `code` and `cause`. */
function withCode(message: string, error: unknown): Error {
  const e = new Error(message, { cause: error });
  (e as Error & { code: unknown }).code = code(error);
  return e;
}

/**
 * The sink of one {@linkcode NodeStore.write}: each chunk goes straight to
 * the file handle (no copy) while its CRC-32 is computed on the JS thread.
 */
class HandleSink implements ByteSink {
  #file: FileHandle;
  #path: string;
  #crc = new Crc32();
  #bytes = 0;
  #open = true;
  #unsynced = 0;
  #syncing: Promise<void> | null = null;
  #syncError: { error: unknown } | null = null;

  constructor(file: FileHandle, path: string) {
    this.#file = file;
    this.#path = path;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.#open) {
      throw new TypeError(
        `Cannot write to "${this.#path}": the write has already ended`,
      );
    }
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot write to "${this.#path}": chunk must be a Uint8Array, received ${
          describe(chunk)
        }`,
      );
    }
    if (this.#syncError !== null) throw this.#syncError.error;
    const written = this.#writeAll(chunk);
    this.#crc.update(chunk);
    await written;
    this.#bytes += chunk.byteLength;
    this.#unsynced += chunk.byteLength;
    if (this.#unsynced >= BACKGROUND_SYNC_BYTES && this.#syncing === null) {
      this.#unsynced = 0;
      // Not awaited here; settle() awaits it, and its error fails the write.
      this.#syncing = this.#file.datasync().then(
        () => {
          this.#syncing = null;
        },
        (error: unknown) => {
          this.#syncing = null;
          this.#syncError ??= { error };
        },
      );
    }
  }

  async #writeAll(chunk: Uint8Array): Promise<void> {
    let done = 0;
    while (done < chunk.byteLength) {
      const { bytesWritten } = await this.#file.write(
        chunk,
        done,
        Math.min(chunk.byteLength - done, WRITE_MAX_BYTES),
        null,
      );
      done += bytesWritten;
    }
  }

  /** Ends the sink: later writes throw. */
  end(): StoreWriteResult {
    this.#open = false;
    return { bytes: this.#bytes, checksum: this.#crc.digest() };
  }

  /** Waits for the background sync, if any; throws its error. */
  async settle(): Promise<void> {
    if (this.#syncing !== null) await this.#syncing;
    if (this.#syncError !== null) throw this.#syncError.error;
  }
}

/** fsyncs a folder so that a rename or link inside it is durable. */
async function syncFolder(folder: string): Promise<void> {
  if (IS_WINDOWS) return; // Windows cannot open a folder as a file.
  const dir = await open(folder, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** A random-access reader over an open file handle (positioned reads). */
class HandleReader implements StoreReader {
  readonly path: string;
  readonly size: number;
  #file: FileHandle | null;
  #inFlight = new Set<Promise<void>>();

  constructor(path: string, file: FileHandle, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
  }

  readAt(position: number, into: Uint8Array): Promise<void> {
    const run = this.#read(position, into);
    this.#inFlight.add(run);
    const done = (): void => {
      this.#inFlight.delete(run);
    };
    run.then(done, done);
    return run;
  }

  async #read(position: number, into: Uint8Array): Promise<void> {
    const file = this.#file;
    if (file === null) {
      throw new TypeError(`Cannot read "${this.path}": the file is closed`);
    }
    checkReadRange(this.path, position, into.byteLength, this.size);
    let done = 0;
    while (done < into.byteLength) {
      const { bytesRead } = await file.read(
        into,
        done,
        into.byteLength - done,
        position + done,
      );
      if (bytesRead === 0) {
        throw truncatedError(this.path, position + done, this.size);
      }
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    const file = this.#file;
    this.#file = null;
    if (file === null) return;
    // Reads in flight finish before the handle closes under them.
    await Promise.allSettled([...this.#inFlight]);
    await file.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a regular file for reading: the path is stat'ed first and anything
 * else is refused unopened; the file is opened non-blocking (a FIFO put
 * there after the stat cannot block) and must be the file stat'ed.
 */
async function openRegular(
  path: string,
  action: string,
): Promise<{ file: FileHandle; size: number }> {
  const before = await statPath(path);
  if (!before.isFile()) {
    throw new CorruptCheckpointError(
      path,
      `it is not a regular file (${action})`,
    );
  }
  const file = await open(path, READ_FLAGS);
  try {
    const info = await file.stat();
    if (
      !info.isFile() || info.ino !== before.ino || info.dev !== before.dev
    ) {
      throw new CorruptCheckpointError(
        path,
        `it was replaced while being opened (${action})`,
      );
    }
    return { file, size: info.size };
  } catch (error) {
    await file.close();
    throw error;
  }
}

/**
 * A {@linkcode CheckpointStore} on the local file system for Node.js,
 * using `node:fs/promises` only (it runs under Deno too).
 *
 * - `write`: a temporary file `.<name>.<12 hex>.tmp` in the target's
 *   folder is written through its file handle, given `fileMode`, fsynced,
 *   then renamed over the target (or, with `overwrite: false`, hard-linked
 *   to it, which fails when the target exists, and unlinked), then the
 *   folder is fsynced. Its 12 hex digits start with the writer's pid, so
 *   {@linkcode NodeStore.removeIncomplete} can tell a crashed writer's file
 *   from a live one's.
 * - `lock`: a lock file taken by hard-linking a fsynced record of its
 *   holder (pid, host name, process start time, a random token) to the
 *   lock's path. A holder on this host whose process is gone (or whose pid
 *   now belongs to a process that started at another time) is taken over
 *   by exactly one waiter, under a breaker lock named after the gone
 *   holder's token. A holder on another host is never judged gone; the
 *   host name must tell apart hosts (and pid namespaces: containers) that
 *   share the folder. The lock file is not the Deno file store's `flock`
 *   file: do not share one lock path between the two stores.
 * - `removeIncomplete`: removes temporary files whose writer (the pid in
 *   their name) no longer runs on this host. Files of the Deno file store
 *   carry no pid; their random digits are read as one, so run one store per
 *   folder at a time.
 * - `checkAccess` does nothing: Node.js has no permissions to check.
 *
 * Paths are OS paths. Links count as what they point to, except in
 * `list`, which reports a link's own kind (`"other"`).
 *
 * @example Write, read and list
 * ```ts
 * import { NodeStore } from "@ckpt/monitor/node";
 * import { mkdtemp, rm } from "node:fs/promises";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await mkdtemp("/tmp/ckpt-");
 * try {
 *   const store = new NodeStore();
 *   const result = await store.write(`${dir}/a.bin`, async (sink) => {
 *     await sink.write(new TextEncoder().encode("hello, world"));
 *   });
 *   equal(result.checksum, "crc32:ffab723a");
 *   const text = new TextDecoder().decode(await store.readFile(`${dir}/a.bin`, 100));
 *   equal(text, "hello, world");
 *   equal((await store.list(dir))?.length, 1);
 * } finally {
 *   await rm(dir, { recursive: true });
 * }
 * ```
 */
export class NodeStore implements CheckpointStore {
  /** Always `"file"`. */
  readonly name = "file";

  /**
   * Opens a regular file for random-access reads (positioned reads, which
   * may run at once).
   *
   * @param path The file.
   * @returns An open reader; close it when done.
   * @throws {CorruptCheckpointError} When `path` is not a regular file.
   */
  async open(path: string): Promise<StoreReader> {
    checkPath(path, "open file");
    const { file, size } = await openRegular(path, "open file");
    return new HandleReader(path, file, size);
  }

  /**
   * Reads a whole regular file of at most `maxBytes` bytes.
   *
   * @param path The file.
   * @param maxBytes The largest size accepted.
   * @returns The file's bytes.
   * @throws {RangeError} When the file is larger than `maxBytes` (found
   *   before reading).
   */
  async readFile(path: string, maxBytes: number): Promise<Uint8Array> {
    checkPath(path, "read file");
    const { file, size } = await openRegular(path, "read file");
    try {
      if (size > maxBytes) {
        throw new RangeError(
          `Cannot read "${path}": it has ${size} bytes, more than the limit of ${maxBytes}`,
        );
      }
      const bytes = new Uint8Array(size);
      let done = 0;
      while (done < size) {
        const { bytesRead } = await file.read(bytes, done, size - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === size ? bytes : bytes.subarray(0, done);
    } finally {
      await file.close();
    }
  }

  /**
   * Writes a file through an atomic, durable commit (see the class).
   *
   * @param path The file to write.
   * @param produce Streams the bytes into the sink, in order.
   * @param options `fileMode` (default 0o400), `overwrite` (default `true`).
   * @returns The size and CRC-32 of the bytes written.
   * @throws {Error} With `code` `"EEXIST"` when `overwrite` is `false` and
   *   `path` exists (nothing is replaced).
   */
  async write(
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
    options: StoreWriteOptions = {},
  ): Promise<StoreWriteResult> {
    checkPath(path, "write file");
    if (typeof produce !== "function") {
      throw new TypeError(
        `Cannot write "${path}": produce must be a function, received ${
          describe(produce)
        }`,
      );
    }
    const fileMode = checkFileMode(
      options.fileMode ?? 0o400,
      `write "${path}"`,
    );
    const folder = dirname(path);
    const temp = join(folder, tempNameFor(basename(path)));
    let file: FileHandle | null = null;
    try {
      file = await open(temp, "wx", 0o600);
      const sink = new HandleSink(file, path);
      let result: StoreWriteResult;
      try {
        await produce(sink);
      } finally {
        result = sink.end();
        // Also on error: no background sync may outlive the handle.
        await sink.settle().catch(() => {});
      }
      await sink.settle();
      // Every byte is with the OS: the caller may reuse its memory while
      // the commit runs (a background save hands its arena back here).
      options.onWritten?.();
      if (!IS_WINDOWS) await file.chmod(fileMode);
      await file.sync();
      // Elsewhere the file stays open until it has its final name: an open
      // descriptor is how another thread's removeIncomplete tells it is
      // being written (see _liveness.ts).
      if (IS_WINDOWS) {
        await file.close();
        file = null;
      }
      if (options.overwrite === false) {
        try {
          await link(temp, path);
        } catch (error) {
          if (code(error) !== "EEXIST") throw error;
          throw withCode(
            `Cannot write "${path}": it exists and overwrite is false; nothing was replaced`,
            error,
          );
        }
        await unlink(temp);
      } else {
        await rename(temp, path);
      }
      forgetTemp(temp);
      await file?.close();
      file = null;
      await syncFolder(folder);
      return result;
    } catch (error) {
      await file?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      forgetTemp(temp);
      const c = code(error);
      if (c === "ENOSPC" || c === "EDQUOT") {
        throw withCode(
          `Cannot write "${path}": no space left on the device (${c}); the previous content of "${path}" is unchanged and the temporary file was removed`,
          error,
        );
      }
      throw error;
    }
  }

  /**
   * Describes a path, following links.
   *
   * @param path The path.
   * @returns Its kind, size, modification time and whether it is a link;
   *   `null` when nothing is there (or a link points nowhere).
   */
  async stat(path: string): Promise<StoreStat | null> {
    checkPath(path, "stat path");
    try {
      const own = await lstat(path);
      const info = own.isSymbolicLink() ? await statPath(path) : own;
      return {
        kind: kindOf(info),
        size: info.isDirectory() ? 0 : info.size,
        mtimeMs: info.mtimeMs,
        isSymlink: own.isSymbolicLink(),
      };
    } catch (error) {
      if (code(error) === "ENOENT") return null;
      throw error;
    }
  }

  /**
   * Lists a folder's entries, each with its own kind (a link is
   * `"other"`).
   *
   * @param dir The folder.
   * @returns The entries, or `null` when the folder does not exist.
   */
  async list(dir: string): Promise<StoreEntry[] | null> {
    checkPath(dir, "list folder");
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries.map((e) => ({ name: e.name, kind: kindOf(e) }));
    } catch (error) {
      if (code(error) === "ENOENT") return null;
      throw error;
    }
  }

  /**
   * Removes a file.
   *
   * @param path The file.
   * @returns `false` when it was already gone.
   */
  async remove(path: string): Promise<boolean> {
    checkPath(path, "remove file");
    try {
      await unlink(path);
      return true;
    } catch (error) {
      if (code(error) === "ENOENT") return false;
      throw error;
    }
  }

  /**
   * Creates a folder and its parents (mode 0700) when missing.
   *
   * @param path The folder.
   * @returns A promise that resolves once the folder exists.
   */
  async ensureDir(path: string): Promise<void> {
    checkPath(path, "create folder");
    await mkdir(path, { recursive: true, mode: 0o700 });
  }

  /**
   * Takes the exclusive lock whose file is `path` (see the class).
   *
   * @param path The lock file (its folder must exist).
   * @param options `wait` (default `true`), `owner` (recorded in the file).
   * @returns The held lock, or `null` with `wait: false` when a live holder
   *   has it.
   */
  lock(
    path: string,
    options: StoreLockOptions = {},
  ): Promise<StoreLock | null> {
    checkPath(path, "take lock");
    return takeLock(path, options.wait ?? true, options.owner ?? null);
  }

  /**
   * Removes the temporary files of writers that no longer run.
   *
   * @param dir The folder (not recursive; a missing folder is no error).
   * @param options `prefixes`: only temporaries of final names starting
   *   with one of these.
   * @returns The paths removed, sorted.
   */
  async removeIncomplete(
    dir: string,
    options: RemoveIncompleteOptions = {},
  ): Promise<string[]> {
    checkPath(dir, "remove incomplete writes");
    const entries = await this.list(dir);
    const removed: string[] = [];
    for (const entry of entries ?? []) {
      if (
        entry.kind !== "file" || await tempWriterGone(dir, entry.name) !== true
      ) {
        continue;
      }
      if (!tempNameHasPrefix(entry.name, options.prefixes)) continue;
      const path = join(dir, entry.name);
      if (await this.remove(path)) removed.push(path);
    }
    return removed.sort();
  }

  /**
   * Does nothing: Node.js has no permissions to check.
   *
   * @param _dir The folder.
   * @param _access The access.
   */
  checkAccess(_dir: string, _access: "read" | "write"): void {}
}
