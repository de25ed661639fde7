import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  deepEqual as assertEquals,
  equal as assertStrictEquals,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
import {
  fitWithCheckpoints,
  restoreTfjs,
  tfjsCallback,
  tfjsNetwork,
  tfjsOptimizerState,
} from "../src/adapters/tfjs.ts";
import { join } from "node:path";
import {
  CheckpointMonitor,
  loadCheckpoint,
  networkParameters,
  type Parameter,
  saveCheckpoint,
  shapeSize,
  type StepContext,
  type Tensor,
  type TrainCallback,
} from "../mod.ts";
import { listDir, withTempDir } from "./_helpers.ts";

await tf.setBackend("cpu");

/**
 * A small deterministic model: seeded initializers, fixed layer names.
 * Momentum by default: tfjs restores it bit for bit (Adam recomputes its bias
 * correction on restore, see the Adam test).
 */
function build(optimizer: "momentum" | "adam" = "momentum"): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        name: "hidden",
        units: 5,
        inputShape: [3],
        activation: "tanh",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }),
      }),
      tf.layers.batchNormalization({ name: "norm" }),
      tf.layers.dense({
        name: "out",
        units: 2,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }),
      }),
    ],
  });
  model.compile({
    optimizer: optimizer === "adam"
      ? tf.train.adam(0.05)
      : tf.train.momentum(0.05, 0.9),
    loss: "meanSquaredError",
  });
  return model;
}

/** 16 fixed samples. */
function data(): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const xs: number[][] = [];
  const ys: number[][] = [];
  for (let i = 0; i < 16; i++) {
    const a = Math.sin(i), b = Math.cos(i * 0.7), c = (i % 5) / 5;
    xs.push([a, b, c]);
    ys.push([a * b + c, a - 2 * c]);
  }
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}

type Checkpoint = Map<string, Tensor | string>;

/** The network and optimizer parameters of a context, copied. */
function parameters(ctx: StepContext): Parameter[] {
  return [
    ...networkParameters(ctx.network),
    ...(ctx.optimizer ? networkParameters(ctx.optimizer) : []),
  ];
}

/**
 * A TrainCallback saving every `every` steps and at train end. With `dir`,
 * each save is a real file (`saveCheckpoint`) read back with
 * `loadCheckpoint`; without, an in-memory copy.
 */
function makeSaver(
  every: number,
  file?: { dir: string; format: "ckpt" | "safetensors" },
) {
  const saved = new Map<number, Checkpoint>();
  const seen: string[] = [];
  const save = async (ctx: StepContext) => {
    if (file === undefined) {
      const m: Checkpoint = new Map(parameters(ctx).map((p) => [p.name, p]));
      m.set("epoch_num", {
        dtype: "Int64",
        shape: [],
        data: new BigInt64Array([BigInt(ctx.epoch)]),
      });
      saved.set(ctx.step, m);
      return;
    }
    const path = join(file.dir, `step_${ctx.step}.${file.format}`);
    await saveCheckpoint(path, parameters(ctx), {
      format: file.format,
      appendInfo: { epoch_num: ctx.epoch, step_num: ctx.step },
    });
    saved.set(ctx.step, await loadCheckpoint(path));
  };
  const callback: TrainCallback = {
    onTrainBegin(ctx) {
      seen.push(`begin@${ctx.step}`);
    },
    async onStepEnd(ctx) {
      seen.push(`${ctx.epoch}:${ctx.step}/${ctx.stepsPerEpoch}`);
      if (ctx.step % every !== 0) return false;
      await save(ctx);
      return true;
    },
    onEpochEnd(ctx) {
      seen.push(`epoch${ctx.epoch}`);
    },
    async onTrainEnd(ctx) {
      seen.push(`end@${ctx.step}`);
      if (!saved.has(ctx.step)) await save(ctx);
    },
  };
  return { saved, seen, callback };
}

function values(model: tf.LayersModel): number[][] {
  return model.getWeights().map((t) => Array.from(t.dataSync()));
}

Deno.test("tfjsNetwork names weights by their tfjs names and marks non-trainable ones", () => {
  const model = build();
  const params = networkParameters(tfjsNetwork(model));
  assertEquals(
    params.map((p) => [p.name, p.dtype, p.shape, p.requiresGrad]),
    [
      ["hidden/kernel", "Float32", [3, 5], true],
      ["hidden/bias", "Float32", [5], true],
      ["norm/gamma", "Float32", [5], true],
      ["norm/beta", "Float32", [5], true],
      ["out/kernel", "Float32", [5, 2], true],
      ["out/bias", "Float32", [2], true],
      ["norm/moving_mean", "Float32", [5], false],
      ["norm/moving_variance", "Float32", [5], false],
    ],
  );
  assertEquals(nums(params[0]!), values(model)[0]);
  // A copy, not tfjs's own buffer.
  assert(params[0]!.data !== model.weights[0]!.read().dataSync());
});

Deno.test("tfjsNetwork maps int32 and bool weights and rejects other dtypes", () => {
  const weight = (name: string, t: tf.Tensor) => ({
    name,
    shape: t.shape,
    dtype: t.dtype,
    trainable: false,
    read: () => t,
    write: () => {},
  });
  const ints = tf.tensor1d([1, -2], "int32");
  const flags = tf.tensor1d([1, 0, 1], "bool");
  const params = networkParameters(tfjsNetwork({
    weights: [weight("count", ints), weight("mask", flags)],
  }));
  assertEquals(params.map((p) => [p.name, p.dtype, nums(p)]), [
    ["count", "Int32", [1, -2]],
    ["mask", "Bool", [1, 0, 1]],
  ]);
  const complex = tf.complex([1], [2]);
  assertThrows(
    () => tfjsNetwork({ weights: [weight("z", complex)] }),
    (e: unknown) =>
      e instanceof TypeError && /"z"/.test(e.message) &&
      /complex64/.test(e.message),
  );
  assertThrows(() => tfjsNetwork(42 as never), TypeError);
});

Deno.test("tfjsNetwork and restoreTfjs reject a model with duplicate weight names", async () => {
  // A layer named "d" around a sub-model that also has a layer "d".
  const inner = tf.sequential({
    name: "inner",
    layers: [tf.layers.dense({ name: "d", units: 2, inputShape: [2] })],
  });
  const input = tf.input({ shape: [2] });
  const output = tf.layers.dense({ name: "d", units: 2 }).apply(
    inner.apply(input),
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  const dup = (e: unknown) =>
    e instanceof RangeError && e.message.includes('"d/kernel"');
  assertThrows(() => tfjsNetwork(model), dup);
  await assertRejects(restoreTfjs(model, new Map(), { tf }), dup);
});

Deno.test("tfjsOptimizerState numbers the entries and frees the step counter tensor", async () => {
  const model = build("adam");
  const { x, y } = data();
  await model.fit(x, y, {
    epochs: 1,
    batchSize: 8,
    shuffle: false,
    verbose: 0,
  });
  const before = tf.memory().numTensors;
  const state = networkParameters(await tfjsOptimizerState(model.optimizer));
  assertStrictEquals(tf.memory().numTensors, before);
  assertEquals(state[0]!.name, "optimizer/000/iter");
  assertEquals(state[0]!.dtype, "Int32");
  assertEquals(nums(state[0]!), [2]);
  // Slots are named after tfjs's process-unique variable names.
  assert(/^optimizer\/001\/hidden\/kernel(_\d+)?\/m$/.test(state[1]!.name));
  assertEquals(state.length, 1 + 2 * 6); // iter + m and v of 6 trainable weights
  assert(state.every((p) => p.requiresGrad === false));
});

Deno.test("fit with the callback counts global steps across epochs and saves every N", async () => {
  const model = build();
  const { x, y } = data();
  const saver = makeSaver(3);
  await fitWithCheckpoints(
    model,
    x,
    y,
    { epochs: 2, batchSize: 4, shuffle: false, verbose: 0 },
    saver.callback,
    { optimizer: model.optimizer },
  );
  assertEquals(saver.seen, [
    "begin@0",
    "1:1/4",
    "1:2/4",
    "1:3/4",
    "1:4/4",
    "epoch1",
    "2:5/4",
    "2:6/4",
    "2:7/4",
    "2:8/4",
    "epoch2",
    "end@8",
  ]);
  assertEquals([...saver.saved.keys()], [3, 6, 8]);
  const last = saver.saved.get(8)!;
  const iter = last.get("optimizer/000/iter") as Tensor;
  assertEquals(nums(iter), [8]);
});

Deno.test("a model rebuilt from a .ckpt file predicts the same and trains on identically", async () => {
  await withTempDir(async (dir) => {
    const { x, y } = data();
    const original = build();
    const saver = makeSaver(4, { dir, format: "ckpt" }); // saves at the end of each epoch
    const fitArgs = { epochs: 2, batchSize: 4, shuffle: false, verbose: 0 };
    await fitWithCheckpoints(original, x, y, fitArgs, saver.callback, {
      optimizer: original.optimizer,
    });

    // Same predictions from the final checkpoint.
    const final = build();
    const result = await restoreTfjs(final, saver.saved.get(8)!, {
      tf,
      optimizer: final.optimizer,
    });
    assertEquals(result.missing, []);
    assertEquals(result.unexpected, []);
    assertEquals(result.optimizerWeights, 7); // iter + 6 momentum slots
    const probe = tf.tensor2d([[0.1, 0.2, 0.3], [-1, 0.5, 2]]);
    assertEquals(
      Array.from((final.predict(probe) as tf.Tensor).dataSync()),
      Array.from((original.predict(probe) as tf.Tensor).dataSync()),
    );

    // Same weights after 4 more batches: resume from step 4 (end of epoch 1),
    // train epoch 2, compare with the uninterrupted run.
    const resumed = build();
    await restoreTfjs(resumed, saver.saved.get(4)!, {
      tf,
      optimizer: resumed.optimizer,
    });
    const again = makeSaver(4);
    await fitWithCheckpoints(
      resumed,
      x,
      y,
      { ...fitArgs, initialEpoch: 1 },
      again.callback,
      { optimizer: resumed.optimizer, initialStep: 4 },
    );
    assertEquals(again.seen.slice(0, 2), ["begin@4", "2:5/4"]);
    assertEquals(values(resumed), values(original));
    // Not trivially equal: training moved the weights.
    const untrained = build();
    assert(
      JSON.stringify(values(untrained)) !== JSON.stringify(values(original)),
    );
  });
});

Deno.test("a mid-epoch safetensors checkpoint continues identically on the remaining batches", async () => {
  await withTempDir(async (dir) => {
    const { x, y } = data();
    const original = build();
    const saver = makeSaver(2, { dir, format: "safetensors" });
    await fitWithCheckpoints(
      original,
      x,
      y,
      { epochs: 1, batchSize: 4, shuffle: false, verbose: 0 },
      saver.callback,
      { optimizer: original.optimizer },
    );
    const resumed = build();
    await restoreTfjs(resumed, saver.saved.get(2)!, {
      tf,
      optimizer: resumed.optimizer,
    });
    // Batches 3 and 4 of the epoch are samples 8..15.
    await resumed.fit(x.slice(8, 8), y.slice(8, 8), {
      epochs: 1,
      batchSize: 4,
      shuffle: false,
      verbose: 0,
    });
    assertEquals(values(resumed), values(original));
  });
});

Deno.test("an Adam optimizer resumes to within float32 rounding", async () => {
  await withTempDir(async (dir) => {
    // tfjs's Adam.setWeights recomputes beta^t with pow() instead of keeping
    // the running product, so its bias correction can differ in the last bit:
    // resuming after 2 steps is not bit for bit, after 4 it is.
    const { x, y } = data();
    const fitArgs = { epochs: 1, batchSize: 2, shuffle: false, verbose: 0 };
    const original = build("adam");
    const saver = makeSaver(2, { dir, format: "ckpt" });
    await fitWithCheckpoints(
      original,
      x.slice(0, 8),
      y.slice(0, 8),
      fitArgs,
      saver.callback,
      {
        optimizer: original.optimizer,
      },
    );
    const resumed = build("adam");
    await restoreTfjs(resumed, saver.saved.get(2)!, {
      tf,
      optimizer: resumed.optimizer,
    });
    await resumed.fit(x.slice(4, 4), y.slice(4, 4), fitArgs);
    const a = values(original).flat(), b = values(resumed).flat();
    const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    assert(diff < 1e-5, `max difference ${diff}`);
  });
});

Deno.test("restoreTfjs names missing, unexpected and mismatched weights and writes nothing", async () => {
  const source = build();
  const target = build();
  const full: Checkpoint = new Map(
    networkParameters(tfjsNetwork(source)).map((p) => [p.name, p]),
  );
  const before = values(target);

  const f32 = (shape: number[]): Tensor => ({
    dtype: "Float32",
    shape,
    data: new Float32Array(shapeSize(shape)),
  });
  // Each case changes one entry of a good checkpoint; the error names it.
  const cases: [string, Tensor | undefined, string][] = [
    ["out/bias", undefined, 'the checkpoint has no weight "out/bias"'],
    ["head/kernel", f32([1]), 'the model has no weight named "head/kernel"'],
    [
      "out/kernel",
      f32([2, 5]),
      '"out/kernel" has shape [2, 5] in the checkpoint, the model has [5, 2]',
    ],
    [
      "out/bias",
      { dtype: "Float64", shape: [2], data: new Float64Array(2) },
      '"out/bias" has dtype Float64',
    ],
  ];
  for (const [name, value, message] of cases) {
    const ckpt = new Map(full);
    if (value === undefined) ckpt.delete(name);
    else ckpt.set(name, value);
    await assertRejects(
      restoreTfjs(target, ckpt, { tf }),
      (e: unknown) => e instanceof RangeError && e.message.includes(message),
    );
  }

  await assertRejects(
    restoreTfjs(target, full, { tf, optimizer: target.optimizer }),
    (e: unknown) =>
      e instanceof RangeError && /no optimizer state/.test(e.message),
  );
  await assertRejects(restoreTfjs(target, full, {} as never), TypeError);

  assertEquals(values(target), before);
});

Deno.test("restoreTfjs with strict: false reports what it skipped", async () => {
  const source = build();
  const target = build();
  const partial: Checkpoint = new Map(
    networkParameters(tfjsNetwork(source)).map((p) => [p.name, p]),
  );
  partial.delete("norm/gamma");
  partial.set("extra", {
    dtype: "Float32",
    shape: [],
    data: new Float32Array(1),
  });
  partial.set("note", "strings are never weights");
  const gamma = values(target)[2];
  const before = tf.memory().numTensors;
  const result = await restoreTfjs(target, partial, { tf, strict: false });
  assertStrictEquals(tf.memory().numTensors, before);
  assertEquals(result.missing, ["norm/gamma"]);
  assertEquals(result.unexpected, ["extra"]);
  assertEquals(result.restored.length, 7);
  assertEquals(values(target)[2], gamma);
  assertEquals(values(target)[0], values(source)[0]);
});

Deno.test("restoreTfjs rejects optimizer entries with a gap in their numbering", async () => {
  const model = build();
  const { x, y } = data();
  await model.fit(x, y, {
    epochs: 1,
    batchSize: 8,
    shuffle: false,
    verbose: 0,
  });
  const ckpt: Checkpoint = new Map(
    [
      ...networkParameters(tfjsNetwork(model)),
      ...networkParameters(await tfjsOptimizerState(model.optimizer)),
    ].map((p) => [p.name, p]),
  );
  ckpt.delete([...ckpt.keys()].find((k) => k.startsWith("optimizer/003/"))!);
  const target = build();
  await assertRejects(
    restoreTfjs(target, ckpt, { tf, optimizer: target.optimizer }),
    (e: unknown) =>
      e instanceof RangeError && /position 3 holds 4/.test(e.message),
  );
});

Deno.test("fitWithCheckpoints calls onException with the step the weights are at, and rethrows", async () => {
  const model = build();
  const { x, y } = data();
  const boom = new Error("loader failed");
  const calls: string[] = [];
  let caught: unknown;
  await assertRejects(
    fitWithCheckpoints(
      model,
      x,
      y,
      {
        epochs: 1,
        batchSize: 4,
        shuffle: false,
        verbose: 0,
        callbacks: [{
          onBatchEnd: (batch: number) => {
            if (batch === 2) throw boom;
          },
        }],
      },
      {
        onStepEnd: (ctx) => void calls.push(`step${ctx.step}`),
        onTrainEnd: () => void calls.push("end"),
        onException: (ctx, error) => {
          calls.push(`exception@${ctx.step}`);
          caught = error;
        },
      },
    ),
    (e: unknown) => e === boom,
  );
  assertStrictEquals(caught, boom);
  // The monitor saw batch 3 before the failing callback: its context (and a
  // breakpoint) matches the weights.
  assertEquals(calls, ["step1", "step2", "step3", "exception@3"]);
});

Deno.test("fitWithCheckpoints keeps the original error first when onException fails too", async () => {
  const model = build();
  const { x, y } = data();
  const boom = new Error("step failed");
  const also = new Error("breakpoint save failed");
  await assertRejects(
    fitWithCheckpoints(
      model,
      x,
      y,
      {
        batchSize: 4,
        verbose: 0,
        callbacks: {
          onBatchEnd: () => {
            throw boom;
          },
        },
      },
      {
        onException: () => {
          throw also;
        },
      },
    ),
    (e: unknown) =>
      e instanceof AggregateError && e.errors[0] === boom &&
      e.errors[1] === also,
  );
});

Deno.test("tfjsCallback without stepsPerEpoch makes fit fail with a clear message", async () => {
  const model = build();
  const { x, y } = data();
  const cb = tfjsCallback({}, { model });
  await assertRejects(
    model.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0, callbacks: [cb] }),
    (e: unknown) => e instanceof TypeError && /stepsPerEpoch/.test(e.message),
  );
  assertThrows(
    () => tfjsCallback({}, { model, stepsPerEpoch: 0 }),
    RangeError,
  );
  assertThrows(
    () => tfjsCallback({}, { model, optimizer: {} as never }),
    TypeError,
  );
});

Deno.test("tfjsCallback works after a tfjs Callback object in the same list", async () => {
  const model = build();
  const { x, y } = data();
  const saver = makeSaver(100);
  await model.fit(x, y, {
    epochs: 1,
    batchSize: 4,
    shuffle: false,
    verbose: 0,
    callbacks: [
      tf.callbacks.earlyStopping({ monitor: "loss", patience: 5 }),
      tfjsCallback(saver.callback, { model }) as never,
    ],
  });
  // tfjs gave the callback its fit parameters: 16 samples / 4 per batch.
  assertEquals(saver.seen.slice(1, 3), ["1:1/4", "1:2/4"]);
});

function nums(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number>);
}

Deno.test("fitWithCheckpoints keeps a list of tfjs Callback objects working", async () => {
  const model = build();
  const { x, y } = data();
  const saver = makeSaver(100);
  const history = await fitWithCheckpoints(
    model,
    x,
    y,
    {
      epochs: 2,
      batchSize: 8,
      verbose: 0,
      callbacks: [tf.callbacks.earlyStopping({ monitor: "loss", patience: 9 })],
    },
    saver.callback,
  );
  assertEquals(history.epoch, [0, 1]);
  assertEquals(saver.seen, [
    "begin@0",
    "1:1/2",
    "1:2/2",
    "epoch1",
    "2:3/2",
    "2:4/2",
    "epoch2",
    "end@4",
  ]);
});

Deno.test("a CheckpointMonitor saves tfjs training; resuming from its files continues identically", async () => {
  const { x, y } = data();
  const fitArgs = { epochs: 3, batchSize: 4, shuffle: false, verbose: 0 };
  await withTempDir(async (dir) => {
    const original = build();
    {
      await using monitor = new CheckpointMonitor({
        directory: join(dir, "run1"),
        saveCheckpointSteps: 4,
        keepCheckpointMax: 2,
        saveNetworkParams: false,
      });
      await fitWithCheckpoints(original, x, y, fitArgs, monitor, {
        optimizer: original.optimizer,
      });
      assertEquals(monitor.checkpoints.map((f) => f.split("/").pop()), [
        "CKP_rank_0-2_4.ckpt",
        "CKP_rank_0-3_4.ckpt",
      ]);
    }
    const rankDir = join(dir, "run1", "checkpoint", "rank_0");
    const meta = JSON.parse(
      await Deno.readTextFile(join(rankDir, "meta.json")),
    );
    assertEquals(meta.last_ckpt_file, "CKP_rank_0-3_4.ckpt");

    // The final file predicts as the trained model does.
    const final = build();
    await restoreTfjs(
      final,
      await loadCheckpoint(join(rankDir, meta.last_ckpt_file)),
      {
        tf,
        optimizer: final.optimizer,
      },
    );
    const probe = tf.tensor2d([[0.3, -0.2, 0.9]]);
    assertEquals(
      Array.from((final.predict(probe) as tf.Tensor).dataSync()),
      Array.from((original.predict(probe) as tf.Tensor).dataSync()),
    );

    // Resume from the end of epoch 2 with a new monitor: epoch 3 trains
    // to the same weights, and the new files continue the numbering.
    const resumed = build();
    const ckpt = await loadCheckpoint(join(rankDir, "CKP_rank_0-2_4.ckpt"));
    await restoreTfjs(resumed, ckpt, { tf, optimizer: resumed.optimizer });
    const stepNum = Number((ckpt.get("step_num") as Tensor).data[0]);
    assertEquals(stepNum, 8);
    {
      await using monitor = new CheckpointMonitor({
        directory: join(dir, "run2"),
        saveCheckpointSteps: 4,
        saveNetworkParams: false,
      });
      await fitWithCheckpoints(
        resumed,
        x,
        y,
        { ...fitArgs, initialEpoch: 2 },
        monitor,
        { optimizer: resumed.optimizer, initialStep: stepNum },
      );
      assertEquals(monitor.checkpoints.map((f) => f.split("/").pop()), [
        "CKP_rank_0-3_4.ckpt",
      ]);
    }
    assertEquals(values(resumed), values(original));
  });
});

Deno.test("with exceptionSave, a failing fit leaves a breakpoint that matches the weights", async () => {
  const { x, y } = data();
  await withTempDir(async (dir) => {
    const model = build();
    const boom = new Error("data loader died");
    await assertRejects(
      (async () => {
        await using monitor = new CheckpointMonitor({
          directory: dir,
          saveCheckpointSteps: 100,
          exceptionSave: true,
          saveNetworkParams: false,
        });
        await fitWithCheckpoints(
          model,
          x,
          y,
          {
            epochs: 1,
            batchSize: 4,
            shuffle: false,
            verbose: 0,
            callbacks: {
              onBatchEnd: (batch: number) => {
                if (batch === 2) throw boom;
              },
            },
          },
          monitor,
          { optimizer: model.optimizer },
        );
      })(),
      (e: unknown) => e === boom,
    );
    const rankDir = join(dir, "checkpoint", "rank_0");
    const files = (await listDir(rankDir)).filter((f) => f.endsWith(".ckpt"));
    assertEquals(files, ["CKP_rank_0-1_3_breakpoint.ckpt"]);
    const restored = build();
    await restoreTfjs(
      restored,
      await loadCheckpoint(join(rankDir, files[0]!)),
      {
        tf,
        optimizer: restored.optimizer,
      },
    );
    assertEquals(values(restored), values(model));
  });
});

Deno.test("fitWithCheckpoints with resume: true restores the newest checkpoint and goes on as an uninterrupted run", async () => {
  const { x, y } = data();
  const fitArgs = { batchSize: 4, shuffle: false, verbose: 0 };
  await withTempDir(async (dir) => {
    const uninterrupted = build();
    await fitWithCheckpoints(uninterrupted, x, y, { ...fitArgs, epochs: 3 }, {
      onStepEnd: () => {},
    }, { optimizer: uninterrupted.optimizer });

    const monitor = () =>
      new CheckpointMonitor({
        directory: dir,
        saveCheckpointSteps: 4, // every epoch end (4 batches)
        saveNetworkParams: false,
      });
    // A fresh folder: nothing to resume, training starts at epoch 1.
    const first = build();
    {
      await using m = monitor();
      await fitWithCheckpoints(first, x, y, { ...fitArgs, epochs: 2 }, m, {
        optimizer: first.optimizer,
        resume: true,
        tf,
      });
    }
    // "Another process": a model built again, the same script, epochs: 3.
    const resumed = build();
    {
      await using m = monitor();
      const seen: number[] = [];
      m.addEventListener("saved", (e) => seen.push(e.detail.step));
      await fitWithCheckpoints(resumed, x, y, { ...fitArgs, epochs: 3 }, m, {
        optimizer: resumed.optimizer,
        resume: true,
        tf,
      });
      assertEquals(seen, [12]);
      assertEquals(m.checkpoints.map((f) => f.split("/").pop()), [
        "CKP_rank_0_1-3_4.ckpt",
      ]);
    }
    assertEquals(values(resumed), values(uninterrupted));
  });
});

Deno.test("fitWithCheckpoints with resume refuses what it cannot do", async () => {
  const { x, y } = data();
  const model = build();
  const args = { epochs: 1, batchSize: 4, verbose: 0 };
  await assertRejects(
    fitWithCheckpoints(model, x, y, args, { onStepEnd: () => {} }, {
      resume: true,
      tf,
    }),
    /"resume: true" needs a CheckpointMonitor/,
  );
  await assertRejects(
    fitWithCheckpoints(model, x, y, args, { onStepEnd: () => {} }, {
      resume: "/nonexistent",
    }),
    /pass the tfjs namespace as "tf"/,
  );
  await assertRejects(
    fitWithCheckpoints(model, x, y, { ...args, initialEpoch: 1 }, {
      onStepEnd: () => {},
    }, { resume: "/nonexistent", tf }),
    /do not pass it too/,
  );
});

Deno.test("restoring into auto-named layers says to name them", async () => {
  // tfjs numbers unnamed layers per process: the same code builds
  // dense_Dense1 in one process and dense_Dense7 in another.
  const unnamed = () =>
    tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
  const a = unnamed();
  const saved: Checkpoint = new Map(
    networkParameters(tfjsNetwork(a)).map((p) => [p.name, p]),
  );
  const b = unnamed();
  await assertRejects(
    restoreTfjs(b, saved, { tf }),
    (e: unknown) => {
      assert(e instanceof RangeError);
      assert(
        /the checkpoint has no weight "dense_Dense\d+\/kernel"/.test(e.message),
        e.message,
      );
      assert(
        /is a name tfjs made up .* give every layer a name, e\.g\. tf\.layers\.dense\(\{ name: "hidden"/
          .test(e.message),
        e.message,
      );
      return true;
    },
  );
  // Named layers that differ give no such hint.
  const named = (name: string) =>
    tf.sequential({
      layers: [tf.layers.dense({ name, units: 2, inputShape: [3] })],
    });
  const fromNamed: Checkpoint = new Map(
    networkParameters(tfjsNetwork(named("out"))).map((p) => [p.name, p]),
  );
  await assertRejects(
    restoreTfjs(named("other"), fromNamed, { tf }),
    (e: unknown) => {
      assert(e instanceof RangeError);
      assert(/no weight "other\/kernel"/.test(e.message), e.message);
      assert(!e.message.includes("made up"), e.message);
      return true;
    },
  );
});
