// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Restoring a loaded checkpoint into a network's own tensors, by name.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import { extractSlice } from "../tensor/_slices.ts";
import type { CheckpointReader } from "../checkpoint/checkpoint.ts";
import {
  type DType,
  DTYPE_SIZE,
  type Network,
  networkParameters,
  type Parameter,
  shapeSize,
  type Tensor,
  tensorBytes,
} from "../tensor/types.ts";

import { APPEND_INFO_NAMES } from "../tensor/append_info.ts";
import { formatShape, sameShape } from "../tensor/_shape.ts";

export { APPEND_INFO_NAMES };

/** Options of {@linkcode loadParamsInto}. */
export interface LoadParamsOptions {
  /**
   * Throw a {@linkcode CheckpointMismatchError} when a parameter of the
   * network is missing from the checkpoint or the checkpoint holds a name
   * the network lacks (other than `ignore`). Nothing is copied then.
   *
   * @default {false}
   */
  readonly strict?: boolean;
  /**
   * Checkpoint names never reported as unexpected.
   *
   * @default {APPEND_INFO_NAMES}
   */
  readonly ignore?: Iterable<string>;
}

/** What {@linkcode loadParamsInto} did. */
export interface LoadParamsResult {
  /** The network's parameters that got the checkpoint's values, in network order. */
  readonly loaded: string[];
  /** The network's parameters the checkpoint lacks (left unchanged). */
  readonly missing: string[];
  /** The checkpoint's names the network lacks, in file order (not `ignore`d). */
  readonly unexpected: string[];
}

/**
 * A checkpoint does not fit a network: a parameter's dtype or shape
 * differs, or (with `strict`) names are missing or unexpected. Usually the
 * checkpoint of another model.
 *
 * @example
 * ```ts
 * import { CheckpointMismatchError } from "@ckpt/monitor";
 * const e = new CheckpointMismatchError("w", "shape [2] in the network, [3] in the checkpoint");
 * console.assert(e.parameter === "w");
 * ```
 */
export class CheckpointMismatchError extends Error {
  /** The parameter that does not fit, or `null` when several names do. */
  readonly parameter: string | null;

  /**
   * Makes the error.
   *
   * @param parameter The parameter that does not fit, or `null`.
   * @param reason What does not fit.
   */
  constructor(parameter: string | null, reason: string) {
    super(
      parameter === null
        ? `Cannot load checkpoint into network: ${reason}`
        : `Cannot load parameter ${
          JSON.stringify(parameter)
        } from checkpoint: ${reason}`,
    );
    this.name = "CheckpointMismatchError";
    this.parameter = parameter;
  }
}

/** A checkpoint's entry, as a loaded map or an open reader describes it. */
interface Described {
  readonly name: string;
  readonly dtype: DType | "str";
  readonly shape: readonly number[];
}

function isReader(value: unknown): value is CheckpointReader {
  return typeof value === "object" && value !== null &&
    Array.isArray((value as CheckpointReader).entries) &&
    typeof (value as CheckpointReader).read === "function";
}

function list(names: string[]): string {
  const shown = names.slice(0, 10).map((n) => JSON.stringify(n)).join(", ");
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown;
}

/**
 * Copies a checkpoint's tensors into a network's existing typed arrays, by
 * name, so the training loop's own buffers hold the restored values. Every
 * name is checked before anything is copied: a dtype or shape mismatch
 * throws a {@linkcode CheckpointMismatchError} naming the parameter, and
 * leaves the network untouched. Parameters the checkpoint lacks are left
 * as they are and reported as `missing`; checkpoint names the network
 * lacks are reported as `unexpected` (append info such as `epoch_num`
 * excepted). With `strict`, either is an error.
 *
 * A parameter with a `slice` (one rank's shard, see
 * {@linkcode ParameterSlice}) loads from a checkpoint holding that slice
 * (the same shape, e.g. its rank's own file) or holding the whole tensor
 * (its `globalShape`, e.g. a file of `checkpoint/integrated/`): the slice
 * is then read out of the whole tensor, so a run can resume with another
 * number of ranks than the one that saved. Any other shape is a
 * {@linkcode CheckpointMismatchError}.
 *
 * @param network The network (and optimizer state) to restore into: an
 *   iterable of parameters, a `Map` or a record of tensors.
 * @param checkpoint The checkpoint: the map {@linkcode loadCheckpoint}
 *   returns, or an open {@linkcode CheckpointReader} (each tensor is read
 *   straight into the network's bytes: no memory beyond the network's).
 * @param options Options.
 * @returns The names loaded, missing and unexpected.
 * @throws {CheckpointMismatchError} When a dtype or shape differs, or, with
 *   `strict`, names are missing or unexpected.
 * @throws {TypeError} When an argument has the wrong type.
 *
 * @example Restore weights into the loop's own arrays
 * ```ts
 * import { loadCheckpoint, loadParamsInto, saveCheckpoint } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await saveCheckpoint(`${dir}/m.ckpt`, {
 *     w: { dtype: "Float32", shape: [2], data: new Float32Array([0.5, -1]) },
 *   }, { appendInfo: { epoch_num: 3 } });
 *   const w = new Float32Array(2);
 *   const b = new Float32Array(1);
 *   const result = await loadParamsInto(
 *     { w: { dtype: "Float32", shape: [2], data: w }, b: { dtype: "Float32", shape: [1], data: b } },
 *     await loadCheckpoint(`${dir}/m.ckpt`),
 *   );
 *   deepEqual(Array.from(w), [0.5, -1]);
 *   deepEqual(result, { loaded: ["w"], missing: ["b"], unexpected: [] });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function loadParamsInto(
  network: Network,
  checkpoint: ReadonlyMap<string, Tensor | string> | CheckpointReader,
  options: LoadParamsOptions = {},
): Promise<LoadParamsResult> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot load checkpoint into network: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  const strict = options.strict ?? false;
  if (typeof strict !== "boolean") {
    throw new TypeError(
      `Cannot load checkpoint into network: option "strict" must be a boolean, received ${
        describe(strict)
      }`,
    );
  }
  const ignore = new Set<string>(options.ignore ?? APPEND_INFO_NAMES);
  const params = networkParameters(network);

  let described: Described[];
  let read: (name: string) => Promise<Tensor | string>;
  let reader: CheckpointReader | null = null;
  if (checkpoint instanceof Map) {
    described = [];
    for (const [name, value] of checkpoint as Map<string, Tensor | string>) {
      described.push(
        typeof value === "string"
          ? { name, dtype: "str", shape: [] }
          : { name, dtype: value.dtype, shape: value.shape },
      );
    }
    const map = checkpoint as Map<string, Tensor | string>;
    read = (name) => Promise.resolve(map.get(name)!);
  } else if (isReader(checkpoint)) {
    described = [...checkpoint.entries];
    read = (name) => checkpoint.read(name);
    reader = checkpoint;
  } else {
    throw new TypeError(
      `Cannot load checkpoint into network: expected a Map from loadCheckpoint or a CheckpointReader, received ${
        describe(checkpoint)
      }`,
    );
  }

  const byName = new Map(described.map((d) => [d.name, d]));
  const loaded: Parameter[] = [];
  // Sliced parameters the checkpoint holds whole: the slice is read out.
  const fromWhole = new Set<Parameter>();
  const missing: string[] = [];
  for (const p of params) {
    const found = byName.get(p.name);
    if (found === undefined) {
      missing.push(p.name);
      continue;
    }
    if (found.dtype !== p.dtype) {
      throw new CheckpointMismatchError(
        p.name,
        `dtype ${p.dtype} in the network, ${
          found.dtype === "str" ? "a string" : found.dtype
        } in the checkpoint`,
      );
    }
    if (!sameShape(found.shape, p.shape)) {
      if (
        p.slice !== undefined && sameShape(found.shape, p.slice.globalShape)
      ) {
        fromWhole.add(p);
        loaded.push(p);
        continue;
      }
      throw new CheckpointMismatchError(
        p.name,
        `shape ${formatShape(p.shape)}${
          p.slice === undefined
            ? ""
            : ` (a slice of global shape ${formatShape(p.slice.globalShape)})`
        } in the network, ${formatShape(found.shape)} in the checkpoint`,
      );
    }
    loaded.push(p);
  }
  const own = new Set(params.map((p) => p.name));
  const unexpected = described
    .map((d) => d.name)
    .filter((n) => !own.has(n) && !ignore.has(n));
  if (strict && (missing.length > 0 || unexpected.length > 0)) {
    const parts: string[] = [];
    if (missing.length > 0) {
      parts.push(`the checkpoint lacks ${list(missing)}`);
    }
    if (unexpected.length > 0) {
      parts.push(`the network lacks ${list(unexpected)}`);
    }
    throw new CheckpointMismatchError(
      missing.length + unexpected.length === 1
        ? (missing[0] ?? unexpected[0])!
        : null,
      `${parts.join("; ")} (strict)`,
    );
  }
  let scratch = new Uint8Array(0);
  for (const p of loaded) {
    if (fromWhole.has(p)) {
      let whole: Uint8Array;
      if (reader !== null) {
        const n = shapeSize(p.slice!.globalShape) * DTYPE_SIZE[p.dtype];
        if (scratch.byteLength < n) scratch = new Uint8Array(n);
        whole = scratch.subarray(0, n);
        await reader.readInto(p.name, whole);
      } else {
        whole = tensorBytes(await read(p.name) as Tensor);
      }
      const size = DTYPE_SIZE[p.dtype];
      extractSlice(whole, p.shape, p.slice!, size, tensorBytes(p));
      continue;
    }
    if (reader !== null) {
      // Straight into the network's bytes: no allocation, no second copy.
      await reader.readInto(p.name, tensorBytes(p));
      continue;
    }
    // Bytes, not elements: a Float16 parameter may hold its bit patterns
    // in a Uint16Array, which an element copy would convert.
    tensorBytes(p).set(tensorBytes(await read(p.name) as Tensor));
  }
  return { loaded: loaded.map((p) => p.name), missing, unexpected };
}
