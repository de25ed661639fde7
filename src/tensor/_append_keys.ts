// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Not exported from the package.

/**
 * The entries a checkpoint monitor stores after the weights (MindSpore's
 * append info): not weights, so a restore skips them and `inspect` shows
 * their values.
 */
export const APPEND_KEYS: readonly string[] = Object.freeze([
  "epoch_num",
  "step_num",
  "global_step",
  "loss_scale",
  "global_batch_size",
]);
