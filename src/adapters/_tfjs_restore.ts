// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: restoring a checkpoint into a tfjs model and optimizer
// (`restoreTfjs`, re-exported by tfjs.ts), in four steps: match the model's
// weights, match the optimizer's entries, report what does not fit, write.

import type { Tensor } from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { APPEND_INFO_NAMES } from "../tensor/append_info.ts";
import { formatShape, sameShape } from "../tensor/_shape.ts";
import {
  _modelWeights,
  _weightName,
  FROM_DTYPE,
  OPTIMIZER_PREFIX,
  type TfjsModel,
  type TfjsOptimizer,
  type TfjsTensor,
  type TfjsTensorFactory,
  type TfjsWeight,
} from "./_tfjs_types.ts";

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
  const optimizer = options.optimizer;
  const problems: string[] = [];
  const used = new Set<string>();

  const weightPlan = _matchWeights(weights, checkpoint, strict, problems, used);
  const slots = _matchOptimizer(
    checkpoint,
    optimizer,
    prefix,
    weightPlan.byName,
    strict,
    problems,
    used,
  );
  const unexpected = _report(
    checkpoint,
    used,
    new Set(options.ignore ?? APPEND_INFO_NAMES),
    strict,
    problems,
    weightPlan.missing,
  );
  await _write(tf, weightPlan.plan, optimizer, slots);
  return {
    restored: weightPlan.plan.map((p) => _weightName(p.weight)),
    missing: weightPlan.missing,
    unexpected,
    optimizerWeights: optimizer === undefined ? 0 : slots.length,
  };
}

/** A model weight and the value it gets. */
interface _WeightPlan {
  readonly weight: TfjsWeight;
  readonly value: Tensor;
}

/** An optimizer entry: its position, tfjs name and value. */
interface _Slot {
  readonly index: number;
  readonly name: string;
  readonly value: Tensor;
}

/**
 * Step 1: each model weight's value in the checkpoint, by name; a missing
 * one (strict) or one of another dtype or shape is a problem.
 */
function _matchWeights(
  weights: readonly TfjsWeight[],
  checkpoint: ReadonlyMap<string, Tensor | string>,
  strict: boolean,
  problems: string[],
  used: Set<string>,
): {
  plan: _WeightPlan[];
  missing: string[];
  byName: Map<string, TfjsWeight>;
} {
  const plan: _WeightPlan[] = [];
  const missing: string[] = [];
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
  return { plan, missing, byName };
}

/**
 * Step 2: the optimizer entries (`<prefix><position>/<tfjs name>`), each
 * checked against the weight it is a slot of, numbered 0, 1, 2, …
 */
function _matchOptimizer(
  checkpoint: ReadonlyMap<string, Tensor | string>,
  optimizer: TfjsOptimizer | undefined,
  prefix: string,
  byName: ReadonlyMap<string, TfjsWeight>,
  strict: boolean,
  problems: string[],
  used: Set<string>,
): _Slot[] {
  const slots: _Slot[] = [];
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
  return slots;
}

/**
 * A tfjs auto-generated layer name (`dense_Dense3`): tfjs numbers layers
 * per process, so a model built again in another process gets other names.
 */
const AUTO_NAME = /(^|\/)[a-z][a-z0-9_]*_[A-Z][A-Za-z0-9]*?[0-9]+(\/|$)/;

/**
 * Step 3: the checkpoint entries no weight used (a problem when strict),
 * then every problem in one error, before anything is written. When the
 * names that do not match are auto-generated, the error says to name the
 * layers.
 *
 * @returns The unused entries.
 */
function _report(
  checkpoint: ReadonlyMap<string, Tensor | string>,
  used: ReadonlySet<string>,
  ignore: ReadonlySet<string>,
  strict: boolean,
  problems: string[],
  missing: readonly string[],
): string[] {
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
  if (problems.length === 0) return unexpected;
  const shown = problems.slice(0, 10);
  const more = problems.length > 10 ? `; and ${problems.length - 10} more` : "";
  const auto = [...missing, ...unexpected].find((n) => AUTO_NAME.test(n));
  const hint = auto === undefined
    ? ""
    : `. ${
      JSON.stringify(auto)
    } is a name tfjs made up (layers without a "name" are numbered per process, so a model built again gets other names): give every layer a name, e.g. tf.layers.dense({ name: "hidden", units: 8 }), save again, and restore into a model built with the same names`;
  throw new RangeError(
    `Cannot restore tfjs model: ${shown.join("; ")}${more}${hint}`,
  );
}

/** Step 4: writes the weights, then the optimizer's state. */
async function _write(
  tf: TfjsTensorFactory,
  plan: readonly _WeightPlan[],
  optimizer: TfjsOptimizer | undefined,
  slots: readonly _Slot[],
): Promise<void> {
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
  if (shape !== undefined && !sameShape(value.shape, shape)) {
    return `${q} has shape ${
      formatShape(value.shape)
    } in the checkpoint, the model has ${formatShape(shape)}`;
  }
  return null;
}

function _toTfjs(tf: TfjsTensorFactory, value: Tensor): TfjsTensor {
  const dtype = FROM_DTYPE[value.dtype]!;
  // tfjs may keep the array it is given: hand it a copy.
  const data = (value.data as Float32Array | Int32Array | Uint8Array).slice();
  return tf.tensor(data, [...value.shape], dtype);
}
