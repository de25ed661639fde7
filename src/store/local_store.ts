// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The local file system as a {@linkcode CheckpointStore}: the default store,
 * used for every path without a scheme. Commits are temp file → fsync →
 * rename → fsync of the folder; locks are `flock`s that the kernel frees when
 * their holder dies; only regular files are ever opened for reading, so a
 * FIFO or a device named like a checkpoint cannot block or flood a reader.
 *
 * @module
 */

import type { ByteSink } from "../core/io.ts";
import { CorruptCheckpointError } from "../core/errors.ts";
import { atomicWrite } from "./atomic_write.ts";
import { openFileSource } from "./file_source.ts";
import { removeTempFiles } from "./temp_files.ts";
import { checkPath } from "./_paths.ts";
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
} from "./store.ts";

function kindOf(info: Deno.FileInfo): StoreEntryKind {
  return info.isFile ? "file" : info.isDirectory ? "directory" : "other";
}

/** Throws unless `path` is a regular file; returns its size. */
async function regularFileSize(path: string, action: string): Promise<number> {
  const info = await Deno.stat(path);
  if (!info.isFile) {
    throw new CorruptCheckpointError(
      path,
      `it is not a regular file (${
        info.isDirectory ? "a folder" : "a FIFO, socket or device"
      }), so it cannot be ${action}`,
    );
  }
  return info.size;
}

class LocalStore implements CheckpointStore {
  readonly name = "file";

  async open(path: string): Promise<StoreReader> {
    checkPath(path, "open checkpoint");
    await regularFileSize(path, "read as a checkpoint");
    return await openFileSource(path);
  }

  async readFile(path: string, maxBytes: number): Promise<Uint8Array> {
    checkPath(path, "read file");
    const size = await regularFileSize(path, "read");
    if (size > maxBytes) {
      throw new RangeError(
        `Cannot read "${path}": it holds ${size} bytes, more than the limit of ${maxBytes}`,
      );
    }
    // No `await using`: this code is in the save Worker's bundle, which
    // runs unchanged under Node.js 20, whose parser does not know it.
    const source = await openFileSource(path);
    try {
      // The size is the one the open handle reports (a file replaced since
      // the stat above is read as it is now), still within the limit.
      if (source.size > maxBytes) {
        throw new RangeError(
          `Cannot read "${path}": it holds ${source.size} bytes, more than the limit of ${maxBytes}`,
        );
      }
      const bytes = new Uint8Array(source.size);
      await source.readAt(0, bytes);
      return bytes;
    } finally {
      await source.close();
    }
  }

  write(
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
    options: StoreWriteOptions = {},
  ): Promise<StoreWriteResult> {
    return atomicWrite(path, produce, {
      ...(options.fileMode === undefined ? {} : { fileMode: options.fileMode }),
      ...(options.overwrite === undefined
        ? {}
        : { overwrite: options.overwrite }),
      ...(options.onWritten === undefined
        ? {}
        : { onWritten: options.onWritten }),
    });
  }

  async stat(path: string): Promise<StoreStat | null> {
    let link: Deno.FileInfo;
    try {
      link = await Deno.lstat(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    let info = link;
    if (link.isSymlink) {
      try {
        info = await Deno.stat(path);
      } catch (error) {
        // A dangling link: something is there, but not a file or folder.
        if (error instanceof Deno.errors.NotFound) {
          return { kind: "other", size: 0, mtimeMs: null, isSymlink: true };
        }
        throw error;
      }
    }
    return {
      kind: kindOf(info),
      size: info.isDirectory ? 0 : info.size,
      mtimeMs: info.mtime?.getTime() ?? null,
      isSymlink: link.isSymlink,
    };
  }

  async list(dir: string): Promise<StoreEntry[] | null> {
    const entries: StoreEntry[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) {
        let kind: StoreEntryKind = entry.isFile
          ? "file"
          : entry.isDirectory
          ? "directory"
          : "other";
        if (entry.isSymlink) {
          // Classify a link by what it points to, as the monitor writes
          // through linked folders.
          kind = (await this.stat(`${dir}/${entry.name}`))?.kind ?? "other";
        }
        entries.push({ name: entry.name, kind });
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    return entries;
  }

  async remove(path: string): Promise<boolean> {
    try {
      await Deno.remove(path);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }

  async ensureDir(path: string): Promise<void> {
    const info = await this.stat(path);
    if (info !== null && info.kind !== "directory") {
      throw new Deno.errors.NotADirectory(
        `Cannot save checkpoints to "${path}": it exists and is not a folder`,
      );
    }
    if (info === null) await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  }

  async lock(
    path: string,
    options: StoreLockOptions = {},
  ): Promise<StoreLock | null> {
    const file = await Deno.open(path, {
      create: true,
      read: true,
      write: true,
      mode: 0o600,
    });
    try {
      if (options.wait === false) {
        if (!await file.tryLock(true)) {
          file.close();
          return null;
        }
      } else {
        await file.lock(true);
      }
      if (options.owner !== undefined) {
        // Who holds it, for the message a refused taker sees.
        await file.truncate(0);
        await file.write(new TextEncoder().encode(options.owner));
      }
    } catch (error) {
      file.close();
      throw error;
    }
    let open = true;
    const release = (): Promise<void> => {
      if (open) {
        open = false;
        file.close(); // Closing the handle releases the lock.
      }
      return Promise.resolve();
    };
    return { release, [Symbol.asyncDispose]: release };
  }

  removeIncomplete(
    dir: string,
    options: RemoveIncompleteOptions = {},
  ): Promise<string[]> {
    return removeTempFiles(
      dir,
      options.prefixes === undefined ? {} : { prefixes: options.prefixes },
    );
  }

  checkAccess(dir: string, access: "read" | "write"): void {
    const names = access === "write"
      ? ["read", "write"] as const
      : ["read"] as const;
    const missing = names.filter((name) =>
      Deno.permissions.querySync({ name, path: dir }).state !== "granted"
    );
    if (missing.length > 0) {
      throw new Deno.errors.PermissionDenied(
        `Cannot ${
          access === "write" ? "save checkpoints to" : "read checkpoints in"
        } "${dir}": ${missing.join(" and ")} permission is missing; run with ${
          missing.map((m) => `--allow-${m}=${dir}`).join(" ")
        }`,
      );
    }
  }
}

/**
 * The local file system store (the default for paths without a scheme).
 *
 * @example Write and read back a file
 * ```ts
 * import { localStore } from "@ckpt/monitor";
 * const dir = await Deno.makeTempDir();
 * try {
 *   await localStore.write(`${dir}/a.bin`, (sink) => sink.write(new Uint8Array([1, 2])));
 *   const bytes = await localStore.readFile(`${dir}/a.bin`, 1024);
 *   console.assert(bytes.length === 2);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export const localStore: CheckpointStore = new LocalStore();
