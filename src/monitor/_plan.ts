// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: what a save writes, decided from a step context without
// touching the disk (the plan), and the copy of its tensors taken before the
// step end returns (the snapshot), so that the loop may change its tensors
// at once whether or not it awaits the step end.

import type { CheckpointLayout } from "../checkpoint/layout.ts";
import { stepInEpoch } from "../checkpoint/layout.ts";
import { type SnapshotArena, viewTensor } from "../background/snapshot.ts";
import { sliceLayouts } from "../tensor/_slices.ts";
import {
  type AppendValue,
  networkParameters,
  type Parameter,
  type ParameterSlice,
  type Tensor,
} from "../tensor/types.ts";
import type { StepContext } from "./callback.ts";
import type { CheckpointKind } from "./events.ts";
import type { CheckpointConfig } from "./options.ts";
import { checkInteger } from "../core/_validate.ts";

/** One file of a save, with everything needed to write it. */
export interface FilePlan {
  readonly kind: CheckpointKind;
  readonly path: string;
  readonly network: readonly Parameter[];
  readonly appendInfo?: ReadonlyMap<string, AppendValue>;
  /** Where its sliced parameters lie, for `meta.json` (main files). */
  readonly slices?: Readonly<Record<string, ParameterSlice>>;
}

/** One save: what a step end decided to write. */
export interface SavePlan {
  readonly step: number;
  readonly epoch: number;
  readonly stepInEpoch: number;
  readonly stepNum: number;
  readonly files: readonly FilePlan[];
}

/** What a plan is made from besides the step context. */
export interface PlanInput {
  readonly config: CheckpointConfig;
  /** The resume offset added to the step (`step_num` of `appendInfo`). */
  readonly stepOffset: number;
  /** The append info of the previous save (values carried forward). */
  readonly append: ReadonlyMap<string, AppendValue>;
}

/**
 * Builds the plan of a main or breakpoint save. Pure: it reads the context
 * and returns the plan with the append info to carry to the next save
 * (`loss_scale` keeps the last value a step gave). Paths are empty until
 * {@linkcode placePlan} (the collision suffix may not be known yet).
 */
export function planSave(
  ctx: StepContext,
  kind: "main" | "breakpoint",
  input: PlanInput,
): { plan: SavePlan; append: Map<string, AppendValue> } {
  const { config } = input;
  const epoch = positive(ctx.epoch, "epoch");
  const perEpoch = positive(ctx.stepsPerEpoch, "stepsPerEpoch");
  const inEpoch = stepInEpoch(ctx.step, perEpoch);
  const stepNum = input.stepOffset + ctx.step;
  const append = new Map(input.append);
  if (append.has("epoch_num")) append.set("epoch_num", epoch);
  if (append.has("step_num")) append.set("step_num", stepNum);
  if (append.has("loss_scale")) {
    const scale = ctx.lossScale ?? ctx.outputs?.[2];
    if (typeof scale === "number") append.set("loss_scale", float32(scale));
    else if (isTensor(scale)) append.set("loss_scale", scale);
  }
  const source = kind === "main"
    ? config.savedNetwork ?? ctx.network
    : ctx.network;
  const withOptimizer = kind === "breakpoint" ||
    config.savedNetwork === undefined;
  const optimizer = withOptimizer && ctx.optimizer !== undefined
    ? networkParameters(ctx.optimizer)
    : [];
  append.set(
    "global_step",
    optimizer.find((p) => p.name === "global_step") ?? globalStep(stepNum),
  );
  if (config.globalBatchSize !== undefined) {
    append.set("global_batch_size", config.globalBatchSize);
  }
  const network = networkParameters(source);
  // The format layer replaces a parameter whose name is an append key in
  // place (the original's rule), and rejects two parameters of one name.
  const all = network.concat(optimizer);
  // An append key replaces the parameter of its name: that one is no slice.
  const slices = sliceLayouts(all, append);
  const files: FilePlan[] = [{
    kind,
    path: "",
    network: all,
    appendInfo: new Map(append),
    ...(slices !== undefined && { slices }),
  }];
  if (kind === "main") {
    const own = source === ctx.network
      ? network
      : networkParameters(ctx.network);
    if (config.saveNetworkParams) {
      files.push({ kind: "network", path: "", network: own });
    }
    if (config.saveTrainableParams) {
      files.push({
        kind: "trainable",
        path: "",
        network: own.filter((p) => p.requiresGrad !== false),
      });
    }
  }
  const plan = { step: ctx.step, epoch, stepInEpoch: inEpoch, stepNum, files };
  return { plan, append };
}

/**
 * Gives a plan's files their paths in `layout`; a breakpoint keeps the path
 * its caller chose (it is named against the folder's content).
 */
export function placePlan(plan: SavePlan, layout: CheckpointLayout): SavePlan {
  const files = plan.files.map((file): FilePlan => {
    const path = file.kind === "main"
      ? layout.mainFile(plan.epoch, plan.stepInEpoch)
      : file.kind === "network"
      ? layout.networkFile
      : file.kind === "trainable"
      ? layout.trainableFile
      : file.path;
    return { ...file, path };
  });
  return { ...plan, files };
}

/** A plan whose tensors are the monitor's own copies, and how to free them. */
export interface PlanSnapshot {
  readonly plan: SavePlan;
  /** Gives the copies' memory back (to the arena); call once, when written. */
  release(): void;
}

/**
 * Copies every tensor of a plan, synchronously: into `arena` when it is
 * given and free (memory reused from save to save), else into fresh
 * memory. A tensor that appears twice is copied once.
 */
export function snapshotPlan(
  plan: SavePlan,
  arena: SnapshotArena | null,
): PlanSnapshot {
  const tensors: Tensor[] = [];
  for (const file of plan.files) {
    tensors.push(...file.network);
    for (const value of file.appendInfo?.values() ?? []) {
      if (isTensor(value)) tensors.push(value);
    }
  }
  const copies = new Map<unknown, Tensor>();
  let release = () => {};
  if (arena !== null && !arena.lent) {
    const snapshot = arena.snapshot(tensors);
    tensors.forEach((t, i) => {
      copies.set(t.data, viewTensor(snapshot.buffers, snapshot.refs[i]!));
    });
    let held = true;
    release = () => {
      if (held) arena.restore(snapshot.buffers);
      held = false;
    };
  } else {
    for (const t of tensors) {
      if (copies.has(t.data)) continue;
      const data = t.data.slice() as Tensor["data"];
      copies.set(t.data, { dtype: t.dtype, shape: [...t.shape], data });
    }
  }
  const copy = <T extends Tensor>(t: T): T => {
    const c = copies.get(t.data)!;
    return { ...t, shape: c.shape, data: c.data };
  };
  const files = plan.files.map((file): FilePlan => {
    const appendInfo = file.appendInfo === undefined ? undefined : new Map(
      [...file.appendInfo].map(([k, v]) => [k, isTensor(v) ? copy(v) : v]),
    );
    return {
      ...file,
      network: file.network.map(copy),
      ...(appendInfo && { appendInfo }),
    };
  });
  return { plan: { ...plan, files }, release };
}

function positive(value: unknown, field: string): number {
  return checkInteger(
    value,
    `step context "${field}"`,
    1,
    "Cannot save checkpoint",
  );
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === "object" && value !== null && "dtype" in value &&
    "data" in value;
}

function float32(n: number): Tensor<"Float32"> {
  return { dtype: "Float32", shape: [], data: Float32Array.of(n) };
}

/** The original's `global_step`: the optimizer's Int32 tensor of shape [1]. */
function globalStep(step: number): Tensor {
  return step <= 0x7fffffff
    ? { dtype: "Int32", shape: [1], data: Int32Array.of(step) }
    : { dtype: "Int64", shape: [1], data: BigInt64Array.of(BigInt(step)) };
}
