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
export * from "./src/tensor/types.ts";
export * from "./src/core/errors.ts";
export * from "./src/core/io.ts";
export * from "./src/monitor/callback.ts";
export * from "./src/monitor/events.ts";
export * from "./src/monitor/options.ts";
export * from "./src/monitor/triggers.ts";
export * from "./src/monitor/retention.ts";
export * from "./src/checkpoint/layout.ts";
export * from "./src/monitor/train.ts";
export * from "./src/crypto/sm4.ts";
export * from "./src/crypto/cipher.ts";
export * from "./src/crypto/framing.ts";
export * from "./src/monitor/monitor.ts";
export * from "./src/checkpoint/checkpoint.ts";
export * from "./src/store/atomic_write.ts";
export * from "./src/store/temp_files.ts";
export * from "./src/store/store.ts";
export * from "./src/checkpoint/verify.ts";
export * from "./src/resume/restore.ts";
export * from "./src/resume/resume.ts";
export * from "./src/resume/merge.ts";
