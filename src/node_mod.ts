// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The npm package's entry point (`deno task build:npm`): everything
 * `mod.ts` exports, the same names, plus {@linkcode NodeStore} and the
 * format layer (`encodeCkpt`, `parseCkpt`, the safetensors codec). Imported
 * under Node.js it makes a `NodeStore` the store of plain file paths, so
 * `CheckpointMonitor`, `resume`, `saveCheckpoint`, `loadCheckpoint` and
 * the background save Worker (a `node:worker_threads` Worker) all write
 * through `node:fs/promises`; signals are Node.js's `process.on`. Under
 * Deno it changes nothing. `localStore` and the `atomicWrite` family are
 * Deno's and throw under Node.js (`Deno` is not defined); use `NodeStore`.
 *
 * @example Write a `.ckpt` through the Node.js store
 * ```ts
 * import { encodeCkpt, NodeStore } from "./node_mod.ts";
 * import { mkdtemp, rm } from "node:fs/promises";
 *
 * const dir = await mkdtemp("/tmp/ckpt-");
 * try {
 *   const w = { dtype: "Float32" as const, shape: [2], data: new Float32Array([1, 2]) };
 *   const { bytes } = await new NodeStore().write(`${dir}/m.ckpt`, (sink) =>
 *     encodeCkpt(sink, [{ name: "w", value: w }]));
 *   console.assert(bytes > 8);
 * } finally {
 *   await rm(dir, { recursive: true });
 * }
 * ```
 *
 * @module
 */
import { useNodeStoreOutsideDeno } from "./store/node/_outside_deno.ts";

// The same list as mod.ts (tests/npm_entry_test.ts compares the two).
export * from "./tensor/types.ts";
export * from "./core/errors.ts";
export * from "./core/io.ts";
export * from "./monitor/callback.ts";
export * from "./monitor/events.ts";
export * from "./monitor/options.ts";
export * from "./monitor/triggers.ts";
export * from "./monitor/retention.ts";
export * from "./checkpoint/layout.ts";
export * from "./monitor/train.ts";
export * from "./crypto/sm4.ts";
export * from "./crypto/cipher.ts";
export * from "./crypto/framing.ts";
export * from "./monitor/monitor.ts";
export * from "./checkpoint/checkpoint.ts";
export * from "./store/atomic_write.ts";
export * from "./store/temp_files.ts";
export * from "./store/store.ts";
export * from "./store/local_store.ts";
export * from "./store/resolve.ts";
export * from "./checkpoint/verify.ts";
export * from "./resume/restore.ts";
export * from "./resume/resume.ts";
export * from "./resume/merge.ts";
// Node.js's file store.
export * from "./store/node/node_store.ts";
// The format layer, which the package's first entry point exported (it is
// also reachable from Deno through the same files).
export * from "./format/entry.ts";
export * from "./format/ckpt.ts";
export * from "./format/safetensors.ts";

useNodeStoreOutsideDeno();
