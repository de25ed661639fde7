// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * One rank of a tensor-parallel job for the sliced-save test: it holds
 * rows [r·6/N, (r+1)·6/N) of a 6×4 weight (`dense.weight`, with its slice)
 * and the whole bias (`dense.bias`, replicated), and saves at every step
 * through a CheckpointMonitor into the shared folder. At step S every
 * value is a known function of S (`weightAt`, `biasAt`), so the parent can
 * build the whole matrices independently.
 *
 * Usage: deno run --allow-read=DIR --allow-write=DIR tests/_slice_child.ts
 *   DIR RANK RANKS LAST INTEGRATED FILE STEP HANG ASYNC
 *
 * - LAST: the last step to run (one epoch of LAST steps).
 * - INTEGRATED: "1" or "0" (`integratedSave`).
 * - FILE STEP: resume from FILE (this rank's own file, or an integrated
 *   file the slice is read out of) at STEP, as the parent chose for every
 *   rank (MindFormers' rank 0 chooses for all); "-" for a fresh start. The
 *   loaded values are checked against STEP.
 * - HANG: a step at which to hang before saving, for a SIGKILL (0: none).
 * - ASYNC: "1" for `asyncSave`.
 *
 * Prints `{"pid":…}` once ready, and at the end
 * `{"resumedAt":…,"integrated":[…],"errors":[…]}`.
 */

import {
  CheckpointMonitor,
  loadCheckpoint,
  loadParamsInto,
  type Parameter,
  train,
} from "../mod.ts";

export const ROWS = 6;
export const COLS = 4;

/** Element (i, j) of the whole weight at step `step`. */
export function weightAt(step: number, i: number, j: number): number {
  return step * 1000 + i * COLS + j;
}

/** Element j of the bias at step `step`. */
export function biasAt(step: number, j: number): number {
  return step + j / 4;
}

if (import.meta.main) {
  const [dir, rankArg, ranksArg, lastArg, intArg, file, stepArg, hang, asy] =
    Deno.args;
  const rank = Number(rankArg), ranks = Number(ranksArg);
  const rows = ROWS / ranks, first = rank * rows;
  const w: Parameter<"Float32"> = {
    name: "dense.weight",
    dtype: "Float32",
    shape: [rows, COLS],
    data: new Float32Array(rows * COLS),
    slice: { globalShape: [ROWS, COLS], offset: [first, 0] },
  };
  const b: Parameter<"Float32"> = {
    name: "dense.bias",
    dtype: "Float32",
    shape: [COLS],
    data: new Float32Array(COLS),
  };
  const globalStep: Parameter<"Int32"> = {
    name: "global_step",
    dtype: "Int32",
    shape: [1],
    data: new Int32Array(1),
  };
  const fill = (step: number) => {
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < COLS; j++) {
        w.data[i * COLS + j] = weightAt(step, first + i, j);
      }
    }
    for (let j = 0; j < COLS; j++) b.data[j] = biasAt(step, j);
    globalStep.data[0] = step;
  };

  let initialStep = 0;
  if (file !== "-") {
    await loadParamsInto([w, b, globalStep], await loadCheckpoint(file!), {
      strict: true,
    });
    initialStep = Number(stepArg);
    const loaded = [...w.data, ...b.data, ...globalStep.data];
    fill(initialStep);
    const expected = [...w.data, ...b.data, ...globalStep.data];
    if (loaded.join() !== expected.join()) {
      throw new Error(
        `rank ${rank} resumed from ${file} at ${initialStep}: loaded ${loaded}, expected ${expected}`,
      );
    }
  }

  const integrated: string[] = [];
  const errors: string[] = [];
  const monitor = new CheckpointMonitor({
    directory: dir!,
    rank,
    rankSize: ranks,
    saveCheckpointSteps: 1,
    keepCheckpointMax: 0,
    saveNetworkParams: false,
    integratedSave: intArg === "1",
    asyncSave: asy === "1",
    onSaved: (d) => void (d.kind === "integrated" && integrated.push(d.file)),
    onError: (d) => void errors.push(`${d.file}: ${d.error}`),
  });
  console.log(JSON.stringify({ pid: Deno.pid }));
  await train({
    epochs: 1,
    stepsPerEpoch: Number(lastArg),
    initialStep,
    network: [w, b],
    optimizer: [globalStep],
    callbacks: [monitor],
    step: async ({ step }) => {
      if (step === Number(hang)) {
        await new Promise(() => setInterval(() => {}, 1000));
      }
      fill(step);
    },
  });
  await monitor.close();
  console.log(JSON.stringify({ resumedAt: initialStep, integrated, errors }));
}
