// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The child of the S3 crash-kill harness (tests/_s3_crash_harness.ts): a
 * training job saving to `s3://…` at every step until it is killed, run
 * with `--allow-net` for the endpoint and `--allow-env` for the `AWS_*`
 * variables only.
 *
 * Usage: deno run … tests/_s3_crash_child.ts DIR ELEMENTS LEASE_MS [RANK RANKS BARRIER]
 *
 * Like a restarted job it first waits for the rank folder's lock (the
 * claim object a killed writer leaves runs out after LEASE_MS), then
 * resumes with `resume()` from the bucket and checks that every restored
 * value equals the step resumed at (every value of step S is S), then
 * trains. The monitor's own start aborts the incomplete multipart uploads
 * a kill left. Prints `{"pid","resumedAt","resumeOk"}` once resumed, and
 * `{"saved":S}` after each checkpoint commits.
 *
 * With RANK, RANKS and BARRIER (a local folder), the ranks save slices of
 * one tensor ("m", rows [RANK·R, (RANK+1)·R) of a RANKS·R × 4 matrix whose
 * value at step S is S·1000 + row) and move in lockstep through files in
 * BARRIER; `integratedSave` merges the slices in the bucket.
 */

import { CheckpointMonitor, type Parameter, resume, train } from "../mod.ts";
import { s3OptionsFromEnv, S3Store } from "../src/store/s3/mod.ts";

/** Rows of the sliced tensor per rank (multi-rank runs). */
export const ROWS_PER_RANK = 2;
/** Columns of the sliced tensor. */
export const COLS = 4;

if (import.meta.main) await main();

async function main(): Promise<void> {
  const [directory, elementsArg, leaseArg, rankArg, ranksArg, barrierDir] =
    Deno.args;
  if (directory === undefined) {
    throw new Error("usage: _s3_crash_child.ts DIR ELEMENTS LEASE_MS");
  }
  const elements = Number(elementsArg ?? 1_572_864);
  const rank = Number(rankArg ?? 0);
  const ranks = Number(ranksArg ?? 1);
  const env = s3OptionsFromEnv();
  if (env.credentials === undefined) throw new Error("no AWS_* credentials");
  const store = new S3Store({
    ...env,
    credentials: env.credentials,
    partSize: 5 * 1024 * 1024,
    lockLeaseMs: Number(leaseArg ?? 1500),
    lockClockSkewMs: 0,
    lockPollMs: 100,
  });

  const network: Parameter[] = ranks === 1
    ? [{
      name: "w",
      dtype: "Float32",
      shape: [elements],
      data: new Float32Array(elements),
    }]
    : [{
      name: "m",
      dtype: "Float32",
      shape: [ROWS_PER_RANK, COLS],
      data: new Float32Array(ROWS_PER_RANK * COLS),
      slice: {
        globalShape: [ROWS_PER_RANK * ranks, COLS],
        offset: [rank * ROWS_PER_RANK, 0],
      },
    }, {
      name: "w",
      dtype: "Float32",
      shape: [elements],
      data: new Float32Array(elements),
    }];
  const globalStep: Parameter<"Int32"> = {
    name: "global_step",
    dtype: "Int32",
    shape: [1],
    data: new Int32Array(1),
  };

  /** Element `i` of this rank's parameter `p` at step `step`. */
  function valueAt(p: number, i: number, step: number): number {
    if (ranks === 1 || p === 1) return step;
    return step * 1000 + rank * ROWS_PER_RANK + Math.floor(i / COLS);
  }

  function fill(step: number): void {
    for (const [p, param] of network.entries()) {
      const data = param.data as Float32Array;
      if (ranks === 1 || p === 1) data.fill(step);
      else for (let i = 0; i < data.length; i++) data[i] = valueAt(p, i, step);
    }
    globalStep.data[0] = step;
  }

  function holds(step: number): boolean {
    if (globalStep.data[0] !== step) return false;
    for (const [p, param] of network.entries()) {
      const data = param.data as Float32Array;
      for (let i = 0; i < data.length; i++) {
        if (data[i] !== valueAt(p, i, step)) return false;
      }
    }
    return true;
  }

  // A restarted job waits until the killed writer's claim has run out.
  const rankDir = `${directory}/checkpoint/rank_${rank}`;
  const lockName = `${directory}/checkpoint/.rank_${rank}.lock`;
  const waited = await store.lock(lockName, { owner: "restart wait" });
  await waited?.release();

  const resumed = await resume(directory, {
    network: [...network, globalStep],
    stepsPerEpoch: 7,
    rank,
    store,
  });
  const initialStep = resumed?.context.initialStep ?? 0;
  console.log(JSON.stringify({
    pid: Deno.pid,
    resumedAt: initialStep,
    resumeOk: resumed === null || holds(initialStep),
    file: resumed?.files[rank] ?? null,
    rankDir,
  }));

  /** Waits until every rank has finished step `done`. */
  async function barrier(done: number): Promise<void> {
    if (ranks === 1 || barrierDir === undefined) return;
    const mine = `${barrierDir}/${rank}`;
    await Deno.writeTextFile(`${mine}.tmp`, String(done));
    await Deno.rename(`${mine}.tmp`, mine);
    for (let r = 0; r < ranks; r++) {
      while (true) {
        const text = await Deno.readTextFile(`${barrierDir}/${r}`)
          .catch(() => "0");
        if (Number(text) >= done) break;
        await new Promise((ok) => setTimeout(ok, 5));
      }
    }
  }

  // Every rank resumes before any starts its monitor (whose first act
  // makes its rank folder, which a rank still searching would count).
  if (ranks > 1 && barrierDir !== undefined) {
    await Deno.writeTextFile(`${barrierDir}/resumed_${rank}`, "");
    for (let r = 0; r < ranks; r++) {
      while (
        !(await Deno.stat(`${barrierDir}/resumed_${r}`).then(
          () => true,
          () => false,
        ))
      ) await new Promise((ok) => setTimeout(ok, 5));
    }
  }

  const monitor = new CheckpointMonitor({
    directory,
    store,
    rank,
    rankSize: ranks,
    saveCheckpointSteps: 1,
    keepCheckpointMax: 2,
    onSaved: (d) => {
      if (d.kind === "main") console.log(JSON.stringify({ saved: d.step }));
    },
  });
  await train({
    epochs: 1_000_000,
    stepsPerEpoch: 7,
    initialStep,
    network,
    optimizer: [globalStep],
    step: async ({ step }) => {
      await barrier(step - 1);
      fill(step);
    },
    callbacks: [monitor],
  });
}
