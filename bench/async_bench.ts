// Copyright 2026 the @ckpt/monitor authors. MIT license.
// deno task bench (or: deno bench ... bench/async_bench.ts): the time a step
// end that saves 1 GiB of Float32 blocks the loop, with asyncSave, next to
// its baselines in the same run: a set() of the same bytes into an
// already-touched buffer (the physical floor) and the synchronous save.
// Each async round waits for its background write outside the timed part.
import { CheckpointMonitor } from "../mod.ts";
import {
  bigModel,
  copyInto,
  MiB,
  stepContext,
  touchedBuffer,
} from "./_async_fixture.ts";

const SIZE_MIB = 1024;
const dir = await Deno.makeTempDir({ prefix: "async_bench_" });
const network = bigModel(SIZE_MIB);
const dst = touchedBuffer(SIZE_MIB * MiB);
const options = {
  rank: 0,
  saveCheckpointSteps: 1,
  keepCheckpointMax: 1,
  saveNetworkParams: false,
  appendInfo: [],
} as const;
const asyncMonitor = new CheckpointMonitor({
  ...options,
  directory: `${dir}/async`,
  asyncSave: true,
});
const syncMonitor = new CheckpointMonitor({
  ...options,
  directory: `${dir}/sync`,
});
await asyncMonitor.onTrainBegin(stepContext(network, 0));
await asyncMonitor.flush(); // the arena is reserved (touched) in the Worker
let asyncStep = 0;
let syncStep = 0;

Deno.bench("1 GiB: set() into a touched buffer (baseline)", {
  group: "blocking time of a 1 GiB save",
  baseline: true,
  n: 5,
  warmup: 1,
}, () => {
  copyInto(network, dst);
});

Deno.bench("1 GiB: step end with asyncSave (snapshot only)", {
  group: "blocking time of a 1 GiB save",
  n: 5,
  warmup: 1,
}, async (b) => {
  b.start();
  await asyncMonitor.onStepEnd(stepContext(network, ++asyncStep));
  b.end();
  await asyncMonitor.flush();
});

Deno.bench("1 GiB: step end with a synchronous save", {
  group: "blocking time of a 1 GiB save",
  n: 3,
  warmup: 1,
}, async () => {
  await syncMonitor.onStepEnd(stepContext(network, ++syncStep));
});

globalThis.addEventListener("unload", () => {
  // deno bench has no teardown hook: end the Worker and remove the files.
  void asyncMonitor.close();
  void syncMonitor.close();
  Deno.removeSync(dir, { recursive: true });
});
