/**
 * A small training-loop driver: it counts global steps and epochs, calls
 * the callbacks in order, and routes an exception to every callback's
 * `onException` before rethrowing it.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import { checkCount } from "../core/_validate.ts";
import type { StepContext, TrainCallback } from "./callback.ts";
import type { Network } from "../tensor/types.ts";

/** What the driver tells the step function. */
export interface TrainStepInfo {
  /** The global step about to run, from 1 (a resumed run continues). */
  readonly step: number;
  /** The epoch, from 1 (a resumed run continues). */
  readonly epoch: number;
  /** The step within the epoch, from 1. */
  readonly stepInEpoch: number;
  /** Steps in one epoch. */
  readonly stepsPerEpoch: number;
}

/** What a step function may return; passed on to the callbacks. */
export interface StepOutputs {
  /** The step's loss, reported in the summary. */
  readonly loss?: number;
  /** The loss scale, recorded as `loss_scale` by a monitor. */
  readonly lossScale?: number;
  /** The raw outputs (`[loss, overflow, lossScale]` in MindSpore's wrappers). */
  readonly outputs?: readonly unknown[];
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** The epoch to stop after (1-based, so `epochs: 3` runs epochs 1–3). */
  readonly epochs: number;
  /** Steps in one epoch. */
  readonly stepsPerEpoch: number;
  /** Runs one step: forward, backward, update. */
  readonly step: (
    info: TrainStepInfo,
  ) => StepOutputs | void | Promise<StepOutputs | void>;
  /**
   * The network's parameters. The callbacks read it at each call, so update
   * tensors in place (or mutate the record) rather than replacing it.
   */
  readonly network: Network;
  /** The optimizer's state, read at each call like `network`. */
  readonly optimizer?: Network;
  /**
   * Called in order at each point.
   *
   * @default {[]}
   */
  readonly callbacks?: readonly TrainCallback[];
  /**
   * Epochs already completed (resume).
   *
   * @default {Math.floor(initialStep / stepsPerEpoch)}
   */
  readonly initialEpoch?: number;
  /**
   * Global steps already completed (resume); training goes on from the next
   * one, in the middle of an epoch if need be.
   *
   * @default {initialEpoch * stepsPerEpoch}
   */
  readonly initialStep?: number;
}

/** What {@linkcode train} returns. */
export interface TrainSummary {
  /** Steps run by this call. */
  readonly steps: number;
  /** The last global step. */
  readonly globalStep: number;
  /** The last epoch reached. */
  readonly epoch: number;
  /** How many step ends a callback reported as saved. */
  readonly saves: number;
  /** The last loss a step returned, if any. */
  readonly loss: number | undefined;
}

/**
 * Runs a training loop: `epochs × stepsPerEpoch` global steps (fewer when
 * resuming), calling `onTrainBegin`, then `onStepEnd` after every step and
 * `onEpochEnd` after each epoch's last step, then `onTrainEnd`, on every
 * callback in order. An error thrown by a step or a callback goes to every
 * callback's `onException` (with the context of the failing step), then is
 * rethrown; if an `onException` fails too, an `AggregateError` holding the
 * original error first is thrown instead.
 *
 * @param options The loop, its state and its callbacks.
 * @returns A summary of the run.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When an option has a wrong value.
 *
 * @example Count steps and epochs
 * ```ts
 * import { train } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * const w = { dtype: "Float32" as const, shape: [1], data: new Float32Array(1) };
 * const seen: string[] = [];
 * const summary = await train({
 *   epochs: 2,
 *   stepsPerEpoch: 3,
 *   network: { w },
 *   step: ({ step }) => {
 *     w.data[0] = step;
 *     return { loss: 1 / step };
 *   },
 *   callbacks: [{ onEpochEnd: (ctx) => void seen.push(`${ctx.epoch}:${ctx.step}`) }],
 * });
 * equal(summary.globalStep, 6);
 * equal(seen.join(" "), "1:3 2:6");
 * ```
 */
export async function train(options: TrainOptions): Promise<TrainSummary> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot train: options must be an object, received ${describe(options)}`,
    );
  }
  const epochs = count(options.epochs, "epochs");
  const stepsPerEpoch = count(options.stepsPerEpoch, "stepsPerEpoch");
  if (stepsPerEpoch === 0) {
    throw new RangeError(
      `Cannot train: option "stepsPerEpoch" must be at least 1, received number 0`,
    );
  }
  if (typeof options.step !== "function") {
    throw new TypeError(
      `Cannot train: option "step" must be a function, received ${
        describe(options.step)
      }`,
    );
  }
  const callbacks = options.callbacks ?? [];
  if (!Array.isArray(callbacks)) {
    throw new TypeError(
      `Cannot train: option "callbacks" must be an array, received ${
        describe(callbacks)
      }`,
    );
  }
  for (const cb of callbacks) {
    if (typeof cb !== "object" || cb === null) {
      throw new TypeError(
        `Cannot train: each callback must be an object, received ${
          describe(cb)
        }`,
      );
    }
  }
  const givenEpoch = options.initialEpoch === undefined
    ? undefined
    : count(options.initialEpoch, "initialEpoch");
  const givenStep = options.initialStep === undefined
    ? undefined
    : count(options.initialStep, "initialStep");
  const initialStep = givenStep ?? (givenEpoch ?? 0) * stepsPerEpoch;
  const initialEpoch = Math.floor(initialStep / stepsPerEpoch);
  if (givenEpoch !== undefined && givenEpoch !== initialEpoch) {
    throw new RangeError(
      `Cannot train: options "initialEpoch" (${givenEpoch}) and "initialStep" (${initialStep}) disagree; with ${stepsPerEpoch} steps per epoch, step ${initialStep} is in epoch ${
        initialEpoch + 1
      }`,
    );
  }

  const { network, optimizer } = options;
  const base = optimizer === undefined
    ? { stepsPerEpoch, network }
    : { stepsPerEpoch, network, optimizer };
  let ctx: StepContext = {
    ...base,
    step: initialStep,
    epoch: initialEpoch + 1,
  };
  let saves = 0;
  let loss: number | undefined;
  try {
    for (const cb of callbacks) await cb.onTrainBegin?.(ctx);
    let step = initialStep;
    for (let epoch = initialEpoch + 1; epoch <= epochs; epoch++) {
      const first = step - (epoch - 1) * stepsPerEpoch + 1;
      for (let inEpoch = first; inEpoch <= stepsPerEpoch; inEpoch++) {
        step++;
        ctx = { ...base, step, epoch };
        const out = await options.step({
          step,
          epoch,
          stepInEpoch: inEpoch,
          stepsPerEpoch,
        });
        if (out) {
          if (out.loss !== undefined) loss = out.loss;
          ctx = withOutputs(ctx, out);
        }
        for (const cb of callbacks) {
          if ((await cb.onStepEnd?.(ctx)) === true) saves++;
        }
      }
      for (const cb of callbacks) await cb.onEpochEnd?.(ctx);
    }
    for (const cb of callbacks) await cb.onTrainEnd?.(ctx);
  } catch (error) {
    const failures: unknown[] = [];
    for (const cb of callbacks) {
      try {
        await cb.onException?.(ctx, error);
      } catch (e) {
        failures.push(e);
      }
    }
    if (failures.length > 0) {
      throw new AggregateError(
        [error, ...failures],
        `Training failed, and ${failures.length} exception handler(s) failed too`,
      );
    }
    throw error;
  }
  return {
    steps: ctx.step - initialStep,
    globalStep: ctx.step,
    epoch: ctx.epoch,
    saves,
    loss,
  };
}

function withOutputs(ctx: StepContext, out: StepOutputs): StepContext {
  let next = ctx;
  if (out.outputs !== undefined) next = { ...next, outputs: out.outputs };
  if (out.lossScale !== undefined) next = { ...next, lossScale: out.lossScale };
  return next;
}

function count(value: unknown, option: string): number {
  return checkCount(value, option, true, "Cannot train");
}
