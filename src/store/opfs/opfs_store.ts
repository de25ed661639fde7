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
import { checkReadRange } from "../_read_range.ts";
import { ParallelCrc32 } from "./_parallel_crc32.ts";
import {
  browserNavigator,
  type DirectoryHandle,
  type FileHandle,
  type LockManager,
  type SyncAccessHandle,
  type WritableFile,
} from "./_opfs_types.ts";

/** The scheme of every OPFS path. */
const SCHEME = "opfs:";

/** Temporary names: `.<final name>.<12 hex digits>.tmp` (as the local store). */
const TEMP_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** Web Lock name prefixes (one namespace per purpose). */
const LOCK_USER = "ckpt-opfs-lock:";
const LOCK_FILE = "ckpt-opfs-file:";
const LOCK_WRITE = "ckpt-opfs-write:";

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

/** An error with a Node-style `code` (`ENOENT`, `EEXIST`, `EDQUOT`, …). */
function codedError(message: string, code: string, cause?: unknown): Error {
  const error = new Error(message, { cause });
  (error as Error & { code: string }).code = code;
  return error;
}

/** The DOMException name of an error, or `undefined`. */
function domName(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : undefined;
}

/** `NotFoundError` (missing) or `TypeMismatchError` (a file on the way). */
function isMissing(error: unknown): boolean {
  const name = domName(error);
  return name === "NotFoundError" || name === "TypeMismatchError";
}

function randomHex(bytes: number): string {
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
async function removeTemp(dir: DirectoryHandle, name: string): Promise<void> {
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
function inDedicatedWorker(): boolean {
  const scope = (globalThis as { DedicatedWorkerGlobalScope?: unknown })
    .DedicatedWorkerGlobalScope;
  return typeof scope === "function" && globalThis instanceof scope;
}

/** A parsed `opfs:` path. */
interface OpfsPath {
  /** The canonical form, `opfs:/a/b`. */
  readonly path: string;
  /** The segments, root first. */
  readonly segments: readonly string[];
}

/**
 * Parses an `opfs:` path (`opfs:/a/b` or `opfs:a/b`, both from the OPFS
 * root); empty and `.` segments are dropped, `..` is refused.
 */
function parsePath(path: unknown, action: string): OpfsPath {
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

/**
 * What both sinks share: the byte count, the checksum (computed beside the
 * write, see `_parallel_crc32.ts`) and the end of the write.
 */
abstract class OpfsSink implements ByteSink {
  protected readonly path: string;
  protected bytes = 0;
  #crc: ParallelCrc32;
  #open = true;

  constructor(path: string, checksumWorker: boolean) {
    this.path = path;
    this.#crc = new ParallelCrc32(checksumWorker);
  }

  async write(chunk: Uint8Array): Promise<void> {
    checkChunk(this.#open, this.path, chunk);
    // The checksum is started first so that it runs while the bytes are
    // written; its promise never rejects.
    const checksum = this.#crc.update(chunk);
    try {
      await this.put(chunk);
      this.bytes += chunk.byteLength;
    } finally {
      await checksum;
    }
  }

  /** Writes `chunk` at offset `this.bytes`. */
  protected abstract put(chunk: Uint8Array): Promise<void> | void;

  /** Ends the write; no more chunks are accepted. */
  end(): void {
    this.#open = false;
  }

  /** The size and checksum of what was written (after {@linkcode end}). */
  async result(): Promise<StoreWriteResult> {
    return { bytes: this.bytes, checksum: await this.#crc.digest() };
  }

  /** Drops the checksum's helper after a failure. */
  abandon(): void {
    this.#open = false;
    this.#crc.close();
  }
}

/** The sink of a write in a Worker: synchronous writes at offsets. */
class SyncSink extends OpfsSink {
  #handle: SyncAccessHandle;

  constructor(
    handle: SyncAccessHandle,
    path: string,
    checksumWorker: boolean,
  ) {
    super(path, checksumWorker);
    this.#handle = handle;
  }

  protected put(chunk: Uint8Array): void {
    const n = this.#handle.write(chunk, { at: this.bytes });
    if (n !== chunk.byteLength) {
      throw new Error(
        `Cannot write "${this.path}": the browser wrote ${n} of ${chunk.byteLength} bytes`,
      );
    }
  }
}

/** The sink of a write outside Workers: a `FileSystemWritableFileStream`. */
class WritableSink extends OpfsSink {
  #writable: WritableFile;

  constructor(
    writable: WritableFile,
    path: string,
    checksumWorker: boolean,
  ) {
    super(path, checksumWorker);
    this.#writable = writable;
  }

  protected put(chunk: Uint8Array): Promise<void> {
    return this.#writable.write(chunk);
  }
}

function checkChunk(open: boolean, path: string, chunk: unknown): void {
  if (!open) {
    throw new TypeError(
      `Cannot write to "${path}": the write has already ended`,
    );
  }
  if (!(chunk instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot write to "${path}": chunk must be a Uint8Array, received ${typeof chunk}`,
    );
  }
}

/** Random-access reads over a `File` snapshot taken by `getFile()`. */
class OpfsReader implements StoreReader {
  readonly path: string;
  readonly size: number;
  #file: File | null;
  #inFlight = new Set<Promise<void>>();

  constructor(path: string, file: File) {
    this.path = path;
    this.#file = file;
    this.size = file.size;
  }

  readAt(position: number, into: Uint8Array): Promise<void> {
    const run = this.#read(position, into);
    this.#inFlight.add(run);
    const forget = (): void => {
      this.#inFlight.delete(run);
    };
    run.then(forget, forget);
    return run;
  }

  async #read(position: number, into: Uint8Array): Promise<void> {
    const file = this.#file;
    if (file === null) {
      throw new TypeError(`Cannot read "${this.path}": the file is closed`);
    }
    checkReadRange(this.path, position, into.byteLength, this.size);
    if (into.byteLength === 0) return;
    let buffer: ArrayBuffer;
    try {
      buffer = await file.slice(position, position + into.byteLength)
        .arrayBuffer();
    } catch (error) {
      if (domName(error) !== "NotReadableError") throw error;
      throw new CorruptCheckpointError(
        this.path,
        "the file was replaced or changed after it was opened",
        { cause: error },
      );
    }
    if (buffer.byteLength !== into.byteLength) {
      throw new CorruptCheckpointError(
        this.path,
        `file ended at byte ${
          position + buffer.byteLength
        }, before its recorded size of ${this.size} bytes`,
      );
    }
    into.set(new Uint8Array(buffer));
  }

  async close(): Promise<void> {
    this.#file = null;
    await Promise.allSettled([...this.#inFlight]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A held Web Lock; released by resolving the promise its callback holds. */
class WebLock implements StoreLock {
  #release: () => void;
  #released: Promise<unknown>;

  constructor(release: () => void, released: Promise<unknown>) {
    this.#release = release;
    this.#released = released;
  }

  async release(): Promise<void> {
    this.#release();
    await this.#released;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
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
  #syncAccess: boolean;
  #move: boolean;
  #checksumWorker: boolean;
  #root: Promise<DirectoryHandle> | null = null;

  /**
   * Makes a store on the origin's OPFS. Nothing is touched until the first
   * call.
   *
   * @param options `syncAccess`, `move`, `checksumWorker`.
   */
  constructor(options: OpfsStoreOptions = {}) {
    this.#syncAccess = options.syncAccess ?? true;
    this.#move = options.move ?? true;
    this.#checksumWorker = options.checksumWorker ?? true;
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
    if (!overwrite) await this.#refuseExisting(dir, name, p.path);
    const tempName = `.${name}.${randomHex(6)}.tmp`;
    const locks = this.#locks("write");
    // Held for the whole write so removeIncomplete leaves this file alone.
    return await locks.request(
      LOCK_WRITE + p.path.slice(0, -name.length) + tempName,
      { mode: "exclusive" },
      async () => {
        try {
          const temp = await dir.getFileHandle(tempName, { create: true });
          const result = await this.#fill(temp, p.path, produce);
          await this.#commit(
            locks,
            dir,
            temp,
            tempName,
            name,
            p.path,
            overwrite,
          );
          return result;
        } catch (error) {
          await removeTemp(dir, tempName);
          throw await quotaError(p.path, error) ?? error;
        }
      },
    );
  }

  async #refuseExisting(
    dir: DirectoryHandle,
    name: string,
    path: string,
  ): Promise<void> {
    let exists = true;
    try {
      await dir.getFileHandle(name);
    } catch (error) {
      if (domName(error) === "NotFoundError") exists = false;
    }
    if (exists) {
      throw codedError(
        `Cannot write "${path}": it exists and overwrite is false`,
        "EEXIST",
      );
    }
  }

  /** Writes the temporary file; returns what was written. */
  async #fill(
    temp: FileHandle,
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
  ): Promise<StoreWriteResult> {
    if (
      this.#syncAccess && typeof temp.createSyncAccessHandle === "function" &&
      inDedicatedWorker()
    ) {
      const handle = await temp.createSyncAccessHandle();
      const sink = new SyncSink(handle, path, this.#checksumWorker);
      try {
        await produce(sink);
        sink.end();
        handle.flush(); // while the helper finishes the checksum
        return await sink.result();
      } finally {
        sink.abandon();
        handle.close();
      }
    }
    const writable = await temp.createWritable({ keepExistingData: false });
    const sink = new WritableSink(writable, path, this.#checksumWorker);
    try {
      await produce(sink);
      sink.end();
      const result = await sink.result();
      await writable.close();
      return result;
    } catch (error) {
      await writable.abort(error).catch(() => {});
      throw error;
    } finally {
      sink.abandon();
    }
  }

  /** Puts the complete temporary file at the final name. */
  async #commit(
    locks: LockManager,
    dir: DirectoryHandle,
    temp: FileHandle,
    tempName: string,
    name: string,
    path: string,
    overwrite: boolean,
  ): Promise<void> {
    await locks.request(LOCK_FILE + path, { mode: "exclusive" }, async () => {
      if (!overwrite) await this.#refuseExisting(dir, name, path);
      if (this.#move && typeof temp.move === "function") {
        await temp.move(dir, name);
        return;
      }
      // No move(): copy under the file's exclusive lock (readers take it
      // shared), then drop the temporary file.
      const source = await temp.getFile();
      const target = await dir.getFileHandle(name, { create: true });
      const writable = await target.createWritable({ keepExistingData: false });
      try {
        const reader = source.stream().getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await writable.write(value);
        }
      } catch (error) {
        await writable.abort(error).catch(() => {});
        throw error;
      }
      await writable.close();
      // Committed: a temporary file that will not go is only litter.
      await removeTemp(dir, tempName);
    });
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
    const wait = options.wait ?? true;
    return new Promise((resolve, reject) => {
      let release = (): void => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      const released = locks.request(
        name,
        { mode: "exclusive", ifAvailable: !wait },
        (lock) => {
          if (lock === null) {
            resolve(null);
            return undefined;
          }
          resolve(new WebLock(release, released));
          return held;
        },
      );
      released.catch(reject);
    });
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

/**
 * Turns a `QuotaExceededError` into an error naming the file, with the
 * origin's usage and quota, `code` `"EDQUOT"` and the original as `cause`.
 */
async function quotaError(path: string, error: unknown): Promise<Error | null> {
  if (domName(error) !== "QuotaExceededError") return null;
  let figures = "";
  try {
    const e = await browserNavigator().storage?.estimate?.();
    if (e?.usage !== undefined && e.quota !== undefined) {
      figures = ` (${e.usage} of ${e.quota} bytes used)`;
    }
  } catch { /* the figures are only a help */ }
  return codedError(
    `Cannot write "${path}": the origin's storage quota is full${figures}; the previous content of "${path}" is unchanged and the temporary file was removed`,
    "EDQUOT",
    error,
  );
}

/** What {@linkcode opfsStorageReport} found. */
export interface OpfsStorageReport {
  /** Whether the origin's storage is persistent (not evicted under pressure). */
  readonly persisted: boolean;
  /** Whether persistence was asked for in this call (windows only). */
  readonly persistRequested: boolean;
  /** Bytes the origin uses, when the browser says. */
  readonly usage: number | null;
  /** Bytes the origin may use, when the browser says. */
  readonly quota: number | null;
}

/** Options of {@linkcode opfsStorageReport}. */
export interface OpfsStorageReportOptions {
  /**
   * Ask for persistent storage with `navigator.storage.persist()` when it
   * is not persistent yet (possible in windows, not in Workers; a browser
   * may ask the user or refuse silently).
   *
   * @default {true}
   */
  readonly requestPersistence?: boolean;
}

/**
 * Reports whether the origin's storage is persistent, and its usage and
 * quota (`navigator.storage.persisted()`/`persist()` and `estimate()`).
 *
 * @param options `requestPersistence`.
 * @returns The figures; `null` for those the browser does not give.
 *
 * @example
 * ```ts ignore
 * import { opfsStorageReport } from "@ckpt/monitor";
 * const { persisted, usage, quota } = await opfsStorageReport();
 * console.log(persisted ? "persistent" : "may be evicted", usage, quota);
 * ```
 */
export async function opfsStorageReport(
  options: OpfsStorageReportOptions = {},
): Promise<OpfsStorageReport> {
  const storage = browserNavigator().storage;
  let persisted = (await storage?.persisted?.()) ?? false;
  let persistRequested = false;
  if (
    !persisted && (options.requestPersistence ?? true) &&
    typeof storage?.persist === "function"
  ) {
    persistRequested = true;
    persisted = await storage.persist();
  }
  const estimate = await storage?.estimate?.();
  return {
    persisted,
    persistRequested,
    usage: estimate?.usage ?? null,
    quota: estimate?.quota ?? null,
  };
}
