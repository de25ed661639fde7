// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** Helpers of the resume tests (tests/resume_*_test.ts). */
import { basename } from "node:path";
import {
  CheckpointMonitor,
  type CheckpointMonitorOptions,
  type Parameter,
  train,
} from "../mod.ts";

export function model(): Parameter<"Float32">[] {
  return [
    { name: "w", dtype: "Float32", shape: [2, 3], data: new Float32Array(6) },
    { name: "b", dtype: "Float32", shape: [3], data: new Float32Array(3) },
  ];
}

/** Trains `steps` steps saving every `every` steps, keeping `keep`. */
export async function run(
  directory: string,
  steps: number,
  extra: CheckpointMonitorOptions = {},
): Promise<CheckpointMonitor> {
  const params = model();
  const monitor = new CheckpointMonitor({
    directory,
    saveCheckpointSteps: 2,
    keepCheckpointMax: 10,
    saveNetworkParams: false,
    ...extra,
  });
  await train({
    epochs: Math.ceil(steps / 5),
    stepsPerEpoch: 5,
    network: params,
    step: ({ step }) => {
      if (step > steps) throw new Error("stop");
      for (const p of params) p.data.fill(step);
    },
    callbacks: [monitor],
  }).catch((e) => {
    if ((e as Error).message !== "stop") throw e;
  });
  await monitor.close();
  return monitor;
}

export const names = (files: readonly string[]) =>
  files.map((f) => basename(f));

export async function flip(path: string, at = -1): Promise<void> {
  await Deno.chmod(path, 0o600);
  const b = await Deno.readFile(path);
  const i = at < 0 ? b.length + at : at;
  b[i] = b[i]! ^ 0xff;
  await Deno.writeFile(path, b);
}
