// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A test double of the storage seam: a `CheckpointStore` that keeps files
 * in a `Map`. It proves the seam itself (everything the library does works
 * through the interface alone), not any storage; paths look like
 * `mem://run/rank_0/x.ckpt`. It records every call, so a test can assert
 * that nothing bypassed it, and it can be told to fail a write midway.
 */

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
} from "../src/store/store.ts";
import type { ByteSink } from "../src/core/io.ts";
import { Crc32 } from "../src/store/_checksum.ts";
import { wrapReaders } from "../src/store/_wrap_readers.ts";

function notFound(path: string): Error {
  return Object.assign(new Error(`No such file: "${path}"`), {
    code: "ENOENT",
  });
}

function trim(path: string): string {
  return path.replace(/\/+$/, "");
}

/** An in-memory `CheckpointStore` for tests. */
export class MemoryStore implements CheckpointStore {
  readonly name = "memory";
  /** Committed files: path → bytes and modification time. */
  readonly files = new Map<string, { bytes: Uint8Array; mtimeMs: number }>();
  /** Folders made with `ensureDir` (a folder also exists under any file). */
  readonly dirs = new Set<string>();
  /** Writes begun and not yet committed or aborted. */
  readonly inFlight = new Set<string>();
  /** Every call, as `"<method> <path>"`. */
  readonly calls: string[] = [];
  /** When set, a write fails after this many bytes. */
  failAfterBytes: number | null = null;
  #locks = new Map<string, string>();
  #clock = 0;

  #isDir(path: string): boolean {
    const p = trim(path);
    if (this.dirs.has(p)) return true;
    for (const f of this.files.keys()) if (f.startsWith(p + "/")) return true;
    for (const d of this.dirs) if (d.startsWith(p + "/")) return true;
    return false;
  }

  open(path: string): Promise<StoreReader> {
    this.calls.push(`open ${path}`);
    const file = this.files.get(path);
    if (file === undefined) return Promise.reject(notFound(path));
    const bytes = file.bytes;
    let open = true;
    const close = (): Promise<void> => {
      open = false;
      return Promise.resolve();
    };
    return Promise.resolve({
      path,
      size: bytes.byteLength,
      readAt(position: number, into: Uint8Array): Promise<void> {
        if (!open) {
          return Promise.reject(new TypeError(`"${path}" is closed`));
        }
        if (position < 0 || position + into.byteLength > bytes.byteLength) {
          return Promise.reject(
            new RangeError(`Cannot read "${path}": out of range`),
          );
        }
        into.set(bytes.subarray(position, position + into.byteLength));
        return Promise.resolve();
      },
      close,
      [Symbol.asyncDispose]: close,
    });
  }

  async readFile(path: string, maxBytes: number): Promise<Uint8Array> {
    this.calls.push(`readFile ${path}`);
    const file = this.files.get(path);
    if (file === undefined) throw notFound(path);
    if (file.bytes.byteLength > maxBytes) {
      throw new RangeError(`Cannot read "${path}": over ${maxBytes} bytes`);
    }
    return await Promise.resolve(file.bytes.slice());
  }

  async write(
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
    options: StoreWriteOptions = {},
  ): Promise<StoreWriteResult> {
    this.calls.push(`write ${path}`);
    const parts: Uint8Array[] = [];
    const crc = new Crc32();
    let bytes = 0;
    this.inFlight.add(path);
    try {
      await produce({
        write: (chunk: Uint8Array): Promise<void> => {
          if (
            this.failAfterBytes !== null &&
            bytes + chunk.byteLength > this.failAfterBytes
          ) {
            return Promise.reject(new Error(`injected failure on "${path}"`));
          }
          parts.push(chunk.slice());
          crc.update(chunk);
          bytes += chunk.byteLength;
          return Promise.resolve();
        },
      });
      if (options.overwrite === false && this.files.has(path)) {
        throw Object.assign(new Error(`"${path}" exists`), { code: "EEXIST" });
      }
    } finally {
      this.inFlight.delete(path);
    }
    const all = new Uint8Array(bytes);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.byteLength;
    }
    this.files.set(path, { bytes: all, mtimeMs: ++this.#clock });
    return { bytes, checksum: crc.digest() };
  }

  stat(path: string): Promise<StoreStat | null> {
    this.calls.push(`stat ${path}`);
    const file = this.files.get(path);
    if (file !== undefined) {
      return Promise.resolve({
        kind: "file",
        size: file.bytes.byteLength,
        mtimeMs: file.mtimeMs,
        isSymlink: false,
      });
    }
    if (this.#isDir(path)) {
      return Promise.resolve({
        kind: "directory",
        size: 0,
        mtimeMs: null,
        isSymlink: false,
      });
    }
    return Promise.resolve(null);
  }

  list(dir: string): Promise<StoreEntry[] | null> {
    this.calls.push(`list ${dir}`);
    if (!this.#isDir(dir)) return Promise.resolve(null);
    const prefix = trim(dir) + "/";
    const out = new Map<string, StoreEntry>();
    const add = (path: string, isFile: boolean) => {
      if (!path.startsWith(prefix)) return;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (rest === "") return;
      if (slash < 0) {
        out.set(rest, { name: rest, kind: isFile ? "file" : "directory" });
      } else {
        const name = rest.slice(0, slash);
        if (!out.has(name)) out.set(name, { name, kind: "directory" });
      }
    };
    for (const f of this.files.keys()) add(f, true);
    for (const d of this.dirs) add(d, false);
    return Promise.resolve([...out.values()]);
  }

  remove(path: string): Promise<boolean> {
    this.calls.push(`remove ${path}`);
    return Promise.resolve(this.files.delete(path));
  }

  ensureDir(path: string): Promise<void> {
    this.calls.push(`ensureDir ${path}`);
    if (this.files.has(trim(path))) {
      return Promise.reject(new Error(`"${path}" is a file`));
    }
    this.dirs.add(trim(path));
    return Promise.resolve();
  }

  async lock(
    path: string,
    options: StoreLockOptions = {},
  ): Promise<StoreLock | null> {
    this.calls.push(`lock ${path}`);
    while (this.#locks.has(path)) {
      if (options.wait === false) return null;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    this.#locks.set(path, options.owner ?? "");
    const release = (): Promise<void> => {
      this.#locks.delete(path);
      return Promise.resolve();
    };
    return { release, [Symbol.asyncDispose]: release };
  }

  removeIncomplete(
    dir: string,
    _options: RemoveIncompleteOptions = {},
  ): Promise<string[]> {
    this.calls.push(`removeIncomplete ${dir}`);
    // Nothing half-written is ever visible here: writes land whole.
    return Promise.resolve([]);
  }

  checkAccess(_dir: string, _access: "read" | "write"): void {}
}

/**
 * `store` with every call passed through and the bytes read through its
 * readers counted (the second value reads the count).
 */
export function countingStore(
  store: CheckpointStore,
): [CheckpointStore, () => number] {
  let bytes = 0;
  const wrapped = wrapReaders(store, (reader) => ({
    size: reader.size,
    readAt: (position, into) => {
      bytes += into.byteLength;
      return reader.readAt(position, into);
    },
  }));
  return [wrapped, () => bytes];
}
