// deno task bench:monitor — the two figures issue 4 asks for, with their
// baselines measured in the same run:
//   1. 1,000,000 step ends that do not save: ns per call (bar: <= 2 µs);
//   2. a save through the monitor / a direct saveCheckpoint of the same
//      parameters, medians of interleaved rounds (bar: <= 1.1x).
import { CheckpointMonitor, saveCheckpoint } from "../mod.ts";
import { context, makeNetwork, median } from "./_monitor_fixture.ts";

const CALLS = 1_000_000;
const ROUNDS = Number(Deno.args[0] ?? 15);
const dir = await Deno.makeTempDir({ prefix: "monitor_figures_" });
try {
  // 1. Step ends that do not save.
  const small = makeNetwork(4, 16);
  const monitor = new CheckpointMonitor({
    directory: `${dir}/quiet`,
    rank: 0,
    saveCheckpointSteps: 1_000_000_000,
  });
  const noop = (_: unknown): Promise<boolean> => Promise.resolve(false);
  const time = async (fn: (step: number) => Promise<boolean>) => {
    const start = performance.now();
    for (let step = 1; step <= CALLS; step++) await fn(step);
    return (performance.now() - start) * 1e6 / CALLS; // ns per call
  };
  let offset = 0;
  await time((s) => monitor.onStepEnd(context(small, s))); // warm-up
  offset = CALLS;
  const monitorNs = await time((s) =>
    monitor.onStepEnd(context(small, offset + s))
  );
  const noopNs = await time((s) => noop(context(small, s)));
  await monitor.close();
  console.log(
    `step end without a save: ${monitorNs.toFixed(0)} ns/call over ${
      CALLS.toLocaleString("en")
    } calls ` +
      `(an awaited no-op callback: ${noopNs.toFixed(0)} ns/call; bar 2,000 ns)`,
  );

  // 2. A save through the monitor vs saveCheckpoint of the same parameters.
  const big = makeNetwork(8, 512 * 1024); // 8 × 2 MiB = 16 MiB
  const saving = new CheckpointMonitor({
    directory: `${dir}/saving`,
    rank: 0,
    keepCheckpointMax: 2,
    saveNetworkParams: false,
  });
  const direct: number[] = [];
  const through: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    let t = performance.now();
    await saveCheckpoint(`${dir}/direct-${round % 2}.ckpt`, big);
    const d = performance.now() - t;
    t = performance.now();
    await saving.onStepEnd(context(big, round + 1));
    const m = performance.now() - t;
    if (round > 0) { // round 0 warms up
      direct.push(d);
      through.push(m);
    }
  }
  await saving.close();
  const ratio = median(through) / median(direct);
  console.log(
    `save of 16 MiB (8 tensors), median of ${ROUNDS}: monitor ${
      median(through).toFixed(1)
    } ms, ` +
      `saveCheckpoint ${median(direct).toFixed(1)} ms, ratio ${
        ratio.toFixed(3)
      } (bar 1.1; ` +
      `the monitor adds meta.json and keepCheckpointMax 2)`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
