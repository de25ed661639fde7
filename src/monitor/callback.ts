/**
 * The training-loop callback protocol: what a loop tells its callbacks at
 * each point, and what a callback may implement.
 *
 * @module
 */

import type { Network } from "../tensor/types.ts";

/**
 * What a loop knows at the end of a step (and at the other callback points).
 *
 * @example
 * ```ts
 * import type { StepContext } from "@ckpt/monitor";
 * const ctx: StepContext = {
 *   step: 1,
 *   epoch: 1,
 *   stepsPerEpoch: 100,
 *   network: { w: { dtype: "Float32", shape: [1], data: new Float32Array(1) } },
 * };
 * ```
 */
export interface StepContext {
  /**
   * The global step number, counting from 1 across epochs (0 before the
   * first step). A resumed run may continue the count (as `train` with
   * `initialStep` does) or restart it at 1 and give the resume offset as
   * `step_num` in a monitor's `appendInfo` (as MindSpore's `Model.train`).
   */
  readonly step: number;
  /** The epoch number, counting from 1 (including a resume offset). */
  readonly epoch: number;
  /** Steps in one epoch. */
  readonly stepsPerEpoch: number;
  /** The network's parameters (weights and buffers, no optimizer state). */
  readonly network: Network;
  /** The optimizer's state (moments, its step counter), saved after the network. */
  readonly optimizer?: Network;
  /**
   * The step's outputs, as MindSpore's training wrappers return them
   * (`[loss, overflow, lossScale]`); the third, when a number, is recorded as
   * `loss_scale`.
   */
  readonly outputs?: readonly unknown[];
  /** The loss scale, when the loop uses one (wins over `outputs[2]`). */
  readonly lossScale?: number;
}

/**
 * A training-loop callback. Every method is optional and may be async; a
 * loop awaits each call before going on.
 *
 * @example
 * ```ts
 * import type { StepContext, TrainCallback } from "@ckpt/monitor";
 * const log: TrainCallback = {
 *   onStepEnd(ctx: StepContext) {
 *     if (ctx.step % 100 === 0) console.log("step", ctx.step);
 *   },
 * };
 * ```
 */
export interface TrainCallback {
  /** Called once before the first step. */
  onTrainBegin?(ctx: StepContext): void | Promise<void>;
  /**
   * Called after every step. A checkpointing callback resolves to whether
   * it saved at this step.
   */
  onStepEnd?(ctx: StepContext): void | boolean | Promise<void | boolean>;
  /** Called after the last step of each epoch. */
  onEpochEnd?(ctx: StepContext): void | Promise<void>;
  /** Called once after the last step, when training ends normally. */
  onTrainEnd?(ctx: StepContext): void | Promise<void>;
  /**
   * Called when an error escapes a step or a callback; the loop rethrows
   * `error` afterwards.
   */
  onException?(ctx: StepContext, error: unknown): void | Promise<void>;
}
