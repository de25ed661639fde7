// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `node:path` in the browser build (`deno task build:browser` maps it here
 * through tools/browser/import_map.json). Only the local file system store
 * uses it, and that store cannot work in a browser: each function fails,
 * saying to use an `opfs:` path.
 *
 * @module
 */

function noLocalFiles(): never {
  throw new TypeError(
    'The local file system is not available in a browser: use an "opfs:/…" path (registerStore("opfs", () => new OpfsStore())) or pass store: new OpfsStore()',
  );
}

/** Fails: see the module documentation. */
export function basename(_path: string, _suffix?: string): string {
  return noLocalFiles();
}

/** Fails: see the module documentation. */
export function dirname(_path: string): string {
  return noLocalFiles();
}

/** Fails: see the module documentation. */
export function join(..._paths: string[]): string {
  return noLocalFiles();
}
