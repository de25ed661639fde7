// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: a store whose readers are wrapped, every other call passed on.

import type { ByteSource } from "../core/io.ts";
import type { CheckpointStore, StoreReader } from "./store.ts";

/**
 * `store` with each reader's `readAt` replaced by `wrap(reader)`'s (to
 * watch the bytes read); size, path and closing stay the reader's own.
 */
export function wrapReaders(
  store: CheckpointStore,
  wrap: (reader: StoreReader) => ByteSource,
): CheckpointStore {
  return {
    name: store.name,
    async open(path: string): Promise<StoreReader> {
      const file = await store.open(path);
      const wrapped = wrap(file);
      return {
        path: file.path,
        size: file.size,
        readAt: (position, into) => wrapped.readAt(position, into),
        close: () => file.close(),
        [Symbol.asyncDispose]: () => file.close(),
      };
    },
    readFile: (path, maxBytes) => store.readFile(path, maxBytes),
    write: (path, produce, options) => store.write(path, produce, options),
    stat: (path) => store.stat(path),
    list: (dir) => store.list(dir),
    remove: (path) => store.remove(path),
    ensureDir: (path) => store.ensureDir(path),
    lock: (path, options) => store.lock(path, options),
    removeIncomplete: (dir, options) => store.removeIncomplete(dir, options),
    checkAccess: (dir, access) => store.checkAccess(dir, access),
  };
}
