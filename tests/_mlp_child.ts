// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A training job for the exact-resume test: trains the MLP of `_mlp.ts`
 * with a CheckpointMonitor (a save every SAVE_EVERY steps), prints its pid,
 * and at step STOP prints "at STOP" and hangs in the middle of the step,
 * waiting for the parent's SIGKILL.
 *
 * Usage: deno run --allow-read=DIR --allow-write=DIR tests/_mlp_child.ts DIR EPOCHS SAVE_EVERY STOP
 */

import { CheckpointMonitor, train } from "../mod.ts";
import { makeMlp, mlpStep, STEPS_PER_EPOCH } from "./_mlp.ts";

const [directory, epochs, every, stop] = Deno.args;
const model = makeMlp();
const monitor = new CheckpointMonitor({
  directory: directory!,
  rank: 0,
  saveCheckpointSteps: Number(every),
  keepCheckpointMax: 2,
  saveNetworkParams: false,
});
console.log(JSON.stringify({ pid: Deno.pid }));
await train({
  epochs: Number(epochs),
  stepsPerEpoch: STEPS_PER_EPOCH,
  network: model.params,
  optimizer: model.optimizer,
  callbacks: [monitor],
  step: async ({ step, epoch, stepInEpoch }) => {
    if (step === Number(stop)) {
      mlpStep(model, epoch, stepInEpoch); // half-way: the weights moved
      console.log(`at ${step}`);
      await new Promise(() => setInterval(() => {}, 1000));
    }
    return { loss: mlpStep(model, epoch, stepInEpoch) };
  },
});
