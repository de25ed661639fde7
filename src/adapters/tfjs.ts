// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * TensorFlow.js adapter: turns a tfjs `LayersModel` and its optimizer into
 * networks a checkpoint monitor saves, plugs a monitor into `model.fit`, and
 * restores a checkpoint into a model and optimizer.
 *
 * The adapter never imports TensorFlow.js: it works on the objects passed in,
 * described by the small structural interfaces below, so it adds no
 * dependency and works with any tfjs 4.x build (CPU, WebGL, Node).
 *
 * Names: model weights keep their tfjs names (`hidden/kernel`, the
 * `originalName`, which is what `model.save()` uses too). Optimizer weights
 * are stored as `optimizer/NNN/<tfjs name>`, where `NNN` is the weight's
 * position in `optimizer.getWeights()`: tfjs optimizers restore their slots by
 * position, and a file format may reorder entries (safetensors writers sort
 * them), so the position is kept in the name.
 *
 * @example Save a tfjs model every 2 batches while it trains
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { fitWithCheckpoints } from "@ckpt/monitor/tfjs";
 * import type { StepContext, TrainCallback } from "@ckpt/monitor";
 *
 * await tf.setBackend("cpu");
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ name: "out", units: 1, inputShape: [2] })],
 * });
 * model.compile({ optimizer: tf.train.sgd(0.1), loss: "meanSquaredError" });
 * const saved: number[] = [];
 * const monitor: TrainCallback = {
 *   onStepEnd(ctx: StepContext) {
 *     if (ctx.step % 2 === 0) saved.push(ctx.step);
 *   },
 * };
 * const x = tf.ones([8, 2]);
 * const y = tf.ones([8, 1]);
 * await fitWithCheckpoints(model, x, y, { epochs: 1, batchSize: 2, verbose: 0 }, monitor);
 * console.assert(saved.join() === "2,4");
 * ```
 *
 * @module
 */

import type { TrainCallback } from "../monitor/callback.ts";
import { describeValue as describe } from "../core/_describe.ts";
import type { TfjsModel, TfjsTensorFactory } from "./_tfjs_types.ts";
import { restoreTfjs } from "./_tfjs_restore.ts";
import { tfjsCallback, type TfjsCallbackOptions } from "./_tfjs_callback.ts";
import { CheckpointMonitor } from "../monitor/monitor.ts";
import { findResumeCheckpoint } from "../resume/resume.ts";
import { loadCheckpoint } from "../checkpoint/checkpoint.ts";

export type {
  TfjsModel,
  TfjsNamedTensor,
  TfjsOptimizer,
  TfjsTensor,
  TfjsTensorFactory,
  TfjsWeight,
} from "./_tfjs_types.ts";
export { restoreTfjs };
export type { RestoreTfjsOptions, RestoreTfjsResult } from "./_tfjs_restore.ts";
export {
  tfjsNetwork,
  tfjsOptimizerState,
  type TfjsOptimizerStateOptions,
} from "./_tfjs_network.ts";
export {
  tfjsCallback,
  type TfjsCallbackOptions,
  type TfjsCheckpointCallback,
  type TfjsFitParams,
  type TfjsLogs,
} from "./_tfjs_callback.ts";

/** What {@linkcode fitWithCheckpoints} needs of a model. */
export interface TfjsFitModel<X, Y, A, R> extends TfjsModel {
  /** tfjs's `model.fit(x, y, args)`. */
  fit(x: X, y: Y, args?: A): Promise<R>;
}

/** The fields of tfjs's fit arguments that {@linkcode fitWithCheckpoints} reads. */
export interface TfjsFitArgs {
  /** Batch size. @default {32} */
  batchSize?: number;
  /** Fraction of samples kept out of training for validation. */
  validationSplit?: number;
  /** The caller's own callbacks; the checkpoint callback is added after them. */
  callbacks?: unknown;
}

/**
 * Options of {@linkcode fitWithCheckpoints}: those of
 * {@linkcode tfjsCallback} but the model, and how to resume.
 */
export interface FitWithCheckpointsOptions
  extends Omit<TfjsCallbackOptions, "model"> {
  /**
   * Resume before training: `true` looks in the monitor's own `directory`
   * (the monitor must be a `CheckpointMonitor`); a string is the folder to
   * look in (a monitor's `directory`). The newest checkpoint that verifies
   * ({@linkcode findResumeCheckpoint}, breakpoints included) is restored
   * into the model and `optimizer`, `fit` goes on from the epoch after the
   * last one it completed (its `initialEpoch`) and the step count from the
   * start of that epoch. A checkpoint taken mid-epoch resumes at the start
   * of its epoch, so the batches of that epoch it already saw are trained
   * on again: save at epoch ends (`saveCheckpointSteps` a multiple of the
   * batches per epoch) for a resume identical to an uninterrupted run. When
   * there is no checkpoint, training starts from the beginning. Needs `tf`.
   *
   * @default {false}
   */
  resume?: boolean | string;
  /**
   * The tfjs namespace (`import * as tf from "…tfjs"`), which `resume`
   * needs to build the restored tensors.
   *
   * @default {undefined}
   */
  tf?: TfjsTensorFactory;
  /**
   * The key of encrypted checkpoints to resume from (the cipher is read
   * from the files). By default the monitor's `encKey`.
   *
   * @default {the monitor's encKey}
   */
  decKey?: Uint8Array;
}

/** Where {@linkcode fitWithCheckpoints} resumes: restored, and the counts. */
async function _resume(
  model: TfjsModel,
  monitor: TrainCallback,
  options: FitWithCheckpointsOptions,
  stepsPerEpoch: number | undefined,
): Promise<{ initialEpoch: number; initialStep: number } | null> {
  const { resume, tf } = options;
  const own = monitor instanceof CheckpointMonitor ? monitor : undefined;
  const directory = typeof resume === "string" ? resume : own?.directory;
  if (directory === undefined) {
    throw new TypeError(
      `Cannot resume tfjs training: "resume: true" needs a CheckpointMonitor (to take its directory); pass the folder as "resume" instead`,
    );
  }
  if (typeof tf?.tensor !== "function") {
    throw new TypeError(
      `Cannot resume tfjs training: pass the tfjs namespace as "tf" (import * as tf from "npm:@tensorflow/tfjs"), received ${
        describe(tf)
      }`,
    );
  }
  if (stepsPerEpoch === undefined) {
    throw new TypeError(
      `Cannot resume tfjs training: pass "stepsPerEpoch" (batches per epoch), which cannot be worked out from x`,
    );
  }
  if (options.initialStep !== undefined) {
    throw new TypeError(
      `Cannot resume tfjs training: "resume" works out the initial step; do not pass "initialStep" too`,
    );
  }
  const decKey = options.decKey ?? own?.config.encKey;
  const load = decKey === undefined ? {} : { decKey };
  const found = await findResumeCheckpoint(directory, {
    ...load,
    stepsPerEpoch,
  });
  if (found === null) return null;
  const file = found.files[own?.rank ?? 0] ?? found.integrated;
  if (file === undefined) {
    throw new RangeError(
      `Cannot resume tfjs training: the checkpoint found in "${directory}" has no file for rank ${own?.rank}`,
    );
  }
  await restoreTfjs(model, await loadCheckpoint(file, load), {
    tf,
    ...(options.optimizer === undefined
      ? {}
      : { optimizer: options.optimizer }),
  });
  const initialEpoch = found.context.initialEpoch;
  return { initialEpoch, initialStep: initialEpoch * stepsPerEpoch };
}

function _samples(x: unknown): number | undefined {
  const first = Array.isArray(x) ? x[0] : x;
  const shape = (first as { shape?: unknown } | null)?.shape;
  return Array.isArray(shape) && typeof shape[0] === "number"
    ? shape[0]
    : undefined;
}

/**
 * Runs `model.fit(x, y, fitArgs)` with a checkpoint monitor attached: the
 * callback of {@linkcode tfjsCallback} goes first in `fitArgs.callbacks`
 * (second when the first is a tfjs `Callback` object, which tfjs requires),
 * so the monitor's step count never lags the weights when another callback
 * throws. Batches per epoch are worked out from `x`, `batchSize` and
 * `validationSplit` unless given. When `fit` rejects, the monitor's
 * `onException` runs (it may save a breakpoint) before the error is rethrown.
 *
 * With `resume: true` (and `tf`), it first resumes from the newest
 * checkpoint under the monitor's directory that verifies: the weights and
 * optimizer state are restored and `fit` goes on from the epoch after the
 * last one completed, so the same script run again after a crash continues
 * where it stopped (see {@linkcode FitWithCheckpointsOptions.resume}).
 *
 * @param model The tfjs model.
 * @param x Training inputs, as for `model.fit`.
 * @param y Training targets, as for `model.fit`.
 * @param fitArgs tfjs fit arguments (`epochs`, `batchSize`, `shuffle`, …).
 * @param monitor The callback to drive (a `CheckpointMonitor`).
 * @param options The optimizer whose state to save, batches per epoch, resume step.
 * @returns What `model.fit` returns (tfjs's `History`).
 * @throws {unknown} Whatever `fit` rejects with, after `monitor.onException`
 * (an `AggregateError` holding it first when `onException` fails too).
 * @throws {TypeError} With `resume`: when `tf` is missing, `resume: true`
 * is given without a `CheckpointMonitor`, or `initialStep` / fit's
 * `initialEpoch` are passed too.
 * @throws {RangeError} With `resume`: when the checkpoint does not fit the
 * model (the message names each weight).
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { fitWithCheckpoints } from "@ckpt/monitor/tfjs";
 * import { rejects } from "node:assert/strict";
 *
 * await tf.setBackend("cpu");
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ name: "out", units: 1, inputShape: [2] })],
 * });
 * model.compile({ optimizer: tf.train.sgd(0.1), loss: "meanSquaredError" });
 * let seen: unknown;
 * await rejects(
 *   fitWithCheckpoints(model, tf.ones([4, 2]), tf.ones([4, 1]), {
 *     batchSize: 2,
 *     verbose: 0,
 *     callbacks: { onBatchEnd: () => { throw new Error("boom"); } },
 *   }, { onException: (_ctx, e) => { seen = e; } }),
 *   /boom/,
 * );
 * console.assert(seen instanceof Error);
 * ```
 */
export async function fitWithCheckpoints<X, Y, A extends TfjsFitArgs, R>(
  model: TfjsFitModel<X, Y, A, R>,
  x: X,
  y: Y,
  fitArgs: A,
  monitor: TrainCallback,
  options: FitWithCheckpointsOptions = {},
): Promise<R> {
  let stepsPerEpoch = options.stepsPerEpoch;
  if (stepsPerEpoch === undefined) {
    const n = _samples(x);
    const batch = fitArgs?.batchSize ?? 32;
    const split = fitArgs?.validationSplit ?? 0;
    if (n !== undefined && batch > 0) {
      const train = split > 0 && split < 1 ? Math.floor(n * (1 - split)) : n;
      stepsPerEpoch = Math.max(1, Math.ceil(train / batch));
    }
  }
  let args = fitArgs;
  let initialStep = options.initialStep;
  if (options.resume !== undefined && options.resume !== false) {
    if ((fitArgs as { initialEpoch?: unknown })?.initialEpoch !== undefined) {
      throw new TypeError(
        `Cannot resume tfjs training: "resume" works out fit's initialEpoch; do not pass it too`,
      );
    }
    const at = await _resume(model, monitor, options, stepsPerEpoch);
    if (at !== null) {
      args = { ...fitArgs, initialEpoch: at.initialEpoch };
      initialStep = at.initialStep;
    }
  }
  const { resume: _r, tf: _tf, decKey: _k, ...callbackOptions } = options;
  const cb = tfjsCallback(monitor, {
    ...callbackOptions,
    model,
    ...(stepsPerEpoch === undefined ? {} : { stepsPerEpoch }),
    ...(initialStep === undefined ? {} : { initialStep }),
  });
  const own = args?.callbacks;
  const list: unknown[] = own == null
    ? []
    : Array.isArray(own)
    ? [...own]
    : [own];
  // The monitor sees each batch end before the caller's callbacks, so a
  // callback that throws cannot leave it one step behind the weights. tfjs
  // only keeps a list of its own Callback objects as it is when the first
  // one is such an object: then the monitor goes second.
  const first = list[0] as { setParams?: unknown } | undefined;
  list.splice(typeof first?.setParams === "function" ? 1 : 0, 0, cb);
  const callbacks = list;
  try {
    return await model.fit(x, y, { ...args, callbacks } as A);
  } catch (error) {
    try {
      await cb.onException(error);
    } catch (failure) {
      // As train() does: the original error first.
      throw new AggregateError(
        [error, failure],
        "Training failed, and the monitor's onException failed too",
      );
    }
    throw error;
  }
}
