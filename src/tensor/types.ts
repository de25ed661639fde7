/**
 * Tensors, parameters and networks: the values a checkpoint holds.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import { checkSlice, type ParameterSlice } from "./_slices.ts";

export type { ParameterSlice };

/**
 * MindSpore's dtype names, as written in the `tensor_type` field of a `.ckpt`
 * file.
 */
export type DType =
  | "Bool"
  | "Int8"
  | "UInt8"
  | "Int16"
  | "UInt16"
  | "Int32"
  | "UInt32"
  | "Int64"
  | "UInt64"
  | "Float16"
  | "BFloat16"
  | "Float32"
  | "Float64";

/** Every {@linkcode DType}, in MindSpore's order. */
export const DTYPES: readonly DType[] = Object.freeze([
  "Bool",
  "Int8",
  "UInt8",
  "Int16",
  "UInt16",
  "Int32",
  "UInt32",
  "Int64",
  "UInt64",
  "Float16",
  "BFloat16",
  "Float32",
  "Float64",
]);

/**
 * The typed array that holds the elements of each {@linkcode DType}.
 * `Bool` is one byte per element (0 or 1); `BFloat16` is the raw 16-bit
 * pattern.
 */
export interface DTypeArrays {
  /** One byte per element, 0 or 1. */
  Bool: Uint8Array;
  /** Signed 8-bit. */
  Int8: Int8Array;
  /** Unsigned 8-bit. */
  UInt8: Uint8Array;
  /** Signed 16-bit. */
  Int16: Int16Array;
  /** Unsigned 16-bit. */
  UInt16: Uint16Array;
  /** Signed 32-bit. */
  Int32: Int32Array;
  /** Unsigned 32-bit. */
  UInt32: Uint32Array;
  /** Signed 64-bit. */
  Int64: BigInt64Array;
  /** Unsigned 64-bit. */
  UInt64: BigUint64Array;
  /**
   * IEEE half precision: a `Float16Array`, or a `Uint16Array` of the raw
   * 16-bit patterns (for runtimes and code without `Float16Array`, such as
   * Node 20). Loaders return a `Float16Array` where the runtime has one.
   */
  Float16: Float16Array | Uint16Array;
  /** bfloat16 bit patterns (the upper half of a float32). */
  BFloat16: Uint16Array;
  /** IEEE single precision. */
  Float32: Float32Array;
  /** IEEE double precision. */
  Float64: Float64Array;
}

/** Any typed array a {@linkcode Tensor} may hold. */
export type TensorData = DTypeArrays[DType];

/**
 * A dense, row-major, little-endian tensor.
 *
 * @example Make a 2×3 Float32 tensor
 * ```ts
 * import type { Tensor } from "@ckpt/monitor";
 * const t: Tensor = {
 *   dtype: "Float32",
 *   shape: [2, 3],
 *   data: new Float32Array([1, 2, 3, 4, 5, 6]),
 * };
 * ```
 */
export interface Tensor<D extends DType = DType> {
  /** The element type. */
  readonly dtype: D;
  /** The shape; `[]` for a scalar. */
  readonly shape: readonly number[];
  /** The elements, `product(shape)` of them, in the dtype's typed array. */
  readonly data: DTypeArrays[D];
}

/**
 * A named tensor of a network.
 *
 * @example
 * ```ts
 * import type { Parameter } from "@ckpt/monitor";
 * const p: Parameter = {
 *   name: "dense.weight",
 *   dtype: "Float32",
 *   shape: [2],
 *   data: new Float32Array([0.5, -0.5]),
 *   requiresGrad: true,
 * };
 * ```
 */
export interface Parameter<D extends DType = DType> extends Tensor<D> {
  /** The parameter's name, unique in its network. */
  readonly name: string;
  /** Whether the optimizer trains it. @default {true} */
  readonly requiresGrad?: boolean;
  /**
   * When the parameter is one rank's slice of a larger tensor: where it
   * lies. A monitor records it in `meta.json` and, with `integratedSave`,
   * assembles the whole tensor from every rank's slice;
   * {@linkcode loadParamsInto} reads the slice out of a whole tensor.
   * Whole tensors have none.
   *
   * @default {undefined}
   */
  readonly slice?: ParameterSlice;
}

/**
 * Anything that yields named tensors: an iterable of
 * {@linkcode Parameter}s, a `Map` or a plain record of name to tensor.
 */
export type Network =
  | Iterable<Parameter>
  | ReadonlyMap<string, Tensor>
  | { readonly [name: string]: Tensor };

/** A value stored in a checkpoint after the parameters (MindSpore's append info). */
export type AppendValue = number | bigint | boolean | string | Tensor;

/** Bytes per element of each {@linkcode DType}. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = Object.freeze({
  Bool: 1,
  Int8: 1,
  UInt8: 1,
  Int16: 2,
  UInt16: 2,
  Int32: 4,
  UInt32: 4,
  Int64: 8,
  UInt64: 8,
  Float16: 2,
  BFloat16: 2,
  Float32: 4,
  Float64: 8,
});

/**
 * `Float16Array` where the runtime has it; else the bit patterns are held in
 * a `Uint16Array` (Node 20 and older browsers lack `Float16Array`).
 */
const FLOAT16_CTOR: typeof Float16Array | typeof Uint16Array =
  typeof globalThis.Float16Array === "function" ? Float16Array : Uint16Array;

const ARRAY_CTORS = {
  Bool: Uint8Array,
  Int8: Int8Array,
  UInt8: Uint8Array,
  Int16: Int16Array,
  UInt16: Uint16Array,
  Int32: Int32Array,
  UInt32: Uint32Array,
  Int64: BigInt64Array,
  UInt64: BigUint64Array,
  Float16: FLOAT16_CTOR,
  BFloat16: Uint16Array,
  Float32: Float32Array,
  Float64: Float64Array,
} as const;

/** The typed array class of a dtype; throws where the runtime lacks it. */
function arrayCtor(
  dtype: DType,
  action: string,
): new (length: number) => TensorData {
  const Ctor = ARRAY_CTORS[dtype];
  if (Ctor === undefined) {
    throw new TypeError(
      `Cannot ${action} ${dtype}: this runtime has no ${dtype}Array (Node.js has it from version 24)`,
    );
  }
  return Ctor;
}

/**
 * Returns whether a value is one of the {@linkcode DType} names.
 *
 * @param value The value to test.
 * @returns `true` when `value` is a dtype name.
 *
 * @example
 * ```ts
 * import { isDType } from "@ckpt/monitor";
 * import { ok as assert } from "node:assert/strict";
 * assert(isDType("Float32"));
 * assert(!isDType("float32"));
 * ```
 */
export function isDType(value: unknown): value is DType {
  return typeof value === "string" && Object.hasOwn(ARRAY_CTORS, value);
}

/**
 * Views raw little-endian bytes as the typed array of a dtype. The bytes are
 * copied only when they are not aligned for the element size.
 *
 * @param dtype The element type.
 * @param bytes The raw bytes; their length must be a multiple of the element size.
 * @returns A typed array over (or copied from) `bytes`.
 *
 * @example
 * ```ts
 * import { typedArrayFromBytes } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 * const a = typedArrayFromBytes("Int16", new Uint8Array([1, 0, 255, 255]));
 * assertEquals(Array.from(a), [1, -1]);
 * ```
 */
export function typedArrayFromBytes<D extends DType>(
  dtype: D,
  bytes: Uint8Array,
): DTypeArrays[D] {
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(
      `Cannot view bytes as ${dtype}: length ${bytes.byteLength} is not a multiple of ${size}`,
    );
  }
  const Ctor = arrayCtor(dtype, "view bytes as") as unknown as {
    new (
      buffer: ArrayBufferLike,
      offset: number,
      length: number,
    ): DTypeArrays[D];
    new (buffer: ArrayBufferLike): DTypeArrays[D];
  };
  if (bytes.byteOffset % size === 0) {
    return new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  }
  const copy = bytes.slice();
  return new Ctor(copy.buffer);
}

/**
 * Returns the little-endian bytes of a tensor's elements, as a view (no copy).
 *
 * @param tensor The tensor.
 * @returns A `Uint8Array` over the tensor's data.
 *
 * @example
 * ```ts
 * import { tensorBytes } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 * const b = tensorBytes({ dtype: "Int32", shape: [1], data: new Int32Array([1]) });
 * assertEquals(Array.from(b), [1, 0, 0, 0]);
 * ```
 */
export function tensorBytes(tensor: Tensor): Uint8Array {
  const d = tensor.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * Number of elements of a shape (1 for a scalar).
 *
 * @param shape The shape.
 * @returns The product of the dimensions.
 *
 * @example
 * ```ts
 * import { shapeSize } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 * assertEquals(shapeSize([2, 3]), 6);
 * assertEquals(shapeSize([]), 1);
 * ```
 */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Checks that a value is a well-formed {@linkcode Tensor}: a known dtype, a
 * shape of non-negative safe integers, and data of the dtype's typed array
 * with exactly `product(shape)` elements.
 *
 * @param value The value to check.
 * @param what How to name the value in an error message (e.g. `parameter "w"`).
 * @returns The value, typed as a tensor.
 * @throws {TypeError} When the dtype, shape or data has the wrong type.
 * @throws {RangeError} When the shape and the data length disagree.
 *
 * @example
 * ```ts
 * import { validateTensor } from "@ckpt/monitor";
 *
 * validateTensor({ dtype: "Float32", shape: [2], data: new Float32Array(2) }, "t");
 * ```
 */
export function validateTensor(value: unknown, what: string): Tensor {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `Cannot use ${what} as a tensor: expected an object, received ${
        describe(value)
      }`,
    );
  }
  const t = value as { dtype?: unknown; shape?: unknown; data?: unknown };
  if (!isDType(t.dtype)) {
    throw new TypeError(
      `Cannot use ${what} as a tensor: unknown dtype ${describe(t.dtype)}`,
    );
  }
  if (!Array.isArray(t.shape)) {
    throw new TypeError(
      `Cannot use ${what} as a tensor: shape must be an array, received ${
        describe(t.shape)
      }`,
    );
  }
  for (const d of t.shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `Cannot use ${what} as a tensor: shape must hold non-negative integers, received [${
          t.shape.join(", ")
        }]`,
      );
    }
  }
  const Ctor = ARRAY_CTORS[t.dtype];
  // Float16 also takes its bit patterns in a Uint16Array, as BFloat16 does.
  const bits = t.dtype === "Float16" && t.data instanceof Uint16Array;
  if (!(t.data instanceof Ctor) && !bits) {
    throw new TypeError(
      `Cannot use ${what} as a tensor: dtype ${t.dtype} needs ${
        t.dtype === "Float16"
          ? "a Float16Array or a Uint16Array of bit patterns"
          : `a ${Ctor.name}`
      }, received ${describe(t.data)}`,
    );
  }
  const n = shapeSize(t.shape);
  const len = (t.data as TensorData).length;
  if (len !== n) {
    throw new RangeError(
      `Cannot use ${what} as a tensor: shape [${
        t.shape.join(", ")
      }] needs ${n} elements, data has ${len}`,
    );
  }
  return value as Tensor;
}

/**
 * Lists a network's parameters in order, checking each tensor and rejecting
 * duplicate or invalid names. A value with a `slice` (see
 * {@linkcode ParameterSlice}) keeps it, checked against its shape.
 *
 * @param network An iterable of parameters, a `Map` or a record of tensors.
 * @returns The parameters, in the network's order.
 * @throws {TypeError} When the network, a tensor or a slice has the wrong type.
 * @throws {RangeError} When two parameters share a name, a name is empty or
 * holds a NUL, or a slice does not fit its shape (another number of
 * dimensions, or `offset + shape` past `globalShape`).
 *
 * @example
 * ```ts
 * import { networkParameters } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 * const ps = networkParameters({ w: { dtype: "Float32", shape: [1], data: new Float32Array(1) } });
 * assertEquals(ps.map((p) => p.name), ["w"]);
 * ```
 */
export function networkParameters(network: Network): Parameter[] {
  const out: Parameter[] = [];
  const seen = new Set<string>();
  const add = (name: unknown, tensor: unknown, requiresGrad: unknown) => {
    if (typeof name !== "string") {
      throw new TypeError(
        `Cannot read network: parameter name must be a string, received ${
          describe(name)
        }`,
      );
    }
    if (name.length === 0 || name.includes("\0")) {
      throw new RangeError(
        `Cannot read network: parameter name must be non-empty and without NUL, received ${
          JSON.stringify(name)
        }`,
      );
    }
    if (seen.has(name)) {
      throw new RangeError(
        `Cannot read network: two parameters are named ${JSON.stringify(name)}`,
      );
    }
    seen.add(name);
    const t = validateTensor(tensor, `parameter ${JSON.stringify(name)}`);
    if (requiresGrad !== undefined && typeof requiresGrad !== "boolean") {
      throw new TypeError(
        `Cannot read network: requiresGrad of ${
          JSON.stringify(name)
        } must be a boolean, received ${describe(requiresGrad)}`,
      );
    }
    const given = (tensor as { slice?: unknown }).slice;
    const slice = given === undefined
      ? undefined
      : checkSlice(given, t.shape, `parameter ${JSON.stringify(name)}`);
    out.push({
      name,
      dtype: t.dtype,
      shape: t.shape,
      data: t.data,
      ...(requiresGrad !== undefined &&
        { requiresGrad: requiresGrad as boolean }),
      ...(slice !== undefined && { slice }),
    });
  };
  if (network instanceof Map) {
    for (const [name, tensor] of network) add(name, tensor, undefined);
  } else if (
    typeof network === "object" && network !== null &&
    typeof (network as Iterable<unknown>)[Symbol.iterator] === "function"
  ) {
    for (const p of network as Iterable<Parameter>) {
      if (typeof p !== "object" || p === null) {
        throw new TypeError(
          `Cannot read network: expected parameters, received ${describe(p)}`,
        );
      }
      add(p.name, p, p.requiresGrad);
    }
  } else if (typeof network === "object" && network !== null) {
    for (const [name, tensor] of Object.entries(network)) {
      add(name, tensor, undefined);
    }
  } else {
    throw new TypeError(
      `Cannot read network: expected an iterable of parameters, a Map or a record, received ${
        describe(network)
      }`,
    );
  }
  return out;
}
