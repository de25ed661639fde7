// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The child of the crash-kill harness: a training job that, like a real
 * one, cleans up after a crash, resumes from the newest checkpoint that
 * verifies, then saves at every step until it is killed.
 *
 * Usage: deno run --allow-read=DIR --allow-write=DIR tests/_crash_child.ts DIR ELEMENTS
 *
 * Every value of step S is S (the weights are filled with S, the optimizer's
 * global_step is S), so the parent can check that a checkpoint holds the
 * step it claims. Prints one JSON line once the monitor is ready.
 */

import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadCheckpoint,
  loadParamsInto,
  type Parameter,
  removeTempFiles,
  train,
} from "../mod.ts";

const [directory, elementsArg] = Deno.args;
if (directory === undefined) {
  throw new Error("usage: _crash_child.ts DIR ELEMENTS");
}
const elements = Number(elementsArg ?? 65536);

const cleaned = [
  ...await removeTempFiles(`${directory}/checkpoint/rank_0`),
  ...await removeTempFiles(`${directory}/checkpoint_network/rank_0`),
];

const w: Parameter<"Float32"> = {
  name: "w",
  dtype: "Float32",
  shape: [elements],
  data: new Float32Array(elements),
};
const globalStep: Parameter<"Int32"> = {
  name: "global_step",
  dtype: "Int32",
  shape: [1],
  data: new Int32Array(1),
};

let initialStep = 0;
const found = await findResumeCheckpoint(directory);
if (found !== null) {
  await loadParamsInto([w, globalStep], await loadCheckpoint(found.files[0]!), {
    strict: true,
  });
  initialStep = found.context.initialStep;
}

const monitor = new CheckpointMonitor({
  directory,
  rank: 0,
  saveCheckpointSteps: 1,
  keepCheckpointMax: 2,
});
console.log(
  JSON.stringify({ pid: Deno.pid, cleaned, resumedAt: initialStep }),
);
await train({
  epochs: 1_000_000,
  stepsPerEpoch: 7,
  initialStep,
  network: [w],
  optimizer: [globalStep],
  step: ({ step }) => {
    w.data.fill(step);
    globalStep.data[0] = step;
  },
  callbacks: [monitor],
});
