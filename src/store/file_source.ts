// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A {@linkcode ByteSource} over a file on disk.
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";
import { CorruptCheckpointError } from "../core/errors.ts";
import { checkPath, checkReadRange } from "./_paths.ts";

/** A random-access byte source over an open file; close it when done. */
export interface FileSource extends ByteSource, AsyncDisposable {
  /** The file's path. */
  readonly path: string;
  /** Closes the file. Further reads reject. */
  close(): Promise<void>;
}

class FileSourceImpl implements FileSource {
  readonly path: string;
  readonly size: number;
  #file: Deno.FsFile | null;
  /** Where the OS file position is, or -1 when unknown. */
  #pos = 0;
  /** Reads are serialised: each one seeks, so two must not interleave. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
  }

  readAt(position: number, into: Uint8Array): Promise<void> {
    const run = this.#queue.then(() => this.#read(position, into));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(position: number, into: Uint8Array): Promise<void> {
    const file = this.#file;
    if (file === null) {
      throw new TypeError(`Cannot read "${this.path}": the file is closed`);
    }
    checkReadRange(this.path, position, into.byteLength, this.size);
    if (into.byteLength === 0) return;
    if (this.#pos !== position) {
      this.#pos = -1;
      await file.seek(position, Deno.SeekMode.Start);
      this.#pos = position;
    }
    let done = 0;
    while (done < into.byteLength) {
      this.#pos = -1;
      const n = await file.read(into.subarray(done));
      if (n !== null) this.#pos = position + done + n;
      if (n === null) {
        throw new CorruptCheckpointError(
          this.path,
          `file ended at byte ${
            position + done
          }, before its recorded size of ${this.size} bytes (was it truncated while being read?)`,
        );
      }
      done += n;
    }
  }

  close(): Promise<void> {
    const file = this.#file;
    this.#file = null;
    if (file === null) return Promise.resolve();
    // Let reads in flight finish before closing the handle under them.
    return this.#queue.then(() => file.close());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a file for random-access reads.
 *
 * @param path The file.
 * @returns An open source; close it when done.
 */
export async function openFileSource(path: string): Promise<FileSource> {
  checkPath(path, "open checkpoint");
  const file = await Deno.open(path, { read: true });
  try {
    const info = await handleInfo(path, file);
    if (!info.isFile) {
      throw new CorruptCheckpointError(path, "it is not a regular file");
    }
    return new FileSourceImpl(path, file, info.size);
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Whether an open file is a regular file, and its size. Deno checks an open
 * file's `stat()` against the path it resolves to, so through a symbolic
 * link to a folder outside the granted ones (the monitor writes through such
 * links with folder-only flags) it is refused: then the path as given is
 * asked, and the size taken from the handle.
 */
async function handleInfo(
  path: string,
  file: Deno.FsFile,
): Promise<{ isFile: boolean; size: number }> {
  try {
    return await file.stat();
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotCapable ||
        error instanceof Deno.errors.PermissionDenied)
    ) throw error;
    const byPath = await Deno.stat(path);
    const size = await file.seek(0, Deno.SeekMode.End);
    await file.seek(0, Deno.SeekMode.Start);
    return { isFile: byPath.isFile, size };
  }
}
