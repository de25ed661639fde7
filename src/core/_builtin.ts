// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: a Node.js built-in module where the runtime has one (Deno,
// Node.js), reached through `process.getBuiltinModule` so that nothing
// imports it statically and a browser bundle still loads; `null` elsewhere.

/** The built-in module `id` (e.g. `"node:zlib"`), or `null`. */
export function nodeBuiltin(id: string): unknown {
  const process = (globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
  }).process;
  try {
    return process?.getBuiltinModule?.(id) ?? null;
  } catch {
    return null;
  }
}
