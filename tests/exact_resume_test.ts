// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadCheckpoint,
  loadParamsInto,
  type Parameter,
  tensorBytes,
  train,
} from "../mod.ts";
import { makeMlp, mlpStep, STEPS_PER_EPOCH } from "./_mlp.ts";
import { spawnChild, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_mlp_child.ts", import.meta.url));
const EPOCHS = 8; // 48 steps
const SAVE_EVERY = 5;

function state(ps: Parameter[]): Record<string, number[]> {
  return Object.fromEntries(
    ps.map((p) => [p.name, Array.from(tensorBytes(p))]),
  );
}

/** Starts the child, waits until it hangs at `stop`, then SIGKILLs it. */
async function killAt(directory: string, stop: number): Promise<void> {
  const child = spawnChild(CHILD, directory, [
    directory,
    String(EPOCHS),
    String(SAVE_EVERY),
    String(stop),
  ]);
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(`at ${stop}\n`)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`child ended early: ${await stderr}`);
    text += value;
  }
  const pid = JSON.parse(text.split("\n")[0]!).pid as number;
  const out = await new Deno.Command("kill", { args: ["-KILL", String(pid)] })
    .output();
  ok(out.success);
  const status = await child.status;
  equal(status.success, false);
  while (!(await lines.read()).done) { /* drain */ }
  await stderr;
}

for (const stop of [23, 31]) {
  Deno.test({
    name:
      `a run killed with SIGKILL in step ${stop} and resumed ends bit-identical to an uninterrupted run (parameters and Adam state)`,
    sanitizeResources: false,
    fn: async () => {
      // The uninterrupted run.
      const reference = makeMlp();
      for (let e = 1; e <= EPOCHS; e++) {
        for (let s = 1; s <= STEPS_PER_EPOCH; s++) mlpStep(reference, e, s);
      }

      await withTempDir(async (directory) => {
        await killAt(directory, stop);
        const found = await findResumeCheckpoint(directory, {
          stepsPerEpoch: STEPS_PER_EPOCH,
        });
        ok(found);
        const saved = Math.floor((stop - 1) / SAVE_EVERY) * SAVE_EVERY;
        // meta.json follows the commit of the file in the background, so a
        // kill soon after a save may still resume from the one before.
        ok(
          [saved, saved - SAVE_EVERY].includes(found.context.initialStep),
          `resumed at ${found.context.initialStep}, saved ${saved}`,
        );
        equal(
          found.context.initialEpoch,
          Math.floor(found.context.initialStep / STEPS_PER_EPOCH),
        );

        const model = makeMlp();
        const result = await loadParamsInto(
          [...model.params, ...model.optimizer],
          await loadCheckpoint(found.files[0]!),
          { strict: true },
        );
        deepEqual(result.missing, []);
        await using monitor = new CheckpointMonitor({
          directory,
          saveCheckpointSteps: SAVE_EVERY,
          saveNetworkParams: false,
        });
        const summary = await train({
          epochs: EPOCHS,
          stepsPerEpoch: STEPS_PER_EPOCH,
          initialStep: found.context.initialStep,
          network: model.params,
          optimizer: model.optimizer,
          callbacks: [monitor],
          step: ({ epoch, stepInEpoch }) => ({
            loss: mlpStep(model, epoch, stepInEpoch),
          }),
        });
        equal(summary.globalStep, EPOCHS * STEPS_PER_EPOCH);
        deepEqual(state(model.params), state(reference.params));
        deepEqual(state(model.optimizer), state(reference.optimizer));
      });
    },
  });
}
