// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the tfjs fit callback that drives a TrainCallback (global step
// counting, epoch and exception forwarding). Re-exported by tfjs.ts, the
// ./tfjs subpath.

import type { StepContext, TrainCallback } from "../monitor/callback.ts";
import type { Network } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { checkInteger } from "../core/_validate.ts";
import type { TfjsModel, TfjsOptimizer } from "./_tfjs_types.ts";
import { tfjsNetwork, tfjsOptimizerState } from "./_tfjs_network.ts";

const WHAT = "Cannot make tfjs callback";

/** Options of {@linkcode tfjsCallback}. */
export interface TfjsCallbackOptions {
  /** The model being trained. */
  model: TfjsModel;
  /** Its optimizer, whose state is passed to the monitor as `ctx.optimizer`. */
  optimizer?: TfjsOptimizer;
  /**
   * Batches per epoch. Needed for step-in-epoch numbers; when omitted it is
   * taken from tfjs's fit parameters where tfjs passes them, and
   * {@linkcode fitWithCheckpoints} works it out from `x` and `batchSize`.
   */
  stepsPerEpoch?: number;
  /**
   * Steps already done before this `fit` call (when resuming), so the
   * global step continues. Pair it with fit's `initialEpoch`.
   *
   * @default {0}
   */
  initialStep?: number;
}

/**
 * Loss values and metrics tfjs passes to callbacks.
 */
export type TfjsLogs = { readonly [key: string]: unknown };

/**
 * Fit parameters tfjs gives callbacks it treats as its own `Callback`
 * objects (only these fields are read).
 */
export interface TfjsFitParams {
  /** Samples per epoch. */
  samples?: number | null;
  /** Steps per epoch (for `fitDataset`). */
  steps?: number | null;
  /** Batch size. */
  batchSize?: number | null;
}

/**
 * A tfjs fit callback driving a {@linkcode TrainCallback}. Pass it in
 * `model.fit(x, y, { callbacks: [cb] })`; it also has the methods of a tfjs
 * `Callback`, so it may follow `tf.callbacks.earlyStopping(...)` in a list.
 */
export interface TfjsCheckpointCallback {
  /** Receives tfjs's fit parameters (batches per epoch). */
  setParams(params: TfjsFitParams): void;
  /** Receives the model (ignored: the adapter has it already). */
  setModel(model: unknown): void;
  /** Forwards to the monitor's `onTrainBegin`. */
  onTrainBegin(logs?: TfjsLogs): Promise<void>;
  /** Records the epoch number (tfjs counts from 0, the context from 1). */
  onEpochBegin(epoch: number, logs?: TfjsLogs): Promise<void>;
  /** Does nothing; present for tfjs. */
  onBatchBegin(batch: number, logs?: TfjsLogs): Promise<void>;
  /** Counts a global step and forwards to the monitor's `onStepEnd`. */
  onBatchEnd(batch: number, logs?: TfjsLogs): Promise<void>;
  /** Forwards to the monitor's `onEpochEnd`. */
  onEpochEnd(epoch: number, logs?: TfjsLogs): Promise<void>;
  /** Forwards to the monitor's `onTrainEnd`. */
  onTrainEnd(logs?: TfjsLogs): Promise<void>;
  /**
   * Forwards an error that made `fit` reject to the monitor's
   * `onException`, with the context of the last finished step. The caller
   * rethrows `error` afterwards.
   */
  onException(error: unknown): Promise<void>;
  /** The context of the last finished step (or of train begin). */
  readonly context: StepContext;
}

/**
 * Makes a tfjs `fit` callback that drives a checkpoint monitor (any
 * {@linkcode TrainCallback}): tfjs's batch end becomes `onStepEnd` with a
 * global step counting from 1 across epochs, and epoch end, train end and
 * (through {@linkcode TfjsCheckpointCallback.onException}) exceptions are
 * forwarded too. Each context carries a live view of the model's weights
 * and, with `optimizer`, of its state.
 *
 * tfjs does not report errors to callbacks: use
 * {@linkcode fitWithCheckpoints}, or catch `fit`'s rejection and call
 * `cb.onException(error)` yourself.
 *
 * @param monitor The callback to drive (a `CheckpointMonitor`).
 * @param options The model, its optimizer, batches per epoch, resume step.
 * @returns A callback object for `model.fit`'s `callbacks`.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When the model has duplicate weight names or a count
 * is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { tfjsCallback } from "@ckpt/monitor/tfjs";
 * import type { StepContext } from "@ckpt/monitor";
 *
 * await tf.setBackend("cpu");
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ name: "out", units: 1, inputShape: [2] })],
 * });
 * model.compile({ optimizer: tf.train.sgd(0.1), loss: "meanSquaredError" });
 * const steps: string[] = [];
 * const cb = tfjsCallback({
 *   onStepEnd: (ctx: StepContext) => void steps.push(`${ctx.epoch}:${ctx.step}`),
 * }, { model, stepsPerEpoch: 2 });
 * await model.fit(tf.ones([4, 2]), tf.ones([4, 1]), {
 *   epochs: 2, batchSize: 2, verbose: 0, callbacks: [cb],
 * });
 * console.assert(steps.join() === "1:1,1:2,2:3,2:4");
 * ```
 */
export function tfjsCallback(
  monitor: TrainCallback,
  options: TfjsCallbackOptions,
): TfjsCheckpointCallback {
  if (typeof monitor !== "object" || monitor === null) {
    throw new TypeError(
      `Cannot make tfjs callback: the monitor must be a TrainCallback object, received ${
        describe(monitor)
      }`,
    );
  }
  const { model, optimizer } = options ?? {};
  const network = tfjsNetwork(model);
  let stepsPerEpoch = options.stepsPerEpoch === undefined
    ? 0
    : checkInteger(options.stepsPerEpoch, '"stepsPerEpoch"', 1, WHAT);
  let step = options.initialStep === undefined
    ? 0
    : checkInteger(options.initialStep, '"initialStep"', 0, WHAT);
  if (
    optimizer !== undefined &&
    typeof (optimizer as { getWeights?: unknown }).getWeights !== "function"
  ) {
    throw new TypeError(
      `Cannot make tfjs callback: "optimizer" must be a tfjs Optimizer, received ${
        describe(optimizer)
      }`,
    );
  }
  let epoch = 1;
  let context: StepContext = { step, epoch, stepsPerEpoch, network };

  const makeContext = async (loss: unknown): Promise<StepContext> => {
    const base = { step, epoch, stepsPerEpoch, network };
    const withOpt = optimizer === undefined
      ? base
      : { ...base, optimizer: await tfjsOptimizerState(optimizer) as Network };
    return typeof loss === "number" ? { ...withOpt, outputs: [loss] } : withOpt;
  };

  return {
    setParams(params: TfjsFitParams): void {
      if (stepsPerEpoch > 0 || params == null) return;
      if (typeof params.steps === "number" && params.steps > 0) {
        stepsPerEpoch = params.steps;
      } else if (
        typeof params.samples === "number" &&
        typeof params.batchSize === "number" && params.batchSize > 0
      ) {
        stepsPerEpoch = Math.ceil(params.samples / params.batchSize);
      }
    },
    setModel(): void {},
    async onTrainBegin(): Promise<void> {
      if (stepsPerEpoch === 0) {
        throw new TypeError(
          `Cannot checkpoint tfjs training: pass "stepsPerEpoch" to tfjsCallback (batches per epoch, ceil(samples / batchSize)), or use fitWithCheckpoints`,
        );
      }
      context = await makeContext(undefined);
      await monitor.onTrainBegin?.(context);
    },
    onEpochBegin(e: number): Promise<void> {
      epoch = e + 1;
      return Promise.resolve();
    },
    onBatchBegin(): Promise<void> {
      return Promise.resolve();
    },
    async onBatchEnd(_batch: number, logs?: TfjsLogs): Promise<void> {
      step += 1;
      context = await makeContext(logs?.loss);
      await monitor.onStepEnd?.(context);
    },
    async onEpochEnd(): Promise<void> {
      await monitor.onEpochEnd?.(context);
    },
    async onTrainEnd(): Promise<void> {
      await monitor.onTrainEnd?.(context);
    },
    async onException(error: unknown): Promise<void> {
      await monitor.onException?.(context, error);
    },
    get context(): StepContext {
      return context;
    },
  };
}
