// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The names of MindSpore's append info: the values a checkpoint monitor
 * stores after the weights.
 *
 * @module
 */

/**
 * The append-info names MindSpore and the monitor store after the
 * parameters (epoch, step, global step, loss scale, global batch size).
 * They are not weights: a restore does not report them as unexpected unless
 * the network has a parameter of that name (then it is loaded), and the
 * CLI's `inspect` shows their values.
 *
 * @example
 * ```ts
 * import { APPEND_INFO_NAMES } from "@ckpt/monitor";
 * console.assert(APPEND_INFO_NAMES.includes("step_num"));
 * ```
 */
export const APPEND_INFO_NAMES: readonly string[] = Object.freeze([
  "epoch_num",
  "step_num",
  "global_step",
  "loss_scale",
  "global_batch_size",
]);
