// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A {@linkcode CheckpointStore} on the browser's Origin Private File System
 * (OPFS), with paths `opfs:/folder/file`.
 *
 * - **Writes** go to a temporary file `.<name>.<12 hex digits>.tmp` beside
 *   the target. In a dedicated Worker they go through
 *   `createSyncAccessHandle()` (`write` at offsets, `flush`, `close`: the
 *   fast path); elsewhere through `createWritable()`.
 * - **Commit** moves the temporary file over the final name with
 *   `FileSystemHandle.move()` (Chromium 110+, Firefox 111+), which replaces
 *   an existing file in one step. Where `move` is missing, the complete
 *   temporary file is copied into the final name while an exclusive Web Lock
 *   named for that file is held; this store's readers take the same lock
 *   (shared) to open a file, so they see the old file or the new one, never
 *   a part. (A crash during that copy can leave a partial final file; the
 *   checksum `meta.json` records for it then rejects it.)
 * - **Locks** are Web Locks (`navigator.locks`), shared by every page and
 *   Worker of the origin and freed when the holder's page or Worker ends.
 * - A full quota (`QuotaExceededError`) fails the write with an error whose
 *   `code` is `"EDQUOT"`, naming the file; the temporary file is removed and
 *   the previous file is unchanged.
 *
 * OPFS needs a secure context (`https:` or `http://127.0.0.1`/`localhost`).
 *
 * @module
 */

import type { ByteSink } from "../../core/io.ts";
import { CorruptCheckpointError } from "../../core/errors.ts";
import type {
  CheckpointStore,
  RemoveIncompleteOptions,
  StoreEntry,
  StoreLock,
  StoreLockOptions,
  StoreReader,
  StoreStat,
  StoreWriteOptions,
  StoreWriteResult,
} from "../store.ts";
import {
  browserNavigator,
  type DirectoryHandle,
  type FileHandle,
  type LockManager,
} from "./_opfs_types.ts";
import {
  codedError,
  domName,
  isMissing,
  LOCK_FILE,
  LOCK_USER,
  LOCK_WRITE,
  type OpfsPath,
  parsePath,
  randomHex,
  removeTemp,
  SCHEME,
  TEMP_NAME,
} from "./_opfs_common.ts";
import {
  commitTemp,
  fillTemp,
  refuseExisting,
  type WriteMode,
} from "./_opfs_write.ts";
import { OpfsReader, takeWebLock } from "./_opfs_read.ts";
import { quotaError } from "./storage_report.ts";

export {
  type OpfsStorageReport,
  opfsStorageReport,
  type OpfsStorageReportOptions,
} from "./storage_report.ts";

/** Options of {@linkcode OpfsStore}. */
export interface OpfsStoreOptions {
  /**
   * Write through `createSyncAccessHandle()` when running in a dedicated
   * Worker (`true`), or always through `createWritable()` (`false`).
   *
   * @default {true}
   */
  readonly syncAccess?: boolean;
  /**
   * Commit with `FileSystemHandle.move()` where the browser has it (`true`),
   * or always with the locked copy that browsers without `move` use
   * (`false`; slower, for tests of that path).
   *
   * @default {true}
   */
  readonly move?: boolean;
  /**
   * Compute the CRC-32 of chunks of 1 MiB or more in a helper Worker, beside
   * the write (`true`), or on the writing thread (`false`, for pages that
   * need the second core, or forbid `blob:` Workers anyway).
   *
   * @default {true}
   */
  readonly checksumWorker?: boolean;
}

/**
 * Checkpoints in the browser's Origin Private File System. Paths are
 * `opfs:/folder/file`, from the origin's OPFS root.
 *
 * @example Write, list and read back (in a page or Worker)
 * ```ts ignore
 * import { OpfsStore } from "@ckpt/monitor";
 *
 * const store = new OpfsStore();
 * await store.ensureDir("opfs:/run");
 * const { checksum } = await store.write("opfs:/run/a.bin", async (sink) => {
 *   await sink.write(new TextEncoder().encode("hello"));
 * });
 * console.log(checksum, await store.list("opfs:/run"));
 * console.log(await store.readFile("opfs:/run/a.bin", 1024));
 * ```
 */
export class OpfsStore implements CheckpointStore {
  /** Always `"opfs"`. */
  readonly name = "opfs";
  #mode: WriteMode;
  #root: Promise<DirectoryHandle> | null = null;

  /**
   * Makes a store on the origin's OPFS. Nothing is touched until the first
   * call.
   *
   * @param options `syncAccess`, `move`, `checksumWorker`.
   */
  constructor(options: OpfsStoreOptions = {}) {
    this.#mode = {
      syncAccess: options.syncAccess ?? true,
      move: options.move ?? true,
      checksumWorker: options.checksumWorker ?? true,
    };
  }

  #locks(action: string): LockManager {
    const locks = browserNavigator().locks;
    if (locks === undefined) {
      throw new Error(
        `Cannot ${action}: navigator.locks (Web Locks) is missing; OPFS checkpoints need a secure context (https: or http://127.0.0.1)`,
      );
    }
    return locks;
  }

  #rootDir(action: string): Promise<DirectoryHandle> {
    if (this.#root === null) {
      const storage = browserNavigator().storage;
      if (typeof storage?.getDirectory !== "function") {
        return Promise.reject(
          new Error(
            `Cannot ${action}: this context has no Origin Private File System (navigator.storage.getDirectory is missing; it needs a secure context, https: or http://127.0.0.1)`,
          ),
        );
      }
      const root = storage.getDirectory();
      this.#root = root;
      // A failed lookup is not cached; the next call tries again.
      root.catch(() => {
        if (this.#root === root) this.#root = null;
      });
    }
    return this.#root;
  }

  /** The folder `segments`, created when `create`; ENOENT names `path`. */
  async #dir(
    segments: readonly string[],
    create: boolean,
    action: string,
    path: string,
  ): Promise<DirectoryHandle> {
    let dir = await this.#rootDir(action);
    for (const segment of segments) {
      try {
        dir = await dir.getDirectoryHandle(segment, { create });
      } catch (error) {
        if (!isMissing(error)) throw error;
        throw codedError(
          `Cannot ${action} "${path}": folder "${segment}" does not exist${
            domName(error) === "TypeMismatchError"
              ? " (a file has its name)"
              : ""
          }`,
          "ENOENT",
          error,
        );
      }
    }
    return dir;
  }

  /** The parent folder and the file name of a path with a file name. */
  async #parent(
    path: unknown,
    action: string,
  ): Promise<{ p: OpfsPath; dir: DirectoryHandle; name: string }> {
    const p = parsePath(path, action);
    const name = p.segments.at(-1);
    if (name === undefined) {
      throw new RangeError(`Cannot ${action}: "${p.path}" names no file`);
    }
    const dir = await this.#dir(p.segments.slice(0, -1), false, action, p.path);
    return { p, dir, name };
  }

  /** Takes `getFile()` of a regular file under the file's shared lock. */
  async #snapshot(path: unknown, action: string): Promise<[OpfsPath, File]> {
    const { p, dir, name } = await this.#parent(path, action);
    let handle: FileHandle;
    try {
      handle = await dir.getFileHandle(name);
    } catch (error) {
      if (domName(error) === "TypeMismatchError") {
        throw new CorruptCheckpointError(p.path, "it is not a regular file", {
          cause: error,
        });
      }
      if (domName(error) !== "NotFoundError") throw error;
      throw codedError(
        `Cannot ${action} "${p.path}": no such file`,
        "ENOENT",
        error,
      );
    }
    const file = await this.#locks(action).request(
      LOCK_FILE + p.path,
      { mode: "shared" },
      () => handle.getFile(),
    );
    return [p, file];
  }

  /**
   * Opens a file for random-access reads over a snapshot (`getFile()`):
   * should the file be replaced later, reads fail rather than mixing the
   * two files.
   *
   * @param path An `opfs:` path.
   * @returns The open file.
   */
  async open(path: string): Promise<StoreReader> {
    const [p, file] = await this.#snapshot(path, "open");
    return new OpfsReader(p.path, file);
  }

  /**
   * Reads a whole file of at most `maxBytes` bytes.
   *
   * @param path An `opfs:` path.
   * @param maxBytes The largest size accepted.
   * @returns The file's bytes.
   */
  async readFile(path: string, maxBytes: number): Promise<Uint8Array> {
    const [p, file] = await this.#snapshot(path, "read");
    if (file.size > maxBytes) {
      throw new RangeError(
        `Cannot read "${p.path}": its ${file.size} bytes exceed the limit of ${maxBytes}`,
      );
    }
    return new Uint8Array(await file.arrayBuffer());
  }

  /**
   * Writes a file atomically: the bytes go to a temporary file, which is
   * moved over `path` once complete (see the module documentation).
   *
   * @param path An `opfs:` path; its folder must exist.
   * @param produce Writes the file's bytes to the sink, in order.
   * @param options `overwrite` (`fileMode` has no meaning here).
   * @returns The size and CRC-32 of the bytes written.
   */
  async write(
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
    options: StoreWriteOptions = {},
  ): Promise<StoreWriteResult> {
    if (typeof produce !== "function") {
      throw new TypeError(
        `Cannot write ${
          JSON.stringify(path)
        }: produce must be a function, received ${typeof produce}`,
      );
    }
    const { p, dir, name } = await this.#parent(path, "write");
    const overwrite = options.overwrite ?? true;
    if (!overwrite) await refuseExisting(dir, name, p.path);
    const tempName = `.${name}.${randomHex(6)}.tmp`;
    const locks = this.#locks("write");
    // Held for the whole write so removeIncomplete leaves this file alone.
    return await locks.request(
      LOCK_WRITE + p.path.slice(0, -name.length) + tempName,
      { mode: "exclusive" },
      async () => {
        try {
          const temp = await dir.getFileHandle(tempName, { create: true });
          const result = await fillTemp(temp, p.path, produce, this.#mode);
          await commitTemp(locks, {
            dir,
            temp,
            tempName,
            name,
            path: p.path,
            overwrite,
          }, this.#mode);
          return result;
        } catch (error) {
          await removeTemp(dir, tempName);
          throw await quotaError(p.path, error) ?? error;
        }
      },
    );
  }

  /**
   * Describes a path; `null` when nothing is there.
   *
   * @param path An `opfs:` path.
   * @returns Kind, size and modification time.
   */
  async stat(path: string): Promise<StoreStat | null> {
    const p = parsePath(path, "stat");
    const name = p.segments.at(-1);
    if (name === undefined) {
      await this.#rootDir("stat");
      return { kind: "directory", size: 0, mtimeMs: null, isSymlink: false };
    }
    let dir: DirectoryHandle;
    try {
      dir = await this.#dir(p.segments.slice(0, -1), false, "stat", p.path);
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return null;
      throw error;
    }
    try {
      const file = await (await dir.getFileHandle(name)).getFile();
      return {
        kind: "file",
        size: file.size,
        mtimeMs: file.lastModified,
        isSymlink: false,
      };
    } catch (error) {
      if (domName(error) === "NotFoundError") return null;
      if (domName(error) !== "TypeMismatchError") throw error;
    }
    await dir.getDirectoryHandle(name);
    return { kind: "directory", size: 0, mtimeMs: null, isSymlink: false };
  }

  /**
   * Lists a folder; `null` when it does not exist.
   *
   * @param dir An `opfs:` folder path.
   * @returns Its entries.
   */
  async list(dir: string): Promise<StoreEntry[] | null> {
    const p = parsePath(dir, "list");
    let handle: DirectoryHandle;
    try {
      handle = await this.#dir(p.segments, false, "list", p.path);
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return null;
      throw error;
    }
    const entries: StoreEntry[] = [];
    for await (const [name, entry] of handle.entries()) {
      entries.push({ name, kind: entry.kind });
    }
    return entries;
  }

  /**
   * Removes a file (not a folder).
   *
   * @param path An `opfs:` path.
   * @returns `false` when it was already gone.
   */
  async remove(path: string): Promise<boolean> {
    let parent;
    try {
      parent = await this.#parent(path, "remove");
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return false;
      throw error;
    }
    const { p, dir, name } = parent;
    try {
      await dir.getFileHandle(name);
    } catch (error) {
      if (domName(error) === "NotFoundError") return false;
      if (domName(error) === "TypeMismatchError") {
        throw codedError(
          `Cannot remove "${p.path}": it is a folder, not a file`,
          "EISDIR",
          error,
        );
      }
      throw error;
    }
    try {
      await dir.removeEntry(name);
      return true;
    } catch (error) {
      if (domName(error) === "NotFoundError") return false;
      throw error;
    }
  }

  /**
   * Creates a folder and its parents when missing.
   *
   * @param path An `opfs:` folder path.
   * @returns A promise that resolves once the folder exists.
   */
  async ensureDir(path: string): Promise<void> {
    const p = parsePath(path, "create folder");
    await this.#dir(p.segments, true, "create folder", p.path);
  }

  /**
   * Takes the exclusive Web Lock named for `path` (no file is made). The
   * `owner` option is not recorded: Web Locks carry no data.
   *
   * @param path An `opfs:` path naming the lock.
   * @param options `wait` (`false`: resolve `null` when held elsewhere).
   * @returns The held lock, or `null`.
   */
  lock(
    path: string,
    options: StoreLockOptions = {},
  ): Promise<StoreLock | null> {
    let name: string;
    let locks: LockManager;
    try {
      name = LOCK_USER + parsePath(path, "lock").path;
      locks = this.#locks("lock");
    } catch (error) {
      return Promise.reject(error);
    }
    return takeWebLock(locks, name, options.wait ?? true);
  }

  /**
   * Removes the temporary files of writes that ended without committing
   * (their page or Worker died). A write in progress holds a Web Lock named
   * for its temporary file, so it is never touched.
   *
   * @param dir An `opfs:` folder path.
   * @param options `prefixes`: only temporary files of these final names.
   * @returns The paths removed, sorted.
   */
  async removeIncomplete(
    dir: string,
    options: RemoveIncompleteOptions = {},
  ): Promise<string[]> {
    const p = parsePath(dir, "remove incomplete writes");
    const entries = await this.list(p.path);
    if (entries === null) return [];
    const handle = await this.#dir(p.segments, false, "remove", p.path);
    const locks = this.#locks("remove incomplete writes");
    const removed: string[] = [];
    for (const entry of entries) {
      if (entry.kind !== "file" || !TEMP_NAME.test(entry.name)) continue;
      const prefixes = options.prefixes;
      if (
        prefixes !== undefined &&
        !prefixes.some((prefix) => entry.name.startsWith(`.${prefix}`))
      ) continue;
      const tempPath = p.segments.length === 0
        ? `${SCHEME}/${entry.name}`
        : `${p.path}/${entry.name}`;
      const gone = await locks.request(
        LOCK_WRITE + tempPath,
        { mode: "exclusive", ifAvailable: true },
        async (lock) => {
          if (lock === null) return false; // a live writer's file
          try {
            await handle.removeEntry(entry.name);
            return true;
          } catch (error) {
            if (domName(error) === "NotFoundError") return false;
            throw error;
          }
        },
      );
      if (gone) removed.push(tempPath);
    }
    return removed.sort();
  }

  /**
   * Does nothing: OPFS has no permissions beyond the origin's.
   *
   * @param _dir Unused.
   * @param _access Unused.
   */
  checkAccess(_dir: string, _access: "read" | "write"): void {}
}
