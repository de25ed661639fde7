// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Under Node.js, a loop that never yields between steps (it only awaits
// onStepEnd) saves a 128 MiB model in the background at every step: each
// save reclaims the arena the one before handed back once its bytes were
// written. Prints one JSON line: peak RSS above the loop's own, the model's
// size, and what the newest checkpoint holds.
import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadCheckpoint,
} from "@ckpt/monitor";

const MiB = 1 << 20;
const directory = process.argv[2];
const network = Array.from({ length: 16 }, (_, i) => {
  const data = new Float32Array(2 * MiB).fill(i);
  return { name: `t${i}`, dtype: "Float32", shape: [data.length], data };
});
const ctx = (step) => ({ step, epoch: 1, stepsPerEpoch: 1000, network });
const spin = (ms) => {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* a step that never yields */ }
};
const rss = () => process.memoryUsage().rss;
const base = rss();
const monitor = new CheckpointMonitor({
  directory,
  asyncSave: true,
  saveCheckpointSteps: 1,
  keepCheckpointMax: 2,
  saveNetworkParams: false,
});
await monitor.onTrainBegin(ctx(0));
let peak = rss();
const STEPS = 8;
for (let step = 1; step <= STEPS; step++) {
  spin(20);
  for (const p of network) p.data[0] = step;
  await monitor.onStepEnd(ctx(step));
  peak = Math.max(peak, rss());
}
await monitor.onTrainEnd(ctx(STEPS));
const found = await findResumeCheckpoint(directory, { stepsPerEpoch: 1000 });
const loaded = await loadCheckpoint(found.files[0]);
const t3 = loaded.get("t3").data;
console.log(JSON.stringify({
  peakMiB: Math.round((peak - base) / MiB),
  modelMiB: 128,
  step: found.context.initialStep,
  t3: [t3[0], t3[1]],
}));
