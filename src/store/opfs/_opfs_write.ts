// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The OPFS store's write path: the two sinks (a sync access handle in a
 * dedicated Worker, `createWritable()` elsewhere), filling the temporary
 * file, and the commit that puts it at the final name (`move()`, or a copy
 * under the file's exclusive Web Lock where `move` is missing).
 *
 * @module
 */

import type { ByteSink } from "../../core/io.ts";
import type { StoreWriteResult } from "../store.ts";
import { ParallelCrc32 } from "./_parallel_crc32.ts";
import {
  codedError,
  domName,
  inDedicatedWorker,
  LOCK_FILE,
  removeTemp,
} from "./_opfs_common.ts";
import type {
  DirectoryHandle,
  FileHandle,
  LockManager,
  SyncAccessHandle,
  WritableFile,
} from "./_opfs_types.ts";

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

/** Fails with `EEXIST` when `name` exists in `dir`. */
export async function refuseExisting(
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

/** How a write goes: the store's options. */
export interface WriteMode {
  /** Use a sync access handle in a dedicated Worker. */
  readonly syncAccess: boolean;
  /** Commit with `move()` where the browser has it. */
  readonly move: boolean;
  /** Compute the CRC-32 of large chunks in a helper Worker. */
  readonly checksumWorker: boolean;
}

/** Writes the temporary file; returns what was written. */
export async function fillTemp(
  temp: FileHandle,
  path: string,
  produce: (sink: ByteSink) => Promise<void>,
  mode: WriteMode,
): Promise<StoreWriteResult> {
  if (
    mode.syncAccess && typeof temp.createSyncAccessHandle === "function" &&
    inDedicatedWorker()
  ) {
    const handle = await temp.createSyncAccessHandle();
    const sink = new SyncSink(handle, path, mode.checksumWorker);
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
  const sink = new WritableSink(writable, path, mode.checksumWorker);
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

/** Where a complete temporary file goes. */
export interface CommitTarget {
  readonly dir: DirectoryHandle;
  readonly temp: FileHandle;
  readonly tempName: string;
  /** The final file name in `dir`. */
  readonly name: string;
  /** The final path, `opfs:/…`. */
  readonly path: string;
  readonly overwrite: boolean;
}

/** Puts the complete temporary file at the final name. */
export async function commitTemp(
  locks: LockManager,
  target: CommitTarget,
  mode: WriteMode,
): Promise<void> {
  const { dir, temp, tempName, name, path, overwrite } = target;
  await locks.request(LOCK_FILE + path, { mode: "exclusive" }, async () => {
    if (!overwrite) await refuseExisting(dir, name, path);
    if (mode.move && typeof temp.move === "function") {
      await temp.move(dir, name);
      return;
    }
    // No move(): copy under the file's exclusive lock (readers take it
    // shared), then drop the temporary file.
    const source = await temp.getFile();
    const final = await dir.getFileHandle(name, { create: true });
    const writable = await final.createWritable({ keepExistingData: false });
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
