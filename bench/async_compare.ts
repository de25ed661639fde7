// Copyright 2026 the @ckpt/monitor authors. MIT license.
// deno task bench:async [MiB=1024] — the figures issue 5 asks for, each
// against its baseline measured in the same run:
//   1. a training loop doing steady CPU work with a save every few seconds:
//      time per step while a save is in flight / with no save (bar 1.25x),
//      and peak RSS above the loop's own footprint (bar: model + 128 MiB);
//   2. the time an async save blocks the step / a set() of the same bytes
//      into an already-touched buffer (bar 1.5x), and / the synchronous
//      save of the same parameters (bar 0.1x). Interleaved rounds, medians;
//   3. issue 12's protocol: 16 tensors of 32 MiB Float32, a save at every
//      step, without `onTrainBegin`, with it, and with it followed by
//      `flush()` (which waits for the arena), the step ends 1.5 s apart
//      two ways: on a fixed schedule (a slow step end makes the next come
//      sooner) and 1.5 s of work after each step end returns (as a loop
//      whose step computes for 1.5 s): the time every step end that saves
//      blocks, the first included, / a `Float32Array.set` of the same
//      tensors into touched arrays of the same shapes measured just before
//      it (bar 1.5x each), and the first one / the same set() into arrays
//      never touched (what a save pays when its memory is not prepared).
import { CheckpointMonitor } from "../mod.ts";
import {
  bigModel,
  copyInto,
  median,
  MiB,
  quantile,
  stepContext,
  touchedBuffer,
} from "./_async_fixture.ts";

const SIZE_MIB = Number(Deno.args[0] ?? 1024);
const ROUNDS = Number(Deno.args[1] ?? 5);
const STEP_MS = 20; // CPU work per step
const SAVE_EVERY = 150; // steps: a save every ~3 s
const SAVES = 5;

const rss = () => Deno.memoryUsage().rss;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

// Steady CPU work: arithmetic over a small scratch array that stays in
// cache, calibrated to STEP_MS, plus a 1 MiB update of the model (an
// optimizer touching its weights).
const scratch = new Float64Array(4096);
function kernel(iters: number): void {
  for (let r = 0; r < iters; r++) {
    for (let i = 0; i < scratch.length; i++) {
      scratch[i] = scratch[i]! * 0.999 + Math.sqrt(i + r);
    }
  }
}
// Calibrate once the kernel is optimised: median of several timings.
for (let i = 0; i < 20; i++) kernel(200);
const probe: number[] = [];
for (let i = 0; i < 15; i++) {
  const t = performance.now();
  kernel(200);
  probe.push(performance.now() - t);
}
const iters = Math.max(1, Math.round(200 * STEP_MS / median(probe)));

const dir = await Deno.makeTempDir({ prefix: "async_bench_" });
try {
  const network = bigModel(SIZE_MIB);
  const bytes = SIZE_MIB * MiB;
  let cursor = 0;
  const step = () => {
    kernel(iters);
    const p = network[cursor++ % network.length]!;
    p.data.subarray(0, MiB / 4).fill(cursor);
  };

  // ------------------------------------------------------------ 1. loop
  for (let i = 0; i < 50; i++) step();
  const footprint = rss();
  const quiet: number[] = [];
  for (let i = 0; i < SAVE_EVERY; i++) {
    const t = performance.now();
    step();
    quiet.push(performance.now() - t);
  }

  const monitor = new CheckpointMonitor({
    directory: `${dir}/loop`,
    rank: 0,
    asyncSave: true,
    saveCheckpointSteps: SAVE_EVERY,
    keepCheckpointMax: 2,
    saveNetworkParams: false,
    appendInfo: [],
  });
  let inFlight = false;
  monitor.addEventListener("saved", () => void (inFlight = false));
  await monitor.onTrainBegin(stepContext(network, 0)); // arena reserved in the Worker
  const during: number[] = [];
  const between: number[] = [];
  const blocking: number[] = [];
  const waits: number[] = [];
  monitor.addEventListener(
    "saved",
    (e) => void waits.push(e.detail.waitedMs ?? 0),
  );
  let peak = rss();
  const total = SAVE_EVERY * SAVES + SAVE_EVERY / 2;
  for (let s = 1; s <= total; s++) {
    const busy = inFlight;
    const t = performance.now();
    step();
    // Steps before the first save ran while the Worker touched the arena.
    if (blocking.length > 0) {
      (busy ? during : between).push(performance.now() - t);
    }
    const b = performance.now();
    if (await monitor.onStepEnd(stepContext(network, s))) {
      blocking.push(performance.now() - b);
      inFlight = true;
    }
    if (s % 10 === 0) peak = Math.max(peak, rss());
  }
  await monitor.onTrainEnd(stepContext(network, total));
  peak = Math.max(peak, rss());
  await monitor.close();
  // No save again, so the baseline brackets the saving phase in time.
  for (let i = 0; i < SAVE_EVERY; i++) {
    const t = performance.now();
    step();
    quiet.push(performance.now() - t);
  }

  const qMed = median(quiet);
  const dMed = median(during);
  console.log(
    `loop: ${SIZE_MIB} MiB Float32 model, ~${STEP_MS} ms of CPU work per step, ` +
      `an async save every ${SAVE_EVERY} steps (${blocking.length} saves)`,
  );
  console.log(
    `  step time, no save:         median ${fmt(qMed)}, p90 ${
      fmt(quantile(quiet, 0.9))
    } (${quiet.length} steps, before and after the saving phase)`,
  );
  console.log(
    `  step time, save in flight:  median ${fmt(dMed)}, p90 ${
      fmt(quantile(during, 0.9))
    } (${during.length} steps)  ratio ${(dMed / qMed).toFixed(2)}x (bar 1.25x)`,
  );
  console.log(
    between.length === 0
      ? "  step time, between saves:   none (every save waited for the previous one)"
      : `  step time, between saves:   median ${
        fmt(median(between))
      } (${between.length} steps; in flight / between: ${
        (dMed / median(between)).toFixed(2)
      }x)`,
  );
  console.log(
    `  step end that saves (blocking): ${blocking.map(fmt).join(", ")}`,
  );
  console.log(
    `    of which waiting for the previous save (back-pressure): ${
      waits.map(fmt).join(", ")
    }`,
  );
  const over = (peak - footprint) / MiB;
  console.log(
    `  peak RSS ${(peak / MiB).toFixed(0)} MiB, loop footprint ${
      (footprint / MiB).toFixed(0)
    } MiB: +${over.toFixed(0)} MiB (bar: model ${SIZE_MIB} + 128 = ${
      SIZE_MIB + 128
    } MiB)`,
  );

  // ---------------------------------------------------- 2. blocking time
  const dst = touchedBuffer(bytes);
  const asyncMonitor = savingEveryStep(`${dir}/async`, true);
  const syncMonitor = savingEveryStep(`${dir}/sync`, false);
  await asyncMonitor.onTrainBegin(stepContext(network, 0));
  await asyncMonitor.flush(); // the arena is reserved
  const copyMs: number[] = [];
  const asyncMs: number[] = [];
  const syncMs: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    let t = performance.now();
    copyInto(network, dst);
    copyMs.push(performance.now() - t);
    t = performance.now();
    await asyncMonitor.onStepEnd(stepContext(network, r));
    asyncMs.push(performance.now() - t);
    await asyncMonitor.flush();
    t = performance.now();
    await syncMonitor.onStepEnd(stepContext(network, r));
    syncMs.push(performance.now() - t);
  }
  await asyncMonitor.close();
  await syncMonitor.close();
  const c = median(copyMs);
  const a = median(asyncMs);
  const s = median(syncMs);
  console.log(
    `blocking time of a ${SIZE_MIB} MiB save (medians of ${ROUNDS} interleaved rounds):`,
  );
  console.log(
    `  set() into a touched buffer: ${fmt(c)} (${
      (bytes / c / 1e3).toFixed(0)
    } MB/s)`,
  );
  console.log(
    `  async save, step end:        ${fmt(a)}  ${
      (a / c).toFixed(2)
    }x the copy (bar 1.5x)`,
  );
  console.log(
    `  sync save, step end:         ${fmt(s)}  async/sync ${
      (a / s).toFixed(3)
    }x (bar 0.1x)`,
  );

  // ------------------------------------------------ 3. issue 12 protocol
  for (const gap of [false, true]) {
    for (const begin of ["no", "yes", "flush"] as const) {
      await issue12(`${dir}/every`, begin, gap);
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

/** A monitor that saves the main file only, at every step. */
function savingEveryStep(
  directory: string,
  asyncSave: boolean,
): CheckpointMonitor {
  return new CheckpointMonitor({
    directory,
    rank: 0,
    asyncSave,
    saveCheckpointSteps: 1,
    keepCheckpointMax: 1,
    saveNetworkParams: false,
    appendInfo: [],
  });
}

/**
 * Issue 12's protocol: a save at every step end, 1.5 s apart, the blocking
 * time of each against a set() of the same tensors into touched arrays.
 */
async function issue12(
  directory: string,
  begin: "no" | "yes" | "flush",
  gap: boolean,
): Promise<void> {
  const TENSORS = 16, SAVES = 6, GAP_MS = 1500;
  const n = 32 * MiB / 4;
  const network = Array.from({ length: TENSORS }, (_, i) => {
    const data = new Float32Array(n);
    for (let j = 0; j < n; j += 1024) data[j] = i + j;
    return { name: `t${i}`, dtype: "Float32" as const, shape: [n], data };
  });
  // The floor of a save whose memory is not prepared: the same set() into
  // arrays never touched before (their pages are faulted in by the copy).
  const t0 = performance.now();
  for (const p of network) new Float32Array(n).set(p.data);
  const freshMs = performance.now() - t0;
  const copies = network.map(() => new Float32Array(n).fill(1));
  const monitor = savingEveryStep(directory, true);
  const waits: number[] = [];
  monitor.addEventListener(
    "saved",
    (e) => void waits.push(e.detail.waitedMs ?? 0),
  );
  if (begin !== "no") await monitor.onTrainBegin(stepContext(network, 0));
  // The documented way to have the arena ready before the first save.
  if (begin === "flush") await monitor.flush();
  const copyMs: number[] = [];
  const blockMs: number[] = [];
  let next = performance.now() + GAP_MS;
  for (let s = 1; s <= SAVES; s++) {
    const pause = gap ? GAP_MS : Math.max(0, next - performance.now());
    await new Promise((r) => setTimeout(r, pause));
    next += GAP_MS;
    network[s % TENSORS]!.data[0] = s; // the loop changed its weights
    let t = performance.now();
    for (const [i, p] of network.entries()) copies[i]!.set(p.data);
    copyMs.push(performance.now() - t);
    t = performance.now();
    await monitor.onStepEnd(stepContext(network, s));
    blockMs.push(performance.now() - t);
  }
  await monitor.close();
  await Deno.remove(directory, { recursive: true });
  const ratios = blockMs.map((b, i) => b / copyMs[i]!);
  const own = blockMs.map((b, i) => (b - (waits[i] ?? 0)) / copyMs[i]!);
  console.log(
    `every step saves (${TENSORS} x 32 MiB Float32, ${
      gap
        ? `${GAP_MS} ms of work after each step end returns`
        : `step ends on a fixed ${GAP_MS} ms schedule`
    }, ${
      {
        no: "onTrainBegin NOT called",
        yes: "onTrainBegin called",
        flush: "onTrainBegin, then flush() before the first step",
      }[begin]
    }):`,
  );
  console.log(`  set() into touched arrays: ${copyMs.map(fmt).join(", ")}`);
  console.log(
    `  set() into fresh arrays (before the run): ${fmt(freshMs)}; ` +
      `first step end that saves / that: ${
        (blockMs[0]! / freshMs).toFixed(2)
      }x`,
  );
  console.log(`  step end that saves:       ${blockMs.map(fmt).join(", ")}`);
  console.log(
    `    of which waiting for the previous save: ${waits.map(fmt).join(", ")}`,
  );
  console.log(
    `  ratio per save: ${ratios.map((r) => `${r.toFixed(2)}x`).join(", ")}` +
      `  worst ${Math.max(...ratios).toFixed(2)}x (bar 1.5x, first included)`,
  );
  console.log(
    `  without the wait:  ${own.map((r) => `${r.toFixed(2)}x`).join(", ")}` +
      `  worst ${Math.max(...own).toFixed(2)}x`,
  );
}
