// deno task bench: the monitor's costs next to their baselines.
//   - a step end that does not save, next to an awaited no-op callback;
//   - a save through the monitor, next to a direct saveCheckpoint of the
//     same parameters (16 MiB in 8 tensors).
import { CheckpointMonitor, saveCheckpoint } from "../mod.ts";
import { context, makeNetwork } from "./_monitor_fixture.ts";

const dir = await Deno.makeTempDir({ prefix: "monitor_bench_" });
const small = makeNetwork(4, 16);
const quiet = new CheckpointMonitor({
  directory: `${dir}/quiet`,
  rank: 0,
  saveCheckpointSteps: 1_000_000_000,
});
let quietStep = 0;
const noop = {
  onStepEnd: (_: unknown): Promise<boolean> => Promise.resolve(false),
};
let noopStep = 0;

Deno.bench("step end, no save: awaited no-op callback (baseline)", {
  group: "step end",
  baseline: true,
}, async () => {
  await noop.onStepEnd(context(small, ++noopStep));
});

Deno.bench("step end, no save: CheckpointMonitor.onStepEnd", {
  group: "step end",
}, async () => {
  await quiet.onStepEnd(context(small, ++quietStep));
});

const big = makeNetwork(8, 512 * 1024); // 8 × 2 MiB
let direct = 0;
Deno.bench("save 16 MiB: saveCheckpoint (baseline)", {
  group: "save",
  baseline: true,
}, async () => {
  await saveCheckpoint(`${dir}/direct-${direct}.ckpt`, big);
  await Deno.remove(`${dir}/direct-${direct++ - 1}.ckpt`).catch(() => {});
});

const saving = new CheckpointMonitor({
  directory: `${dir}/saving`,
  rank: 0,
  keepCheckpointMax: 2,
  saveNetworkParams: false,
});
let savingStep = 0;
Deno.bench(
  "save 16 MiB: CheckpointMonitor.onStepEnd, then flush (meta.json + retention)",
  {
    group: "save",
  },
  async () => {
    await saving.onStepEnd(context(big, ++savingStep));
    await saving.flush();
  },
);

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
