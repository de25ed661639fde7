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
import { APPEND_KEYS } from "../tensor/_append_keys.ts";

/** A tfjs tensor, as far as the adapter uses it (a `tf.Tensor` fits). */
export interface TfjsTensor {
  /** The shape. */
  readonly shape: readonly number[];
  /** The tfjs dtype: `"float32"`, `"int32"`, `"bool"`, … */
  readonly dtype: string;
  /** Reads the elements synchronously (a typed array). */
  dataSync(): unknown;
  /** Frees the tensor's memory. */
  dispose(): void;
}

/**
 * A weight of a tfjs model (a `LayerVariable` from `model.weights` fits).
 */
export interface TfjsWeight {
  /** The process-unique name (`hidden/kernel_1` for a second model). */
  readonly name: string;
  /** The name before uniquing (`hidden/kernel`); preferred when present. */
  readonly originalName?: string;
  /** The shape; tfjs types it as possibly holding `null`. */
  readonly shape: readonly (number | null)[];
  /** The tfjs dtype. */
  readonly dtype: string;
  /** Whether training updates it. */
  readonly trainable: boolean;
  /** Returns the current value. */
  read(): TfjsTensor;
  /** Replaces the value (the shape must match). */
  write(value: TfjsTensor): unknown;
}

/** A tfjs model, as far as the adapter reads it (a `tf.LayersModel` fits). */
export interface TfjsModel {
  /** Every weight, trainable or not, in the model's order. */
  readonly weights: readonly TfjsWeight[];
}

/** A tensor with a name, as tfjs optimizers list their state. */
export interface TfjsNamedTensor {
  /** The weight's name (`iter`, `hidden/kernel/m`, …). */
  name: string;
  /** Its value. */
  tensor: TfjsTensor;
}

/** A tfjs optimizer, as far as the adapter uses it (a `tf.Optimizer` fits). */
export interface TfjsOptimizer {
  /** Lists the optimizer's state: its step counter first, then its slots. */
  getWeights(): Promise<TfjsNamedTensor[]>;
  /** Replaces the state, by position, from a list like `getWeights()`'s. */
  setWeights(weights: TfjsNamedTensor[]): Promise<void>;
}

/**
 * What the adapter needs of the tfjs namespace to build tensors: its
 * `tensor` function. Pass the imported `tf` module itself.
 */
export interface TfjsTensorFactory {
  /** Makes a tensor from elements, a shape and a tfjs dtype. */
  tensor(
    values: Float32Array | Int32Array | Uint8Array,
    shape: number[],
    dtype: "float32" | "int32" | "bool",
  ): TfjsTensor;
}

const TO_DTYPE: Readonly<Record<string, DType>> = {
  float32: "Float32",
  int32: "Int32",
  bool: "Bool",
};
const FROM_DTYPE: Readonly<Record<string, "float32" | "int32" | "bool">> = {
  Float32: "float32",
  Int32: "int32",
  Bool: "bool",
};
const ARRAYS = {
  float32: Float32Array,
  int32: Int32Array,
  bool: Uint8Array,
} as const;

/** The default prefix of optimizer entries. */
const OPTIMIZER_PREFIX = "optimizer/";

function _weightName(w: TfjsWeight): string {
  return w.originalName ?? w.name;
}

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

function _modelWeights(model: TfjsModel, action: string): TfjsWeight[] {
  const weights = (model as { weights?: unknown } | null)?.weights;
  if (!Array.isArray(weights)) {
    throw new TypeError(
      `Cannot ${action}: expected a tfjs LayersModel with a "weights" array, received ${
        describe(model)
      }`,
    );
  }
  const seen = new Set<string>();
  for (const w of weights as TfjsWeight[]) {
    const name = _weightName(w);
    if (seen.has(name)) {
      throw new RangeError(
        `Cannot ${action}: the model has two weights named ${
          JSON.stringify(name)
        }; give its layers unique names`,
      );
    }
    seen.add(name);
  }
  return weights as TfjsWeight[];
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

/** Options of {@linkcode restoreTfjs}. */
export interface RestoreTfjsOptions {
  /** The tfjs namespace (its `tensor` function builds the new values). */
  tf: TfjsTensorFactory;
  /** Also restore this optimizer's state from the `optimizer/` entries. */
  optimizer?: TfjsOptimizer;
  /**
   * When `true`, every model weight (and, with `optimizer`, optimizer state)
   * must be in the checkpoint and every tensor in the checkpoint must be
   * used. When `false`, missing weights keep their values and unused
   * entries are skipped. Shape and dtype mismatches are errors either way.
   *
   * @default {true}
   */
  strict?: boolean;
  /**
   * Entries that are not weights (a monitor's append info); never reported
   * as unexpected.
   *
   * @default {["epoch_num", "step_num", "global_step", "loss_scale", "global_batch_size"]}
   */
  ignore?: Iterable<string>;
  /**
   * Prefix of the optimizer's entries, as given to
   * {@linkcode tfjsOptimizerState}.
   *
   * @default {"optimizer/"}
   */
  optimizerPrefix?: string;
}

/** What {@linkcode restoreTfjs} did. */
export interface RestoreTfjsResult {
  /** Model weights set from the checkpoint. */
  restored: string[];
  /** Model weights the checkpoint lacked (left as they were; non-strict only). */
  missing: string[];
  /** Checkpoint entries no weight used (non-strict only). */
  unexpected: string[];
  /** Number of optimizer entries handed to `optimizer.setWeights`. */
  optimizerWeights: number;
}

function _fail(problems: string[]): never {
  const shown = problems.slice(0, 10);
  const more = problems.length > 10 ? `; and ${problems.length - 10} more` : "";
  throw new RangeError(
    `Cannot restore tfjs model: ${shown.join("; ")}${more}`,
  );
}

function _sameShape(a: readonly number[], b: readonly (number | null)[]) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Restores a checkpoint (as `loadCheckpoint` returns it) into a tfjs model,
 * and optionally its optimizer. Weights are matched by name; everything is
 * checked before anything is written, so a failed restore leaves the model
 * untouched.
 *
 * @param model The tfjs `LayersModel` to write into.
 * @param checkpoint Name → tensor (or string) map, e.g. from `loadCheckpoint`.
 * @param options The tfjs namespace, the optimizer, strictness.
 * @returns Which weights were restored, missing or unused.
 * @throws {RangeError} Naming each weight that is missing, unexpected, of the
 * wrong shape or dtype, or duplicated in the model.
 * @throws {TypeError} When the model, checkpoint or options have the wrong type.
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { restoreTfjs, tfjsNetwork } from "@ckpt/monitor/tfjs";
 * import { networkParameters, type Tensor } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * await tf.setBackend("cpu");
 * const build = () =>
 *   tf.sequential({
 *     layers: [tf.layers.dense({ name: "out", units: 1, inputShape: [2] })],
 *   });
 * const a = build();
 * const saved = new Map<string, Tensor | string>(
 *   networkParameters(tfjsNetwork(a)).map((p) => [p.name, p]),
 * );
 * const b = build();
 * await restoreTfjs(b, saved, { tf });
 * assertEquals(b.getWeights()[0]!.dataSync(), a.getWeights()[0]!.dataSync());
 * ```
 */
export async function restoreTfjs(
  model: TfjsModel,
  checkpoint: ReadonlyMap<string, Tensor | string>,
  options: RestoreTfjsOptions,
): Promise<RestoreTfjsResult> {
  const weights = _modelWeights(model, "restore tfjs model");
  if (!(checkpoint instanceof Map)) {
    throw new TypeError(
      `Cannot restore tfjs model: the checkpoint must be a Map, received ${
        describe(checkpoint)
      }`,
    );
  }
  const tf = options?.tf;
  if (typeof tf?.tensor !== "function") {
    throw new TypeError(
      `Cannot restore tfjs model: pass the tfjs namespace as "tf", received ${
        describe(tf)
      }`,
    );
  }
  const strict = options.strict ?? true;
  const prefix = options.optimizerPrefix ?? OPTIMIZER_PREFIX;
  const ignore = new Set(options.ignore ?? APPEND_KEYS);
  const optimizer = options.optimizer;
  const problems: string[] = [];

  // Model weights, by name.
  const plan: { weight: TfjsWeight; value: Tensor }[] = [];
  const missing: string[] = [];
  const used = new Set<string>();
  const byName = new Map<string, TfjsWeight>();
  for (const w of weights) {
    const name = _weightName(w);
    byName.set(name, w);
    byName.set(w.name, w);
    const value = checkpoint.get(name);
    if (value === undefined) {
      missing.push(name);
      if (strict) {
        problems.push(`the checkpoint has no weight ${JSON.stringify(name)}`);
      }
      continue;
    }
    used.add(name);
    const err = _mismatch(name, value, w.dtype, w.shape);
    if (err !== null) problems.push(err);
    else plan.push({ weight: w, value: value as Tensor });
  }

  // Optimizer entries: prefix, position, tfjs name.
  const slots: { index: number; name: string; value: Tensor }[] = [];
  for (const [key, value] of checkpoint) {
    if (!key.startsWith(prefix)) continue;
    if (optimizer === undefined) {
      used.add(key);
      continue;
    }
    const m = /^(\d+)\/(.+)$/s.exec(key.slice(prefix.length));
    if (m === null || typeof value === "string") {
      problems.push(
        `optimizer entry ${
          JSON.stringify(key)
        } is not named ${prefix}<position>/<name>`,
      );
      continue;
    }
    used.add(key);
    const name = m[2]!;
    // Slots are named "<variable>/<slot>": check them against the variable.
    const owner = byName.get(name.slice(0, name.lastIndexOf("/")));
    const err = owner === undefined
      ? _mismatch(key, value, undefined, undefined)
      : _mismatch(key, value, owner.dtype, owner.shape);
    if (err !== null) problems.push(err);
    else slots.push({ index: Number(m[1]), name, value });
  }
  slots.sort((a, b) => a.index - b.index);
  if (optimizer !== undefined) {
    slots.forEach((s, i) => {
      if (s.index !== i) {
        problems.push(
          `optimizer entries must be numbered 0, 1, 2, …: position ${i} holds ${s.index} (${
            JSON.stringify(s.name)
          })`,
        );
      }
    });
    if (strict && slots.length === 0) {
      problems.push(
        `the checkpoint has no optimizer state (no entry starts with ${
          JSON.stringify(prefix)
        })`,
      );
    }
  }

  const unexpected: string[] = [];
  for (const [key, value] of checkpoint) {
    if (used.has(key) || ignore.has(key) || typeof value === "string") continue;
    unexpected.push(key);
    if (strict) {
      problems.push(
        `the model has no weight named ${
          JSON.stringify(key)
        } (in the checkpoint)`,
      );
    }
  }
  if (problems.length > 0) _fail(problems);

  // Everything checks out: write.
  for (const { weight, value } of plan) {
    const t = _toTfjs(tf, value);
    try {
      weight.write(t);
    } finally {
      t.dispose();
    }
  }
  if (optimizer !== undefined && slots.length > 0) {
    const named = slots.map((s) => ({
      name: s.name,
      tensor: _toTfjs(tf, s.value),
    }));
    try {
      await optimizer.setWeights(named);
    } finally {
      for (const n of named) n.tensor.dispose();
    }
  }
  return {
    restored: plan.map((p) => _weightName(p.weight)),
    missing,
    unexpected,
    optimizerWeights: optimizer === undefined ? 0 : slots.length,
  };
}

/** Returns why `value` cannot be written to a weight, or `null`. */
function _mismatch(
  name: string,
  value: Tensor | string,
  dtype: string | undefined,
  shape: readonly (number | null)[] | undefined,
): string | null {
  const q = JSON.stringify(name);
  if (typeof value === "string") return `${q} is a string, not a tensor`;
  const tfjsDtype = FROM_DTYPE[value.dtype];
  if (tfjsDtype === undefined) {
    return `${q} has dtype ${value.dtype}, which tfjs cannot hold`;
  }
  if (dtype !== undefined && tfjsDtype !== dtype) {
    return `${q} has dtype ${value.dtype} in the checkpoint, the model has ${dtype}`;
  }
  if (shape !== undefined && !_sameShape(value.shape, shape)) {
    return `${q} has shape [${
      value.shape.join(", ")
    }] in the checkpoint, the model has [${shape.join(", ")}]`;
  }
  return null;
}

function _toTfjs(tf: TfjsTensorFactory, value: Tensor): TfjsTensor {
  const dtype = FROM_DTYPE[value.dtype]!;
  // tfjs may keep the array it is given: hand it a copy.
  const data = (value.data as Float32Array | Int32Array | Uint8Array).slice();
  return tf.tensor(data, [...value.shape], dtype);
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

/** Options of {@linkcode fitWithCheckpoints} (those of {@linkcode tfjsCallback} but the model). */
export type FitWithCheckpointsOptions = Omit<TfjsCallbackOptions, "model">;

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
 * @param model The tfjs model.
 * @param x Training inputs, as for `model.fit`.
 * @param y Training targets, as for `model.fit`.
 * @param fitArgs tfjs fit arguments (`epochs`, `batchSize`, `shuffle`, …).
 * @param monitor The callback to drive (a `CheckpointMonitor`).
 * @param options The optimizer whose state to save, batches per epoch, resume step.
 * @returns What `model.fit` returns (tfjs's `History`).
 * @throws {unknown} Whatever `fit` rejects with, after `monitor.onException`
 * (an `AggregateError` holding it first when `onException` fails too).
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
  const cb = tfjsCallback(monitor, {
    ...options,
    model,
    ...(stepsPerEpoch === undefined ? {} : { stepsPerEpoch }),
  });
  const own = fitArgs?.callbacks;
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
    return await model.fit(x, y, { ...fitArgs, callbacks } as A);
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
