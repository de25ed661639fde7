// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the structural tfjs types the adapter works on, the dtype maps
// and the weight naming shared by saving (tfjs.ts) and restoring
// (_tfjs_restore.ts). The public types are re-exported by tfjs.ts.

import type { DType } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";

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

export const TO_DTYPE: Readonly<Record<string, DType>> = {
  float32: "Float32",
  int32: "Int32",
  bool: "Bool",
};
export const FROM_DTYPE: Readonly<
  Record<string, "float32" | "int32" | "bool">
> = {
  Float32: "float32",
  Int32: "int32",
  Bool: "bool",
};
export const ARRAYS = {
  float32: Float32Array,
  int32: Int32Array,
  bool: Uint8Array,
} as const;

/** The default prefix of optimizer entries. */
export const OPTIMIZER_PREFIX = "optimizer/";

export function _weightName(w: TfjsWeight): string {
  return w.originalName ?? w.name;
}

/** The model's weights, checking it has a weights array of unique names. */
export function _modelWeights(model: TfjsModel, action: string): TfjsWeight[] {
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
