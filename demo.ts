/**
 * `deno task demo`: trains a small MLP (plain TypeScript, Adam, seeded
 * synthetic data) with a CheckpointMonitor, stops it with a simulated crash,
 * resumes from the newest checkpoint named in meta.json, and shows that the
 * resumed run's losses are exactly those of an uninterrupted run.
 *
 * @module
 */

import {
  CheckpointMonitor,
  type CheckpointMonitorOptions,
  loadCheckpoint,
  type Parameter,
  type Tensor,
  train,
} from "./mod.ts";

const DIRECTORY = "./output/demo";
const IN = 4, HIDDEN = 16, SAMPLES = 256, BATCH = 32;
const STEPS_PER_EPOCH = SAMPLES / BATCH;
const EPOCHS = 40; // 320 steps
const CRASH_AT = 210;
const LR = 0.01, BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8;

// ---------------------------------------------------------------- data ---

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const data = (() => {
  const r = rng(42);
  const x = new Float32Array(SAMPLES * IN);
  const y = new Float32Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    for (let j = 0; j < IN; j++) x[i * IN + j] = r() * 2 - 1;
    const v = x.subarray(i * IN, i * IN + IN);
    y[i] = Math.sin(2 * v[0]!) + 0.5 * v[1]! * v[2]! - 0.3 * v[3]!;
  }
  return { x, y };
})();

/** The sample order of an epoch: a seeded shuffle, so a resumed run sees the same batches. */
function order(epoch: number): Uint32Array {
  const r = rng(1000 + epoch);
  const idx = Uint32Array.from({ length: SAMPLES }, (_, i) => i);
  for (let i = SAMPLES - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx;
}

// --------------------------------------------------------------- model ---

interface Model {
  readonly params: Parameter<"Float32">[];
  readonly optimizer: Parameter[];
  readonly globalStep: Int32Array;
}

function param(
  name: string,
  shape: number[],
  init: () => number,
): Parameter<"Float32"> {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    dtype: "Float32",
    shape,
    data: Float32Array.from({ length: n }, init),
    requiresGrad: true,
  };
}

function makeModel(): Model {
  const r = rng(7);
  const he = (fanIn: number) => () => (r() * 2 - 1) * Math.sqrt(3 / fanIn);
  const params = [
    param("dense1.weight", [HIDDEN, IN], he(IN)),
    param("dense1.bias", [HIDDEN], () => 0),
    param("dense2.weight", [1, HIDDEN], he(HIDDEN)),
    param("dense2.bias", [1], () => 0),
  ];
  const globalStep = new Int32Array(1);
  const moments = (tag: string) =>
    params.map((p): Parameter => ({
      name: `${tag}.${p.name}`,
      dtype: "Float32",
      shape: p.shape,
      data: new Float32Array(p.data.length),
      requiresGrad: false,
    }));
  const optimizer: Parameter[] = [
    ...moments("moment1"),
    ...moments("moment2"),
    {
      name: "global_step",
      dtype: "Int32",
      shape: [1],
      data: globalStep,
      requiresGrad: false,
    },
  ];
  return { params, optimizer, globalStep };
}

/** One Adam step on a batch; returns the batch's mean squared error. */
function step(model: Model, epoch: number, stepInEpoch: number): number {
  const [w1, b1, w2, b2] = model.params.map((p) => p.data) as Float32Array[];
  const grads = model.params.map((p) => new Float64Array(p.data.length));
  const [gw1, gb1, gw2, gb2] = grads as Float64Array[];
  const idx = order(epoch).subarray(
    (stepInEpoch - 1) * BATCH,
    stepInEpoch * BATCH,
  );
  const h = new Float64Array(HIDDEN);
  let loss = 0;
  for (const i of idx) {
    const x = data.x.subarray(i * IN, i * IN + IN);
    let out = b2![0]!;
    for (let k = 0; k < HIDDEN; k++) {
      let s = b1![k]!;
      for (let j = 0; j < IN; j++) s += w1![k * IN + j]! * x[j]!;
      h[k] = Math.tanh(s);
      out += w2![k]! * h[k]!;
    }
    const err = out - data.y[i]!;
    loss += err * err / BATCH;
    const dOut = 2 * err / BATCH;
    gb2![0] = gb2![0]! + dOut;
    for (let k = 0; k < HIDDEN; k++) {
      gw2![k] = gw2![k]! + dOut * h[k]!;
      const dh = dOut * w2![k]! * (1 - h[k]! * h[k]!);
      gb1![k] = gb1![k]! + dh;
      for (let j = 0; j < IN; j++) {
        gw1![k * IN + j] = gw1![k * IN + j]! + dh * x[j]!;
      }
    }
  }
  const t = ++model.globalStep[0]!;
  const n = model.params.length;
  model.params.forEach((p, pi) => {
    const m = model.optimizer[pi]!.data as Float32Array;
    const v = model.optimizer[n + pi]!.data as Float32Array;
    const g = grads[pi]!;
    for (let e = 0; e < p.data.length; e++) {
      m[e] = BETA1 * m[e]! + (1 - BETA1) * g[e]!;
      v[e] = BETA2 * v[e]! + (1 - BETA2) * g[e]! * g[e]!;
      const mh = m[e]! / (1 - BETA1 ** t), vh = v[e]! / (1 - BETA2 ** t);
      p.data[e] = p.data[e]! - LR * mh / (Math.sqrt(vh) + EPS);
    }
  });
  return loss;
}

// ---------------------------------------------------------- training ---

// A fixed demo key, not a secret: use a key from your secret store.
const ENC_KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);

function monitorOptions(): CheckpointMonitorOptions {
  return {
    directory: DIRECTORY,
    prefix: "mlp",
    saveCheckpointSteps: 25,
    keepCheckpointMax: 3,
    exceptionSave: true,
    encKey: ENC_KEY,
    encMode: "AES-GCM",
  };
}

function report(monitor: CheckpointMonitor): void {
  const short = (f: string) => f.slice(f.indexOf("checkpoint"));
  monitor.addEventListener("saved", (e) => {
    const d = e.detail;
    console.log(
      `  saved   ${short(d.file)} (${d.kind}, ${d.bytes} B, ${
        d.durationMs.toFixed(1)
      } ms)`,
    );
  });
  monitor.addEventListener("removed", (e) => {
    console.log(`  removed ${short(e.detail.file)} (${e.detail.reason})`);
  });
}

/** The losses of an uninterrupted run, as the reference. */
function referenceLosses(): number[] {
  const m = makeModel();
  const losses: number[] = [];
  for (let s = 1; s <= EPOCHS * STEPS_PER_EPOCH; s++) {
    const epoch = Math.ceil(s / STEPS_PER_EPOCH);
    losses.push(step(m, epoch, s - (epoch - 1) * STEPS_PER_EPOCH));
  }
  return losses;
}

async function firstRun(): Promise<void> {
  console.log(
    `run 1: ${EPOCHS} epochs × ${STEPS_PER_EPOCH} steps, a crash at step ${CRASH_AT}`,
  );
  const model = makeModel();
  await using monitor = new CheckpointMonitor(monitorOptions());
  report(monitor);
  try {
    await train({
      epochs: EPOCHS,
      stepsPerEpoch: STEPS_PER_EPOCH,
      network: model.params,
      optimizer: model.optimizer,
      callbacks: [monitor],
      step: ({ step: s, epoch, stepInEpoch }) => {
        if (s === CRASH_AT) throw new Error(`simulated crash at step ${s}`);
        const loss = step(model, epoch, stepInEpoch);
        if (s % 50 === 0) console.log(`  step ${s}: loss ${loss.toFixed(6)}`);
        return { loss };
      },
    });
  } catch (e) {
    console.log(`  caught: ${(e as Error).message}`);
  }
}

async function resume(reference: number[]): Promise<void> {
  const metaFile = `${DIRECTORY}/checkpoint/rank_0/meta.json`;
  const meta = JSON.parse(await Deno.readTextFile(metaFile));
  const file = `${DIRECTORY}/checkpoint/rank_0/${meta.last_ckpt_file}`;
  console.log(
    `run 2: resume from ${meta.last_ckpt_file} (meta.json: epoch ${meta.last_epoch}, step ${meta.last_step}, global step ${meta.global_step})`,
  );
  const loaded = await loadCheckpoint(file, {
    decKey: ENC_KEY,
    decMode: meta.enc_mode,
  });
  const model = makeModel();
  for (const p of [...model.params, ...model.optimizer]) {
    const t = loaded.get(p.name) as Tensor | undefined;
    if (t === undefined || typeof t === "string") {
      throw new Error(`${p.name} is missing`);
    }
    p.data.set(t.data as never);
  }
  const stepNum = Number((loaded.get("step_num") as Tensor).data[0]);
  console.log(
    `  restored ${model.params.length} weights, ${model.optimizer.length} optimizer tensors, step_num ${stepNum}`,
  );
  await using monitor = new CheckpointMonitor(monitorOptions());
  console.log(
    `  the new run writes as ${
      (await monitor.prepare()).prefix
    } (collision suffix: run 1's files stay)`,
  );
  report(monitor);
  let worst = 0;
  const summary = await train({
    epochs: EPOCHS,
    stepsPerEpoch: STEPS_PER_EPOCH,
    initialStep: stepNum,
    network: model.params,
    optimizer: model.optimizer,
    callbacks: [monitor],
    step: ({ step: s, epoch, stepInEpoch }) => {
      const loss = step(model, epoch, stepInEpoch);
      worst = Math.max(worst, Math.abs(loss - reference[s - 1]!));
      if (s % 50 === 0 || s === stepNum + 1) {
        console.log(
          `  step ${s}: loss ${loss.toFixed(6)} (uninterrupted run: ${
            reference[s - 1]!.toFixed(6)
          })`,
        );
      }
      return { loss };
    },
  });
  console.log(
    `  done at step ${summary.globalStep}; largest difference from the uninterrupted run: ${worst}`,
  );
}

if (import.meta.main) {
  const start = performance.now();
  await Deno.remove(DIRECTORY, { recursive: true }).catch(() => {});
  console.log(
    `checkpoints: AES-256-GCM encrypted, every 25 steps, keep 3, in ${DIRECTORY}`,
  );
  const reference = referenceLosses();
  await firstRun();
  await resume(reference);
  console.log(
    `finished in ${((performance.now() - start) / 1000).toFixed(2)} s`,
  );
}
