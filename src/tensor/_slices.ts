// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: where a slice lies in its whole tensor, and copying between the
// two (assembling a whole tensor from slices, reading a slice out of one).
// Runtime neutral, and it imports only types, so `types.ts` can use it.

import { describeValue as describe } from "../core/_describe.ts";
import { formatShape } from "./_shape.ts";

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Where a parameter that is a slice of a larger tensor (one rank's shard)
 * lies in that tensor: the whole tensor's shape, and the index of the
 * slice's first element in it. The parameter's own `shape` is the slice's.
 *
 * @example Rows 2 and 3 of a 6×4 matrix
 * ```ts
 * import type { Parameter } from "@ckpt/monitor";
 * const p: Parameter = {
 *   name: "dense.weight",
 *   dtype: "Float32",
 *   shape: [2, 4],
 *   data: new Float32Array(8),
 *   slice: { globalShape: [6, 4], offset: [2, 0] },
 * };
 * ```
 */
export interface ParameterSlice {
  /** The whole tensor's shape; as many dimensions as the slice's shape. */
  readonly globalShape: readonly number[];
  /**
   * The slice's first element in the whole tensor, per dimension;
   * `offset[i] + shape[i] <= globalShape[i]`.
   */
  readonly offset: readonly number[];
}

/**
 * Checks a slice layout: `globalShape` and `offset` arrays of non-negative
 * integers of one length; given the slice's own shape, also that it has
 * that length and that `offset + shape` stays inside `globalShape` in every
 * dimension. Returns a frozen copy.
 *
 * @param value The value to check.
 * @param shape The slice's own (local) shape, or `null` when unknown.
 * @param what How to name its owner, e.g. `parameter "w"`.
 * @throws {TypeError} When it is not an object of two arrays.
 * @throws {RangeError} When a number or a length is wrong.
 */
export function checkSlice(
  value: unknown,
  shape: readonly number[] | null,
  what: string,
): ParameterSlice {
  const prefix = `Cannot use the slice of ${what}`;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `${prefix}: expected an object with "globalShape" and "offset", received ${
        describe(value)
      }`,
    );
  }
  const s = value as { globalShape?: unknown; offset?: unknown };
  for (const key of ["globalShape", "offset"] as const) {
    const a = s[key];
    if (!Array.isArray(a)) {
      throw new TypeError(
        `${prefix}: "${key}" must be an array, received ${describe(a)}`,
      );
    }
    if (!a.every(isCount)) {
      throw new RangeError(
        `${prefix}: "${key}" must hold non-negative integers, received [${
          a.map((x) => typeof x === "number" ? x : describe(x)).join(", ")
        }]`,
      );
    }
  }
  const globalShape = s.globalShape as number[];
  const offset = s.offset as number[];
  if (offset.length !== globalShape.length) {
    throw new RangeError(
      `${prefix}: offset ${formatShape(offset)} and global shape ${
        formatShape(globalShape)
      } have different lengths`,
    );
  }
  if (shape !== null && shape.length !== globalShape.length) {
    throw new RangeError(
      `${prefix}: its shape ${formatShape(shape)} and global shape ${
        formatShape(globalShape)
      } have different lengths`,
    );
  }
  for (let i = 0; i < globalShape.length; i++) {
    if (offset[i]! + (shape?.[i] ?? 0) > globalShape[i]!) {
      throw new RangeError(
        `${prefix}: offset ${formatShape(offset)}${
          shape === null ? "" : ` plus shape ${formatShape(shape)}`
        } goes past global shape ${formatShape(globalShape)} in dimension ${i}`,
      );
    }
  }
  return Object.freeze({
    globalShape: Object.freeze([...globalShape]),
    offset: Object.freeze([...offset]),
  });
}

/**
 * Calls `run(from, to, n)` for each contiguous run of a slice inside its
 * whole tensor, in slice order: `n` elements starting at element `from` of
 * the slice and at element `to` of the whole tensor (row-major). Trailing
 * dimensions the slice spans fully are one run, so a row split of a matrix
 * is a single run.
 */
export function forEachSliceRun(
  shape: readonly number[],
  slice: ParameterSlice,
  run: (from: number, to: number, n: number) => void,
): void {
  const global = slice.globalShape;
  const ndim = shape.length;
  if (ndim === 0) return run(0, 0, 1);
  if (shape.some((d) => d === 0)) return;
  // Dimensions after k are spanned fully: one run per index of dims < k.
  let k = ndim - 1;
  while (k > 0 && shape[k] === global[k]) k--;
  const strides = new Array<number>(ndim);
  let stride = 1;
  for (let i = ndim - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= global[i]!;
  }
  const length = shape[k]! * strides[k]!;
  const index = new Array<number>(k).fill(0);
  for (let from = 0;; from += length) {
    let to = slice.offset[k]! * strides[k]!;
    for (let i = 0; i < k; i++) {
      to += (slice.offset[i]! + index[i]!) * strides[i]!;
    }
    run(from, to, length);
    let i = k - 1;
    while (i >= 0 && ++index[i]! === shape[i]) index[i--] = 0;
    if (i < 0) return;
  }
}

/** Row-major index of element `flat` of a tensor of `shape`, as text. */
function indexText(flat: number, shape: readonly number[]): string {
  const index: number[] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    index.unshift(flat % shape[i]!);
    flat = Math.floor(flat / shape[i]!);
  }
  return formatShape(index);
}

/**
 * Builds one whole tensor from slices: each slice's elements are copied to
 * their place; an element two slices both hold must be byte-identical in
 * both (replicated slices), and {@linkcode SliceAssembler.finish} fails
 * when an element was in no slice.
 */
export class SliceAssembler {
  readonly bytes: Uint8Array;
  #covered: Uint8Array;
  #size: number;
  #what: string;
  #global: readonly number[];

  /**
   * @param what How to name the tensor in errors.
   * @param globalShape The whole tensor's shape.
   * @param elementSize Bytes per element.
   */
  constructor(
    what: string,
    globalShape: readonly number[],
    elementSize: number,
  ) {
    let n = 1;
    for (const d of globalShape) n *= d;
    this.bytes = new Uint8Array(n * elementSize);
    this.#covered = new Uint8Array(n);
    this.#size = elementSize;
    this.#what = what;
    this.#global = globalShape;
  }

  /**
   * Copies one slice in.
   *
   * @param data The slice's bytes (row-major, `shape`).
   * @param shape The slice's shape.
   * @param slice Where it lies.
   * @param source Who holds it, for errors (e.g. `rank 2`).
   * @throws {RangeError} When it holds other values than an earlier slice
   * for an element both hold.
   */
  add(
    data: Uint8Array,
    shape: readonly number[],
    slice: ParameterSlice,
    source: string,
  ): void {
    const e = this.#size, covered = this.#covered, out = this.bytes;
    forEachSliceRun(shape, slice, (from, to, n) => {
      if (covered.subarray(to, to + n).indexOf(1) < 0) {
        out.set(data.subarray(from * e, (from + n) * e), to * e);
        covered.fill(1, to, to + n);
        return;
      }
      for (let i = 0; i < n; i++) {
        const a = (from + i) * e, b = (to + i) * e;
        if (covered[to + i] === 0) {
          out.set(data.subarray(a, a + e), b);
          covered[to + i] = 1;
          continue;
        }
        for (let j = 0; j < e; j++) {
          if (data[a + j] !== out[b + j]) {
            throw new RangeError(
              `Cannot assemble ${this.#what}: the slice at offset ${
                formatShape(slice.offset)
              } from ${source} overlaps another slice with a different value at element ${
                indexText(to + i, this.#global)
              }`,
            );
          }
        }
      }
    });
  }

  /**
   * Returns the whole tensor's bytes.
   *
   * @throws {RangeError} When an element is in no slice (naming the first).
   */
  finish(): Uint8Array {
    const gap = this.#covered.indexOf(0);
    if (gap >= 0) {
      throw new RangeError(
        `Cannot assemble ${this.#what}: element ${
          indexText(gap, this.#global)
        } of global shape ${
          formatShape(this.#global)
        } is in no rank's slice (the slices leave a gap)`,
      );
    }
    return this.bytes;
  }
}

/**
 * Copies a slice out of a whole tensor's bytes into `into` (the slice's
 * own bytes, row-major).
 */
export function extractSlice(
  whole: Uint8Array,
  shape: readonly number[],
  slice: ParameterSlice,
  elementSize: number,
  into: Uint8Array,
): void {
  const e = elementSize;
  forEachSliceRun(shape, slice, (from, to, n) => {
    into.set(whole.subarray(to * e, (to + n) * e), from * e);
  });
}

/** The slice layouts of parameters, by name (only those with a slice). */
export function sliceLayouts(
  params: Iterable<{ readonly name: string; readonly slice?: ParameterSlice }>,
  skip?: ReadonlyMap<string, unknown>,
): Readonly<Record<string, ParameterSlice>> | undefined {
  let out: Record<string, ParameterSlice> | undefined;
  for (const p of params) {
    if (p.slice === undefined || skip?.has(p.name)) continue;
    // defineProperty: a parameter named "__proto__" stays an own key.
    Object.defineProperty(out ??= {}, p.name, {
      value: p.slice,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
