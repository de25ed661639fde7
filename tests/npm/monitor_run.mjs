// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Run by tests/npm_package_test.ts under Node.js: the monitor end to end
// from the installed package, with its defaults for Node.js (NodeStore for
// plain paths, the save Worker on node:worker_threads, process signals).
// Usage: node monitor_run.mjs DIR [CRASH_AT|-] [SIGTERM_AT]
//
// Resumes from DIR when it holds a checkpoint, then trains 3 epochs of 10
// steps with an async, exception-saving, signal-saving monitor. Prints one
// JSON line per event ("resumed", "step", "saved", "crashed", "done"). At
// step CRASH_AT the step throws; at step SIGTERM_AT it waits for the
// parent's SIGTERM (so the signal lands inside that step, whatever the
// load), after which the monitor saves at that step's end and exits 143.
import {
  CheckpointMonitor,
  NodeStore,
  resume,
  storeFor,
  train,
} from "@ckpt/monitor";
import process from "node:process";

const [directory, crashArg, sigtermArg] = process.argv.slice(2);
const crashAt = crashArg === undefined || crashArg === "-"
  ? undefined
  : Number(crashArg);
const sigtermAt = sigtermArg === undefined ? undefined : Number(sigtermArg);
// Listening before training starts: the monitor listens too (it is added
// after this one), so both see the one signal.
const sigterm = sigtermAt === undefined
  ? null
  : new Promise((resolve) => process.once("SIGTERM", resolve));
const say = (event) => console.log(JSON.stringify(event));

// 1 MiB of weights: big enough that the background save is real work.
const weights = {
  name: "dense.weight",
  dtype: "Float32",
  shape: [512, 512],
  data: new Float32Array(512 * 512),
};
const bias = {
  name: "dense.bias",
  dtype: "Float32",
  shape: [512],
  data: new Float32Array(512),
};
const network = [weights, bias];

const resumed = await resume(directory, { network, stepsPerEpoch: 10 });
say({
  event: "resumed",
  store: storeFor(directory) instanceof NodeStore ? "NodeStore" : "other",
  step: resumed?.context.initialStep ?? null,
  file: resumed?.files[0] ?? null,
  // Restored bytes, checked against what the step function writes.
  w: weights.data[123],
  b: bias.data[7],
});

const monitor = new CheckpointMonitor({
  directory,
  saveCheckpointSteps: 5,
  keepCheckpointMax: 3,
  asyncSave: true,
  exceptionSave: true,
  signals: ["SIGTERM"],
  saveNetworkParams: false,
  onSaved: ({ file, kind, step }) => say({ event: "saved", kind, step, file }),
  onError: ({ error }) => say({ event: "error", message: String(error) }),
});
try {
  await train({
    epochs: 3,
    stepsPerEpoch: 10,
    initialStep: resumed?.context.initialStep ?? 0,
    network,
    callbacks: [monitor],
    step: async ({ step }) => {
      if (step === crashAt) throw new Error(`the data loader died at ${step}`);
      weights.data.fill(step);
      bias.data.fill(-step);
      say({ event: "step", step });
      if (step === sigtermAt) {
        // A signal listener does not keep Node.js running; a timer does.
        const alive = setInterval(() => {}, 1000);
        await sigterm;
        clearInterval(alive);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    },
  });
} catch (error) {
  say({ event: "crashed", message: error.message });
  await monitor.close();
  process.exit(1);
}
await monitor.close();
say({ event: "done", w: weights.data[0], b: bias.data[0] });
