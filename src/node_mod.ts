// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The npm package's entry point for now (`deno task build:npm`): the parts
 * of the library that already run under Node.js. The tensor types, the
 * `.ckpt` and safetensors encoders and parsers, the ciphers and their
 * framing, the storage seam, and {@linkcode NodeStore}. Once `mod.ts`
 * runs outside Deno, the package's entry point becomes `mod.ts`.
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
export * from "./tensor/types.ts";
export * from "./core/errors.ts";
export * from "./core/io.ts";
export * from "./format/entry.ts";
export * from "./format/ckpt.ts";
export * from "./format/safetensors.ts";
export * from "./crypto/sm4.ts";
export * from "./crypto/cipher.ts";
export * from "./crypto/framing.ts";
export * from "./store/store.ts";
export * from "./store/node/node_store.ts";
