// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: how wide positional writes (`ByteSink.writeAt`) run. One object,
// read at each use, so that bench/crypto_compare.ts can measure other values
// in the same run; the library never changes it. Not exported by mod.ts.

/** Tuning of positional writes; the values are the measured best. */
export const _positional: {
  handles: number;
  blocks: number;
  split: number;
} = {
  /**
   * Handles on the temporary file the local store's sink writes through at
   * most: each runs one `seek` + `write` at a time (Deno's `FsFile` has no
   * `pwrite`; handles opened separately keep separate offsets).
   */
  handles: 4,
  /** Encrypted blocks the encrypting sink has being written at once. */
  blocks: 4,
  /**
   * Plain (appending) writes of at least twice this many bytes are cut into
   * parts of at least this size written side by side on the handles (every
   * appending write then goes to its offset); 0 keeps appending writes one
   * write on one handle, in order. 4 MiB: plain 1 GiB saves 1.20× (.ckpt)
   * and 1.04× (safetensors) faster than in order (`bench:save`, median of
   * rounds, docs/performance.md).
   */
  split: 4 * 1024 * 1024,
};
