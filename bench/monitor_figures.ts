// deno task bench:monitor — the two figures issue 4 asks for, with their
// baselines measured in the same run:
//   1. 1,000,000 step ends that do not save: ns per call (bar: <= 2 µs);
//   2. a save through the monitor / a direct saveCheckpoint of the same
//      parameters, medians of interleaved rounds (bar: <= 1.1x): the time
//      the step end takes, and the time until meta.json and retention are
//      done too.
import { CheckpointMonitor, saveCheckpoint } from "../mod.ts";
import { context, makeNetwork, median } from "./_monitor_fixture.ts";

const CALLS = 1_000_000;
const ROUNDS = Number(Deno.args[0] ?? 21);
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
  // The monitor's step end resolves once the checkpoint is committed;
  // meta.json and retention finish in the background (here: in a timed
  // flush right after, as they would during the next training steps).
  // The baseline is saveCheckpoint of a new file, then the removal of the
  // previous one (the same retention, keep 1 vs keepCheckpointMax 2 in
  // steady state: one removal per save). The two alternate which goes first.
  for (const mib of [16, 64]) {
    const big = makeNetwork(8, mib * 1024 * 1024 / 32); // 8 Float32 tensors
    const saving = new CheckpointMonitor({
      directory: `${dir}/saving-${mib}`,
      rank: 0,
      keepCheckpointMax: 2,
      saveNetworkParams: false,
    });
    const t = {
      direct: [] as number[],
      directAll: [] as number[],
      step: [] as number[],
      stepAll: [] as number[],
    };
    const direct = async (round: number) => {
      const start = performance.now();
      await saveCheckpoint(`${dir}/direct-${round}.ckpt`, big);
      const saved = performance.now() - start;
      await Deno.remove(`${dir}/direct-${round - 1}.ckpt`).catch(() => {});
      return [saved, performance.now() - start];
    };
    const monitor = async (round: number) => {
      const start = performance.now();
      await saving.onStepEnd(context(big, round + 1));
      const saved = performance.now() - start;
      await saving.flush();
      return [saved, performance.now() - start];
    };
    for (let round = 0; round <= ROUNDS; round++) {
      const [d, m] = round % 2
        ? [await direct(round), await monitor(round)]
        : [await monitor(round), await direct(round)].reverse();
      if (round > 1) { // rounds 0 and 1 warm up (and fill the retention window)
        t.direct.push(d![0]!);
        t.directAll.push(d![1]!);
        t.step.push(m![0]!);
        t.stepAll.push(m![1]!);
      }
    }
    await saving.close();
    const ms = (v: number[]) => `${median(v).toFixed(1)} ms`;
    const ratio = (a: number[], b: number[]) =>
      `${(median(a) / median(b)).toFixed(3)}x (fastest: ${
        (Math.min(...a) / Math.min(...b)).toFixed(3)
      }x)`;
    console.log(
      `save of ${mib} MiB (8 tensors), medians of ${t.direct.length}: ` +
        `step end ${ms(t.step)} vs saveCheckpoint ${ms(t.direct)} = ${
          ratio(t.step, t.direct)
        }, bar 1.1; ` +
        `with meta.json and retention ${
          ms(t.stepAll)
        } vs saveCheckpoint + removal ${ms(t.directAll)} = ` +
        ratio(t.stepAll, t.directAll),
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
