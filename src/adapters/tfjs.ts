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

import type { StepContext, TrainCallback } from "../monitor/callback.ts";
import type { DType, Network, Parameter, Tensor } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  _modelWeights,
  _weightName,
  ARRAYS,
  FROM_DTYPE,
  OPTIMIZER_PREFIX,
  type TfjsModel,
  type TfjsOptimizer,
  type TfjsTensor,
  type TfjsTensorFactory,
  TO_DTYPE,
} from "./_tfjs_types.ts";
import { restoreTfjs } from "./_tfjs_restore.ts";
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

function _dtype(tfjsDtype: unknown, what: string): DType {
  const d = typeof tfjsDtype === "string" ? TO_DTYPE[tfjsDtype] : undefined;
  if (d === undefined) {
    throw new TypeError(
      `Cannot checkpoint ${what}: tfjs dtype ${
        describe(tfjsDtype)
      } is not supported (float32, int32 and bool are)`,
    );
  }
  return d;
}

function _shape(shape: readonly (number | null)[], what: string): number[] {
  const out: number[] = [];
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `Cannot checkpoint ${what}: its shape must be fully known, received [${
          shape.join(", ")
        }]`,
      );
    }
    out.push(d);
  }
  return out;
}

/** Copies a tfjs tensor's elements into a fresh typed array of `dtype`. */
function _copy(tensor: TfjsTensor, dtype: DType, what: string): Tensor {
  const data = tensor.dataSync();
  const Ctor = ARRAYS[FROM_DTYPE[dtype] as keyof typeof ARRAYS];
  if (!(data instanceof Ctor)) {
    throw new TypeError(
      `Cannot checkpoint ${what}: expected its data as a ${Ctor.name}, received ${
        describe(data)
      }`,
    );
  }
  return { dtype, shape: [...tensor.shape], data: data.slice() } as Tensor;
}

/** One entry of a live view: how to name it and read it when iterated. */
interface _LiveEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly requiresGrad: boolean;
  readonly read: () => Tensor;
}

function _liveNetwork(entries: readonly _LiveEntry[]): Iterable<Parameter> {
  return {
    *[Symbol.iterator](): Iterator<Parameter> {
      for (const e of entries) {
        const t = e.read();
        yield {
          name: e.name,
          dtype: t.dtype,
          shape: t.shape,
          data: t.data,
          requiresGrad: e.requiresGrad,
        } as Parameter;
      }
    },
  };
}

/**
 * Describes a tfjs model's weights as a {@linkcode Network}: one parameter
 * per weight, named by its tfjs name, with `requiresGrad` = `trainable`.
 *
 * The result is a live view: each iteration copies the weights' current
 * values, so one view serves a whole training run and a monitor that only
 * iterates when it saves pays for the copy only then.
 *
 * @param model A tfjs `LayersModel` (anything with a `weights` array).
 * @returns An iterable of parameters reading the model's current values.
 * @throws {TypeError} When the model has no weights array or a weight's
 * dtype is not float32, int32 or bool.
 * @throws {RangeError} When two weights share a name or a shape is unknown.
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { tfjsNetwork } from "@ckpt/monitor/tfjs";
 * import { networkParameters } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * await tf.setBackend("cpu");
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ name: "out", units: 3, inputShape: [2] })],
 * });
 * const params = networkParameters(tfjsNetwork(model));
 * assertEquals(params.map((p) => [p.name, p.shape]), [
 *   ["out/kernel", [2, 3]],
 *   ["out/bias", [3]],
 * ]);
 * ```
 */
export function tfjsNetwork(model: TfjsModel): Iterable<Parameter> {
  const weights = _modelWeights(model, "checkpoint tfjs model");
  const entries = weights.map((w): _LiveEntry => {
    const name = _weightName(w);
    const what = `tfjs weight ${JSON.stringify(name)}`;
    const dtype = _dtype(w.dtype, what);
    const shape = _shape(w.shape, what);
    return {
      name,
      dtype,
      shape,
      requiresGrad: w.trainable,
      read: () => _copy(w.read(), dtype, what),
    };
  });
  return _liveNetwork(entries);
}

/** Options of {@linkcode tfjsOptimizerState}. */
export interface TfjsOptimizerStateOptions {
  /**
   * Prefix of every entry's name, so optimizer state cannot collide with
   * model weights in one checkpoint.
   *
   * @default {"optimizer/"}
   */
  prefix?: string;
}

/**
 * Describes a tfjs optimizer's state (`optimizer.getWeights()`: its step
 * counter and slots such as Adam's moments) as a {@linkcode Network}, with
 * `requiresGrad: false`. Entry `i` is named `optimizer/NNN/<tfjs name>`,
 * `NNN` being `i` with three digits or more, so a restore can hand the slots
 * back in order whatever order a file stores them in.
 *
 * The step counter is read now; the slots are a live view of the
 * optimizer's variables, copied when iterated. A fresh optimizer has no
 * slots until its first training step.
 *
 * @param optimizer A tfjs `Optimizer` (anything with `getWeights()`).
 * @param options The name prefix.
 * @returns The optimizer's state as parameters.
 * @throws {TypeError} When `getWeights` is missing or a dtype is not supported.
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { tfjsOptimizerState } from "@ckpt/monitor/tfjs";
 * import { networkParameters } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * await tf.setBackend("cpu");
 * const state = networkParameters(await tfjsOptimizerState(tf.train.adam()));
 * assertEquals(state.map((p) => [p.name, p.dtype]), [["optimizer/000/iter", "Int32"]]);
 * ```
 */
export async function tfjsOptimizerState(
  optimizer: TfjsOptimizer,
  options: TfjsOptimizerStateOptions = {},
): Promise<Iterable<Parameter>> {
  const prefix = options.prefix ?? OPTIMIZER_PREFIX;
  if (typeof prefix !== "string") {
    throw new TypeError(
      `Cannot checkpoint tfjs optimizer: "prefix" must be a string, received ${
        describe(prefix)
      }`,
    );
  }
  if (
    typeof (optimizer as { getWeights?: unknown })?.getWeights !== "function"
  ) {
    throw new TypeError(
      `Cannot checkpoint tfjs optimizer: expected a tfjs Optimizer with getWeights(), received ${
        describe(optimizer)
      }`,
    );
  }
  const named = await optimizer.getWeights();
  const width = Math.max(3, String(named.length - 1).length);
  const entries = named.map(({ name, tensor }, i): _LiveEntry => {
    const full = `${prefix}${String(i).padStart(width, "0")}/${name}`;
    const what = `tfjs optimizer weight ${JSON.stringify(name)}`;
    const dtype = _dtype(tensor.dtype, what);
    const shape = _shape(tensor.shape, what);
    // getWeights() returns the optimizer's variables as they are, plus
    // tensors it makes for the call (the step counter): read and free those.
    if (typeof (tensor as { assign?: unknown }).assign !== "function") {
      const value = _copy(tensor, dtype, what);
      tensor.dispose();
      return {
        name: full,
        dtype,
        shape,
        requiresGrad: false,
        read: () => value,
      };
    }
    return {
      name: full,
      dtype,
      shape,
      requiresGrad: false,
      read: () => _copy(tensor, dtype, what),
    };
  });
  return _liveNetwork(entries);
}

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

function _positiveInt(value: unknown, name: string, min: number): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot make tfjs callback: "${name}" must be a number, received ${
        describe(value)
      }`,
    );
  }
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot make tfjs callback: "${name}" must be an integer >= ${min}, received ${value}`,
    );
  }
  return value;
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
    : _positiveInt(options.stepsPerEpoch, "stepsPerEpoch", 1);
  let step = options.initialStep === undefined
    ? 0
    : _positiveInt(options.initialStep, "initialStep", 0);
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
