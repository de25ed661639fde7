/**
 * Checkpoints for training loops written in TypeScript: a
 * `CheckpointMonitor` that saves MindSpore-compatible `.ckpt` (or
 * safetensors) files from inside the loop, durably and atomically,
 * optionally encrypted, and resumes from the newest good one.
 *
 * @example Describe a tensor
 * ```ts
 * import { type Tensor, shapeSize } from "@ckpt/monitor";
 * const w: Tensor = { dtype: "Float32", shape: [2, 2], data: new Float32Array(4) };
 * console.assert(shapeSize(w.shape) === 4);
 * ```
 *
 * @module
 */
export * from "./src/types.ts";
export * from "./src/errors.ts";
export * from "./src/io.ts";
export * from "./src/callback.ts";
export * from "./src/events.ts";
export * from "./src/options.ts";
export * from "./src/triggers.ts";
export * from "./src/retention.ts";
export * from "./src/storage/layout.ts";
export * from "./src/train.ts";
export * from "./src/crypto/sm4.ts";
export * from "./src/crypto/cipher.ts";
export * from "./src/crypto/framing.ts";
export * from "./src/monitor.ts";
export * from "./src/checkpoint.ts";
export * from "./src/storage/atomic_write.ts";
export * from "./src/storage/temp_files.ts";
export * from "./src/verify.ts";
export * from "./src/restore.ts";
export * from "./src/resume.ts";
export * from "./src/merge.ts";
