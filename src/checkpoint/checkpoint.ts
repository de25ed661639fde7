// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Saving and loading checkpoint files: MindSpore `.ckpt` or safetensors,
 * streamed, durable and atomic.
 *
 * @module
 */

export { checksumFile } from "../store/checksum_file.ts";
export type {
  AppendInfo,
  CheckpointEntry,
  CheckpointFormat,
  CheckpointReader,
  LoadCheckpointOptions,
  SaveCheckpointOptions,
  SaveResult,
} from "./_common.ts";
export { saveCheckpoint } from "./save.ts";
export { loadCheckpoint, openCheckpoint } from "./open.ts";
