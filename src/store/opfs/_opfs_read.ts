// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The OPFS store's read side and its locks: random-access reads over a
 * `getFile()` snapshot, and a held Web Lock.
 *
 * @module
 */

import { CorruptCheckpointError } from "../../core/errors.ts";
import type { StoreLock, StoreReader } from "../store.ts";
import { checkReadRange } from "../_read_range.ts";
import { domName } from "./_opfs_common.ts";
import type { LockManager } from "./_opfs_types.ts";

/** Random-access reads over a `File` snapshot taken by `getFile()`. */
export class OpfsReader implements StoreReader {
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
export class WebLock implements StoreLock {
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
 * Takes the exclusive Web Lock `name`; with `wait` false, resolves `null`
 * when another holder has it.
 */
export function takeWebLock(
  locks: LockManager,
  name: string,
  wait: boolean,
): Promise<StoreLock | null> {
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
