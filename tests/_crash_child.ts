// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The child of the crash-kill harness: a training job that, like a real
 * one, cleans up after a crash, resumes from the newest checkpoint that
 * verifies, then saves at every step until it is killed.
 *
 * Usage: deno run --allow-read=DIR --allow-write=DIR tests/_crash_child.ts DIR ELEMENTS [RANK [FILE STEP]] [--async]
 *
 * With FILE and STEP (a multi-rank job, where one process chose the
 * checkpoint for every rank, as MindFormers' rank 0 does), it resumes from
 * FILE at STEP instead of looking for itself. With RANKS, a step starts
 * only once every rank finished the one before (a barrier through files in
 * DIR/barrier), so the ranks move in lockstep as data-parallel ranks do.
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

// `--async` anywhere: the monitor saves in the background (asyncSave).
const asyncSave = Deno.args.includes("--async");
const [directory, elementsArg, rankArg, fileArg, stepArg, ranksArg] = Deno.args
  .filter((a) => a !== "--async");
if (directory === undefined) {
  throw new Error("usage: _crash_child.ts DIR ELEMENTS");
}
const elements = Number(elementsArg ?? 65536);
const rank = Number(rankArg ?? 0);

const cleaned = [
  ...await removeTempFiles(`${directory}/checkpoint/rank_${rank}`),
  ...await removeTempFiles(`${directory}/checkpoint_network/rank_${rank}`),
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
let file: string | undefined = fileArg;
if (file === undefined) {
  const found = await findResumeCheckpoint(directory);
  file = found?.files[rank];
  initialStep = found?.context.initialStep ?? 0;
} else {
  initialStep = Number(stepArg);
}
if (file !== undefined && file !== "-") {
  await loadParamsInto([w, globalStep], await loadCheckpoint(file), {
    strict: true,
  });
}

const monitor = new CheckpointMonitor({
  directory,
  rank,
  saveCheckpointSteps: 1,
  keepCheckpointMax: 2,
  asyncSave,
});
const ranks = Number(ranksArg ?? 1);

/** Waits until every rank has finished step `done`. */
async function barrier(done: number): Promise<void> {
  if (ranks === 1) return;
  await Deno.mkdir(`${directory}/barrier`, { recursive: true });
  await Deno.writeTextFile(`${directory}/barrier/${rank}.tmp`, String(done));
  await Deno.rename(
    `${directory}/barrier/${rank}.tmp`,
    `${directory}/barrier/${rank}`,
  );
  for (let r = 0; r < ranks; r++) {
    while (true) {
      const text = await Deno.readTextFile(`${directory}/barrier/${r}`)
        .catch(() => "0");
      if (Number(text) >= done) break;
      await new Promise((ok) => setTimeout(ok, 2));
    }
  }
}
console.log(
  JSON.stringify({ pid: Deno.pid, cleaned, resumedAt: initialStep }),
);
await train({
  epochs: 1_000_000,
  stepsPerEpoch: 7,
  initialStep,
  network: [w],
  optimizer: [globalStep],
  step: async ({ step }) => {
    await barrier(step - 1);
    w.data.fill(step);
    globalStep.data[0] = step;
  },
  callbacks: [monitor],
});
