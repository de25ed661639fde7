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
import { CHECKSUM_ALGORITHM, Crc32 } from "./_checksum.ts";
import { crc32, crc32Combine } from "../core/_crc32.ts";
import { _positional } from "../core/_positional.ts";
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
  /**
   * Called once every byte of the file has been handed to the operating
   * system, before the commit (fsync, rename) that makes it durable and
   * visible; the memory the bytes came from is no longer read after it.
   * A store that cannot tell when that is does not call it. A failure of
   * the commit still fails the write.
   */
  onWritten?: () => void;
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

/** One range written by {@linkcode FileSink.writeAt}, for the checksum. */
interface _Piece {
  at: number;
  length: number;
  crc: number;
}

/**
 * The sink handed to an {@linkcode atomicWrite} callback: every chunk goes
 * straight to the file (no copy); the CRC-32 of the chunk is computed on the
 * JS thread while Deno's I/O thread writes it. Every
 * {@linkcode BACKGROUND_SYNC_BYTES} it starts an `fdatasync` that is not
 * awaited (at most one in flight); its failure fails the next write or
 * {@linkcode FileSink.settle}. This is only an early start: durability
 * still rests on the final fsync of {@linkcode atomicWrite}.
 *
 * It also offers `writeAt` (see {@linkcode ByteSink}): positional writes
 * that run side by side on up to four handles (`core/_positional.ts`)
 * of the temporary file. Each range's CRC-32 is kept and the file's is
 * combined from them in file order once every write has ended; ranges that
 * leave a gap or overlap fail the commit.
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

  /** Ranges written by `writeAt`; null while none was. */
  #pieces: _Piece[] | null = null;
  /** Whether appending writes go through the positional path (`split`). */
  #splitting = false;
  /** Handles free for a positional write (`#file` among them at first). */
  #idle: Deno.FsFile[];
  /** Handles opened for positional writes besides `#file`. */
  #extra: Deno.FsFile[] = [];
  #opening = 0;
  /** Positional writes waiting for a free handle. */
  #waiting: ((file: Deno.FsFile) => void)[] = [];
  /** Positional writes not yet ended (each one's rejection is handled). */
  #inFlight = new Set<Promise<void>>();

  constructor(file: Deno.FsFile, path: string, temp: string) {
    this.#file = file;
    this.#path = path;
    this.#temp = temp;
    this.#idle = [file];
  }

  #checkChunk(chunk: unknown): void {
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
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#checkChunk(chunk);
    if (this.#pieces !== null && !this.#splitting) {
      throw new TypeError(
        `Cannot write to "${this.#path}": write() after writeAt() on one sink`,
      );
    }
    const split = _positional.split;
    if (this.#splitting || (split > 0 && this.#bytes === 0)) {
      // Appending writes as positional ones: a large chunk is cut into
      // parts written side by side.
      this.#splitting = true;
      this.#pieces ??= [];
      if (chunk.byteLength === 0) return;
      const at = this.#bytes;
      this.#bytes += chunk.byteLength;
      const parts = Math.max(
        1,
        Math.min(_positional.handles, Math.floor(chunk.byteLength / split)),
      );
      const size = Math.ceil(chunk.byteLength / parts);
      const writes: Promise<void>[] = [];
      for (let from = 0; from < chunk.byteLength; from += size) {
        writes.push(
          this.#track(
            this.#positional(at + from, chunk.subarray(from, from + size)),
          ),
        );
      }
      const results = await Promise.allSettled(writes);
      for (const r of results) if (r.status === "rejected") throw r.reason;
      return;
    }
    const written = writeAll(this.#file, chunk);
    this.#crc.update(chunk);
    await written;
    this.#bytes += chunk.byteLength;
    this.#wrote(chunk.byteLength);
  }

  writeAt(position: number, chunk: Uint8Array): Promise<void> {
    try {
      this.#checkChunk(chunk);
      if (!Number.isSafeInteger(position) || position < 0) {
        throw new RangeError(
          `Cannot write to "${this.#path}": position must be a non-negative integer, received ${
            describe(position)
          }`,
        );
      }
      if (this.#splitting || (this.#pieces === null && this.#bytes > 0)) {
        throw new TypeError(
          `Cannot write to "${this.#path}": writeAt() after write() on one sink`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pieces ??= [];
    return this.#track(this.#positional(position, chunk));
  }

  /** Keeps `done` among the writes `settle()` waits for. */
  #track(done: Promise<void>): Promise<void> {
    this.#inFlight.add(done);
    const forget = () => {
      this.#inFlight.delete(done);
    };
    done.then(forget, forget);
    return done;
  }

  async #positional(position: number, chunk: Uint8Array): Promise<void> {
    const file = await this.#takeHandle();
    try {
      const written = (async () => {
        await file.seek(position, Deno.SeekMode.Start);
        await writeAll(file, chunk);
      })();
      // The checksum is computed while the I/O thread writes; a failure of
      // the write is the one reported.
      let crc = 0;
      try {
        crc = crc32(chunk);
      } finally {
        await written;
      }
      if (chunk.byteLength > 0) {
        this.#pieces!.push({ at: position, length: chunk.byteLength, crc });
      }
    } finally {
      this.#giveHandle(file);
    }
    this.#wrote(chunk.byteLength);
  }

  /** A handle free for a positional write: idle, newly opened, or waited for. */
  async #takeHandle(): Promise<Deno.FsFile> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle;
    if (1 + this.#extra.length + this.#opening < _positional.handles) {
      this.#opening++;
      let file: Deno.FsFile;
      try {
        file = await Deno.open(this.#temp, { write: true });
      } finally {
        this.#opening--;
      }
      this.#extra.push(file);
      return file;
    }
    return await new Promise((resolve) => this.#waiting.push(resolve));
  }

  #giveHandle(file: Deno.FsFile): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next(file);
    else this.#idle.push(file);
  }

  /** Counts written bytes and starts a background sync every 64 MiB. */
  #wrote(length: number): void {
    this.#unsynced += length;
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

  /** Ends the sink: later writes are refused. */
  end(): void {
    this.#open = false;
  }

  /**
   * The file's size and checksum; after {@linkcode settle}. For positional
   * writes, throws when their ranges leave a gap or overlap.
   */
  result(): AtomicWriteResult {
    if (this.#pieces === null) {
      return { bytes: this.#bytes, checksum: this.#crc.digest() };
    }
    const pieces = this.#pieces.sort((a, b) => a.at - b.at);
    let crc = 0;
    let at = 0;
    for (const piece of pieces) {
      if (piece.at !== at) {
        throw new Error(
          `Cannot write "${this.#path}": the positional writes ${
            piece.at > at ? "left a gap" : "overlap"
          } at byte ${Math.min(at, piece.at)}`,
        );
      }
      crc = crc32Combine(crc, piece.crc, piece.length);
      at += piece.length;
    }
    return {
      bytes: at,
      checksum: `${CHECKSUM_ALGORITHM}:${crc.toString(16).padStart(8, "0")}`,
    };
  }

  /**
   * Waits for every positional write and the background sync in flight,
   * closes the extra handles; throws the error of any background sync that
   * failed.
   */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.allSettled(this.#inFlight);
    }
    for (const file of this.#extra) file.close();
    this.#extra = [];
    this.#idle = [];
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
  let file: Deno.FsFile;
  try {
    file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  } catch (error) {
    throw osError(path, error, false);
  }
  let closed = false;
  let renamed = false;
  try {
    const sink = new FileSink(file, path, temp);
    try {
      await write(sink);
    } finally {
      sink.end();
      // Also on error: no write or background sync may outlive the file
      // handles.
      await sink.settle().catch(() => {});
    }
    await sink.settle();
    const result = sink.result();
    options.onWritten?.();
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
    renamed = true;
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
    throw noSpace(path, error) ?? osError(path, error, renamed);
  }
}

/**
 * An error of the operating system (one with a `code`, such as `EROFS`,
 * `EACCES`, `EIO`) names only the temporary file; this names the file being
 * written and says what became of it, keeping the class, the `code` and the
 * original error (`cause`). Other errors (the writer's own) pass unchanged.
 */
function osError(path: string, error: unknown, renamed: boolean): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return error;
  const message = `Cannot write "${path}": ${error.message}; ${
    renamed
      ? `the new file is in place but its folder could not be synced, so it may not survive a power loss`
      : `the previous content of "${path}" is unchanged and no temporary file is left`
  }`;
  let named: Error;
  try {
    const Class = error.constructor as new (message: string) => Error;
    named = new Class(message);
    if (named.name !== error.name) named.name = error.name;
  } catch {
    named = new Error(message);
  }
  Object.defineProperty(named, "cause", { value: error, configurable: true });
  (named as Error & { code: string }).code = code;
  return named;
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
