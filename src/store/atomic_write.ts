// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Durable, atomic file writes: a temporary file in the same folder, written,
 * made read-only, fsynced, renamed over the target, then the folder fsynced.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import type { ByteSink } from "../core/io.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { Crc32 } from "./_checksum.ts";
import { checkFileMode, checkPath } from "./_paths.ts";

/** Options of {@linkcode atomicWrite} and {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /**
   * Permission bits the file gets. They are set on the temporary file
   * before it is fsynced and renamed, so the final name only ever holds the
   * complete file with these permissions. Ignored on Windows.
   *
   * @default {0o400}
   */
  fileMode?: number;
  /**
   * Whether the commit may replace a file already at `path`. With `false`
   * the temporary file is hard-linked to `path` instead of renamed over it,
   * so an existing file (or symbolic link) is never replaced: the write
   * fails with `Deno.errors.AlreadyExists` and the temporary file is removed.
   *
   * @default {true}
   */
  overwrite?: boolean;
}

/** What {@linkcode atomicWrite} wrote. */
export interface AtomicWriteResult {
  /** Number of bytes in the file. */
  bytes: number;
  /**
   * Checksum of the bytes as written to disk: zlib's CRC-32 as
   * `"crc32:<8 lowercase hex digits>"` (the value `gzip -l`, Python's
   * `zlib.crc32` or `crc32 FILE` report).
   */
  checksum: string;
}

// Read lazily through globalThis so that importing this module outside Deno
// (a bundle for the browser) does not throw.
const IS_WINDOWS =
  (globalThis as { Deno?: { build?: { os?: string } } }).Deno?.build?.os ===
    "windows";

/** Writes all of `chunk`, looping over partial writes. */
async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    done += await file.write(chunk.subarray(done));
  }
}

/**
 * Bytes written between background `fdatasync` calls: 64 MiB. Flushing the
 * page cache while the rest of the file is still being produced lets the
 * disk work in parallel with serialisation and encryption, so the final
 * fsync has little left to do.
 */
const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * The sink handed to an {@linkcode atomicWrite} callback: every chunk goes
 * straight to the file (no copy); the CRC-32 of the chunk is computed on the
 * JS thread while Deno's I/O thread writes it. Every
 * {@linkcode BACKGROUND_SYNC_BYTES} it starts an `fdatasync` that is not
 * awaited (at most one in flight); its failure fails the next write or
 * {@linkcode FileSink.settle}. This is only an early start: durability
 * still rests on the final fsync of {@linkcode atomicWrite}.
 */
class FileSink implements ByteSink {
  #file: Deno.FsFile;
  #crc = new Crc32();
  #bytes = 0;
  #open = true;
  #path: string;
  #unsynced = 0;
  #syncing: Promise<void> | null = null;
  #syncError: { error: unknown } | null = null;

  #temp: string;
  #syncer: Deno.FsFile | null = null;

  constructor(file: Deno.FsFile, path: string, temp: string) {
    this.#file = file;
    this.#path = path;
    this.#temp = temp;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (!this.#open) {
      throw new TypeError(
        `Cannot write to "${this.#path}": the atomic write has already ended`,
      );
    }
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot write to "${this.#path}": chunk must be a Uint8Array, received ${
          describe(chunk)
        }`,
      );
    }
    this.#throwSyncError();
    const written = writeAll(this.#file, chunk);
    this.#crc.update(chunk);
    await written;
    this.#bytes += chunk.byteLength;
    this.#unsynced += chunk.byteLength;
    if (this.#unsynced >= BACKGROUND_SYNC_BYTES && this.#syncing === null) {
      this.#unsynced = 0;
      this.#syncing = this.#backgroundSync().then(
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

  async #backgroundSync(): Promise<void> {
    // A second handle: an fdatasync on `#file` would hold up its writes.
    this.#syncer ??= await Deno.open(this.#temp, { write: true });
    await this.#syncer.syncData();
  }

  #throwSyncError(): void {
    if (this.#syncError !== null) throw this.#syncError.error;
  }

  end(): AtomicWriteResult {
    this.#open = false;
    return { bytes: this.#bytes, checksum: this.#crc.digest() };
  }

  /**
   * Waits for the background sync in flight, if any; throws the error of any
   * background sync that failed.
   */
  async settle(): Promise<void> {
    if (this.#syncing !== null) await this.#syncing;
    this.#syncer?.close();
    this.#syncer = null;
    this.#throwSyncError();
  }
}

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** fsyncs a folder so that a rename inside it is durable. */
async function syncFolder(folder: string): Promise<void> {
  if (IS_WINDOWS) return; // Windows cannot open a folder as a file.
  const dir = await Deno.open(folder, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/**
 * Writes a file durably and atomically. `write` receives a sink for the
 * file's bytes; when it resolves, the temporary file
 * (`.<name>.<random>.tmp` in the target's folder) is given `fileMode`,
 * fsynced and renamed over `path`, then the folder is fsynced. If anything
 * fails, the temporary file is removed and the error rethrown: `path` holds
 * either its previous content or the complete new file, never a part.
 * Replacing a read-only (0400) file works, as only the folder must be
 * writable. Needs read and write permission for the folder (the folder
 * fsync opens it for reading); should that fsync fail, the new file is
 * already in place and the error is still thrown, since it is not yet
 * known to be durable.
 *
 * @param path The file to write.
 * @param write Writes the file's content to the sink, in order. A chunk may be
 *   reused by the caller as soon as `sink.write(chunk)` resolves.
 * @param options Options.
 * @returns The file's size and the CRC-32 of the bytes written.
 * @throws {TypeError} When `path` is not a string or `write` not a function.
 * @throws {RangeError} When `path` is empty or `fileMode` is out of range.
 *
 * @example Write a file in two chunks
 * ```ts
 * import { atomicWrite } from "@ckpt/monitor";
 * import { equal as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const { bytes, checksum } = await atomicWrite(`${dir}/a.bin`, async (sink) => {
 *     await sink.write(new TextEncoder().encode("hello, "));
 *     await sink.write(new TextEncoder().encode("world"));
 *   });
 *   assertEquals(bytes, 12);
 *   assertEquals(checksum, "crc32:ffab723a");
 *   assertEquals(await Deno.readTextFile(`${dir}/a.bin`), "hello, world");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function atomicWrite(
  path: string,
  write: (sink: ByteSink) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<AtomicWriteResult> {
  checkPath(path, "write file atomically");
  if (typeof write !== "function") {
    throw new TypeError(
      `Cannot write "${path}" atomically: write must be a function, received ${
        describe(write)
      }`,
    );
  }
  const fileMode = checkFileMode(
    options.fileMode ?? 0o400,
    `write "${path}" atomically`,
  );
  const folder = dirname(path);
  const temp = join(folder, `.${basename(path)}.${randomHex(6)}.tmp`);
  const file = await Deno.open(temp, {
    write: true,
    createNew: true,
    mode: 0o600,
  });
  let closed = false;
  try {
    const sink = new FileSink(file, path, temp);
    let result: AtomicWriteResult;
    try {
      await write(sink);
    } finally {
      result = sink.end();
      // Also on error: no background sync may outlive the file handle.
      await sink.settle().catch(() => {});
    }
    await sink.settle();
    if (!IS_WINDOWS) await Deno.chmod(temp, fileMode);
    await file.sync();
    file.close();
    closed = true;
    if (options.overwrite === false) {
      // link() fails when `path` exists, so nothing is ever replaced.
      await Deno.link(temp, path);
      await Deno.remove(temp);
    } else {
      await Deno.rename(temp, path);
    }
    await syncFolder(folder);
    return result;
  } catch (error) {
    if (!closed) {
      try {
        file.close();
      } catch { /* already closed */ }
    }
    try {
      await Deno.remove(temp);
    } catch { /* gone already, or renamed */ }
    throw noSpace(path, error) ?? error;
  }
}

/**
 * A full disk (or quota) is reported by the OS as a bare "No space left on
 * device (os error 28)"; this names the file and says what was kept. The
 * `code` (`"ENOSPC"`, `"EDQUOT"`) and the original error (`cause`) stay.
 */
function noSpace(path: string, error: unknown): Error | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== "ENOSPC" && code !== "EDQUOT") return null;
  const e = new Error(
    `Cannot write "${path}": no space left on the device (${code}); the previous content of "${path}" is unchanged and the temporary file was removed`,
    { cause: error },
  );
  (e as Error & { code: string }).code = code;
  return e;
}

/**
 * Writes `data` to `path` durably and atomically (see
 * {@linkcode atomicWrite}).
 *
 * @param path The file to write.
 * @param data The file's content.
 * @param options Options.
 * @returns A promise that resolves once the file is committed.
 * @throws {TypeError} When `path` is not a string or `data` not a `Uint8Array`.
 *
 * @example Replace a read-only file
 * ```ts
 * import { writeFileAtomic } from "@ckpt/monitor";
 * import { equal as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const path = `${dir}/meta.json`;
 *   await writeFileAtomic(path, new TextEncoder().encode("{}"));
 *   await writeFileAtomic(path, new TextEncoder().encode('{"a":1}'));
 *   assertEquals(await Deno.readTextFile(path), '{"a":1}');
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot write "${path}" atomically: data must be a Uint8Array, received ${
        describe(data)
      }`,
    );
  }
  await atomicWrite(path, (sink) => sink.write(data), options);
}
