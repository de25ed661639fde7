// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: a tfjs model's weights and its optimizer's state as live
// networks (names, dtypes, shapes checked; values copied when iterated).
// Re-exported by tfjs.ts, the ./tfjs subpath.

import type { DType, Parameter, Tensor } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { formatShape } from "../tensor/_shape.ts";
import {
  _modelWeights,
  _weightName,
  ARRAYS,
  FROM_DTYPE,
  OPTIMIZER_PREFIX,
  type TfjsModel,
  type TfjsOptimizer,
  type TfjsTensor,
  TO_DTYPE,
} from "./_tfjs_types.ts";

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
        `Cannot checkpoint ${what}: its shape must be fully known, received ${
          formatShape(shape)
        }`,
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
