import {
  deepEqual as assertEquals,
  equal,
  ok,
  rejects,
  throws,
  throws as assertThrows,
} from "node:assert/strict";
import { basename, join } from "node:path";
import {
  CheckpointConfig,
  type CheckpointMeta,
  CheckpointMonitor,
  type CheckpointMonitorOptions,
  type CheckpointRemovedDetail,
  type CheckpointSavedDetail,
  checksumFile,
  EncryptionMismatchError,
  loadCheckpoint,
  type Parameter,
  type StepContext,
  type Tensor,
  train,
} from "../mod.ts";
import { listDir, withTempDir } from "./_helpers.ts";

// ------------------------------------------------------------ helpers ---

function f32(name: string, values: number[], requiresGrad = true): Parameter {
  return {
    name,
    dtype: "Float32",
    shape: [values.length],
    data: Float32Array.from(values),
    requiresGrad,
  };
}

/** A tiny model: two trainable weights, one frozen buffer, an optimizer. */
function model() {
  const network = [
    f32("dense.weight", [1, 2]),
    f32("dense.bias", [0.5]),
    f32("bn.moving_mean", [0], false),
  ];
  const optimizer = [f32("moment1.dense.weight", [0, 0], false)];
  return { network, optimizer };
}

/** The sorted names in a folder; none when it does not exist (yet). */
async function names(dir: string): Promise<string[]> {
  try {
    return await listDir(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

async function readMeta(dir: string, rank = 0): Promise<CheckpointMeta> {
  return JSON.parse(
    await Deno.readTextFile(
      join(dir, "checkpoint", `rank_${rank}`, "meta.json"),
    ),
  );
}

function scalar(value: Tensor | string | undefined): number {
  ok(value !== undefined && typeof value !== "string", "expected a tensor");
  return Number(value.data[0]);
}

function monitor(
  dir: string,
  options: CheckpointMonitorOptions = {},
): CheckpointMonitor {
  return new CheckpointMonitor({ directory: dir, rank: 0, ...options });
}

/** Runs `train` with a step that bumps the weights, so each checkpoint differs. */
function run(
  m: CheckpointMonitor,
  epochs: number,
  stepsPerEpoch: number,
  extra: Partial<Parameters<typeof train>[0]> = {},
) {
  const { network, optimizer } = model();
  return train({
    epochs,
    stepsPerEpoch,
    network,
    optimizer,
    step: ({ step }) => {
      network[0]!.data[0] = step;
      return { loss: 1 / step, outputs: [1 / step, false, 1024] };
    },
    callbacks: [m],
    ...extra,
  });
}

// -------------------------------------------------- names and policies ---

Deno.test("saves every N global steps under checkpoint/rank_R with MindFormers' names, keeping K", async () => {
  await withTempDir(async (dir) => {
    const saved: CheckpointSavedDetail[] = [];
    const removed: CheckpointRemovedDetail[] = [];
    const m = monitor(dir, {
      saveCheckpointSteps: 3,
      keepCheckpointMax: 2,
      prefix: "llm",
    });
    m.addEventListener("saved", (e) => void saved.push(e.detail));
    m.addEventListener("removed", (e) => void removed.push(e.detail));
    const summary = await run(m, 2, 4); // steps 1..8, saves at 3, 6 and 8 (train end)
    equal(summary.saves, 2);
    const ckptDir = join(dir, "checkpoint", "rank_0");
    assertEquals(await names(ckptDir), [
      "llm_rank_0-2_2.ckpt",
      "llm_rank_0-2_4.ckpt",
      "meta.json",
    ]);
    assertEquals(
      saved.filter((s) => s.kind === "main").map((s) => [s.step, s.epoch]),
      [[3, 1], [6, 2], [8, 2]],
    );
    assertEquals(removed.map((r) => r.file), [
      join(ckptDir, "llm_rank_0-1_3.ckpt"),
    ]);
    ok(removed[0]!.reason.includes("keepCheckpointMax 2"));
    assertEquals(m.checkpoints, [
      join(ckptDir, "llm_rank_0-2_2.ckpt"),
      join(ckptDir, "llm_rank_0-2_4.ckpt"),
    ]);
    await m.close();
  });
});

Deno.test("meta.json has MindFormers' three keys plus size and checksum of each kept file", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { saveCheckpointSteps: 2, keepCheckpointMax: 2 });
    await run(m, 1, 6);
    const meta = await readMeta(dir);
    equal(meta.last_epoch, 1);
    equal(meta.last_step, 6);
    equal(meta.last_ckpt_file, "CKP_rank_0-1_6.ckpt");
    equal(meta.global_step, 6);
    equal(meta.step_num, 6);
    equal(meta.format, "ckpt");
    equal(meta.enc_mode, null);
    equal(meta.prefix, "CKP_rank_0");
    equal(meta.rank, 0);
    assertEquals(meta.files.map((f) => f.name), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_0-1_6.ckpt",
    ]);
    for (const f of meta.files) {
      const path = join(dir, "checkpoint", "rank_0", f.name);
      equal(f.bytes, (await Deno.stat(path)).size);
      equal(f.checksum, await checksumFile(path));
    }
    await m.close();
  });
});

Deno.test("train end saves the last step unless it was just saved", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      saveCheckpointSteps: 4,
      saveNetworkParams: false,
    });
    await run(m, 1, 8);
    assertEquals(await names(join(dir, "checkpoint", "rank_0")), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_0-1_8.ckpt",
      "meta.json",
    ]);
    await m.close();
  });
});

Deno.test("the seconds trigger runs on the injected clock from construction", async () => {
  await withTempDir(async (dir) => {
    let now = 0;
    const m = monitor(dir, {
      saveCheckpointSeconds: 10,
      clock: () => now,
      saveNetworkParams: false,
    });
    const { network } = model();
    const saved: number[] = [];
    for (let step = 1; step <= 10; step++) {
      now = step * 3000; // each step "takes" 3 s
      if (await m.onStepEnd({ step, epoch: 1, stepsPerEpoch: 100, network })) {
        saved.push(step);
      }
    }
    // 12 s > 10 at step 4 (timer := 12 s); 24 s at step 8 (timer := 24 s).
    assertEquals(saved, [4, 8]);
    await m.close();
  });
});

Deno.test("keepCheckpointPerNMinutes keeps one per window, on the injected clock", async () => {
  await withTempDir(async (dir) => {
    let now = 0;
    const m = monitor(dir, {
      keepCheckpointPerNMinutes: 1,
      clock: () => now,
      saveNetworkParams: false,
    });
    const { network } = model();
    for (let step = 1; step <= 6; step++) {
      now = step * 20_000;
      await m.onStepEnd({ step, epoch: 1, stepsPerEpoch: 100, network });
    }
    assertEquals(
      m.checkpoints.map((f) => f.slice(f.lastIndexOf("-") + 1)),
      ["1_1.ckpt", "1_3.ckpt", "1_5.ckpt", "1_6.ckpt"],
    );
    await m.close();
  });
});

Deno.test("difference: keepCheckpointMax 0 with no per-minutes rule keeps every checkpoint", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { keepCheckpointMax: 0, saveNetworkParams: false });
    await run(m, 1, 7);
    await m.close();
    equal(m.checkpoints.length, 7);
    equal((await readMeta(dir)).files.length, 7);
  });
});

Deno.test("a second run in the same folder gets the collision suffix; retention never touches the first run", async () => {
  await withTempDir(async (dir) => {
    const first = monitor(dir, {
      keepCheckpointMax: 1,
      saveNetworkParams: false,
    });
    await run(first, 1, 2);
    await first.close();
    const second = monitor(dir, {
      keepCheckpointMax: 1,
      saveNetworkParams: false,
    });
    equal((await second.prepare()).prefix, "CKP_rank_0_1");
    await run(second, 1, 3);
    await second.close();
    const third = monitor(dir, { saveNetworkParams: false });
    equal((await third.prepare()).prefix, "CKP_rank_0_2");
    await third.close();
    assertEquals(await names(join(dir, "checkpoint", "rank_0")), [
      "CKP_rank_0-1_2.ckpt",
      "CKP_rank_0_1-1_3.ckpt",
      "meta.json",
    ]);
  });
});

Deno.test("retention leaves breakpoint files, other prefixes and foreign files alone", async () => {
  await withTempDir(async (dir) => {
    const ckptDir = join(dir, "checkpoint", "rank_0");
    await Deno.mkdir(ckptDir, { recursive: true });
    const foreign = [
      "CKP_rank_0-9_9_breakpoint.ckpt",
      "other_rank_0-1_1.ckpt",
      "notes.txt",
    ];
    for (const f of foreign) await Deno.writeTextFile(join(ckptDir, f), "x");
    const m = monitor(dir, { keepCheckpointMax: 1, saveNetworkParams: false });
    equal((await m.prepare()).prefix, "CKP_rank_0");
    await run(m, 1, 4);
    await m.close();
    assertEquals(
      await names(ckptDir),
      [...foreign, "CKP_rank_0-1_4.ckpt", "meta.json"].sort(),
    );
  });
});

// ------------------------------------------------------ what is saved ---

Deno.test("main file: network, optimizer, then append info; network-only and trainable-only files", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      saveCheckpointSteps: 2,
      saveTrainableParams: true,
      globalBatchSize: 64,
    });
    await run(m, 1, 2);
    await m.close();
    const main = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-1_2.ckpt"),
    );
    assertEquals([...main.keys()], [
      "dense.weight",
      "dense.bias",
      "bn.moving_mean",
      "moment1.dense.weight",
      "epoch_num",
      "step_num",
      "global_step",
      "loss_scale",
      "global_batch_size",
    ]);
    equal(scalar(main.get("dense.weight")), 2);
    equal(scalar(main.get("epoch_num")), 1);
    equal(scalar(main.get("step_num")), 2);
    const gs = main.get("global_step") as Tensor;
    assertEquals([gs.dtype, gs.shape, scalar(gs)], ["Int32", [1], 2]);
    equal(scalar(main.get("loss_scale")), 1024);
    equal(scalar(main.get("global_batch_size")), 64);

    const net = await loadCheckpoint(
      join(dir, "checkpoint_network/rank_0/CKP_rank_0-network.ckpt"),
    );
    assertEquals([...net.keys()], [
      "dense.weight",
      "dense.bias",
      "bn.moving_mean",
    ]);
    const trainable = await loadCheckpoint(
      join(dir, "checkpoint_trainable/rank_0/CKP_rank_0-trainable_params.ckpt"),
    );
    assertEquals([...trainable.keys()], ["dense.weight", "dense.bias"]);
  });
});

Deno.test("append info: the user's record, a step_num resume offset, lossScale over outputs[2]", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      appendInfo: ["epoch_num", {
        step_num: 100,
        run: "exp-7",
        lr: 0.5,
        warm: true,
      }],
      saveNetworkParams: false,
    });
    const { network } = model();
    await m.onStepEnd({
      step: 1,
      epoch: 3,
      stepsPerEpoch: 10,
      network,
      lossScale: 8,
      outputs: [0, 0, 4],
    });
    await m.close();
    const loaded = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-3_1.ckpt"),
    );
    assertEquals([...loaded.keys()].slice(3), [
      "epoch_num",
      "step_num",
      "run",
      "lr",
      "warm",
      "global_step",
    ]);
    equal(scalar(loaded.get("epoch_num")), 3);
    equal(scalar(loaded.get("step_num")), 101);
    equal(scalar(loaded.get("global_step")), 101);
    equal(loaded.get("run"), "exp-7");
    equal(scalar(loaded.get("lr")), 0.5);
    equal(scalar(loaded.get("warm")), 1);
    equal((await readMeta(dir)).step_num, 101);
  });
});

Deno.test("a record without epoch_num or step_num does not crash (the original raises KeyError)", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      appendInfo: [{ tag: 1 }],
      saveNetworkParams: false,
    });
    const { network } = model();
    equal(
      await m.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 1, network }),
      true,
    );
    await m.close();
    const loaded = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-1_1.ckpt"),
    );
    assertEquals([...loaded.keys()].slice(3), ["tag", "global_step"]);
  });
});

Deno.test("an append key equal to a parameter name replaces it in place", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      appendInfo: [{ "dense.bias": 7 }],
      saveNetworkParams: false,
    });
    const { network, optimizer } = model();
    optimizer.push({
      name: "global_step",
      dtype: "Int32",
      shape: [1],
      data: Int32Array.of(41),
    });
    await m.onStepEnd({
      step: 1,
      epoch: 1,
      stepsPerEpoch: 1,
      network,
      optimizer,
    });
    await m.close();
    const loaded = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-1_1.ckpt"),
    );
    assertEquals([...loaded.keys()], [
      "dense.weight",
      "dense.bias",
      "bn.moving_mean",
      "moment1.dense.weight",
      "global_step",
    ]);
    equal(scalar(loaded.get("dense.bias")), 7);
    // global_step comes from the optimizer's own tensor, as in the original.
    equal(scalar(loaded.get("global_step")), 41);
  });
});

Deno.test("savedNetwork is saved instead of the step's network and optimizer", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      savedNetwork: [f32("head.weight", [3])],
      appendInfo: [],
      saveNetworkParams: false,
    });
    await run(m, 1, 1);
    await m.close();
    const loaded = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-1_1.ckpt"),
    );
    assertEquals([...loaded.keys()], ["head.weight", "global_step"]);
  });
});

Deno.test("safetensors format names files .safetensors", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { format: "safetensors" });
    await run(m, 1, 1);
    await m.close();
    assertEquals(await names(join(dir, "checkpoint/rank_0")), [
      "CKP_rank_0-1_1.safetensors",
      "meta.json",
    ]);
    assertEquals(await names(join(dir, "checkpoint_network/rank_0")), [
      "CKP_rank_0-network.safetensors",
    ]);
    equal((await readMeta(dir)).format, "safetensors");
  });
});

for (const encMode of ["AES-GCM", "AES-CBC", "SM4-CBC"] as const) {
  Deno.test(`encKey with ${encMode} encrypts the main and network files; meta.json names the cipher`, async () => {
    await withTempDir(async (dir) => {
      const encKey = new Uint8Array(16).map((_, i) => i + 1);
      const m = monitor(dir, { encKey, encMode });
      await run(m, 1, 1);
      await m.close();
      equal((await readMeta(dir)).enc_mode, encMode);
      for (
        const file of [
          "checkpoint/rank_0/CKP_rank_0-1_1.ckpt",
          "checkpoint_network/rank_0/CKP_rank_0-network.ckpt",
        ]
      ) {
        const path = join(dir, file);
        await rejects(loadCheckpoint(path), EncryptionMismatchError);
        const loaded = await loadCheckpoint(path, {
          decKey: encKey,
          decMode: encMode,
        });
        equal(scalar(loaded.get("dense.weight")), 1);
      }
    });
  });
}

// -------------------------------------------------- exceptions, errors ---

Deno.test("exceptionSave writes a _breakpoint file, leaves meta.json alone, and the error is rethrown", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      exceptionSave: true,
      saveCheckpointSteps: 2,
      saveNetworkParams: false,
    });
    const boom = new Error("boom");
    await rejects(
      run(m, 2, 3, {
        step: ({ step }) => {
          if (step === 5) throw boom;
        },
      }),
      (e) => e === boom,
    );
    await m.close();
    assertEquals(await names(join(dir, "checkpoint/rank_0")), [
      "CKP_rank_0-1_2.ckpt",
      "CKP_rank_0-2_1.ckpt",
      "CKP_rank_0-2_2_breakpoint.ckpt",
      "meta.json",
    ]);
    equal((await readMeta(dir)).last_ckpt_file, "CKP_rank_0-2_1.ckpt");
    const bp = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-2_2_breakpoint.ckpt"),
    );
    ok(bp.has("moment1.dense.weight"), "the breakpoint holds the optimizer");
    // Difference: step_num is the global step (the original stores the step in the epoch).
    equal(scalar(bp.get("step_num")), 5);
    equal(scalar(bp.get("epoch_num")), 2);
  });
});

Deno.test("without exceptionSave nothing is saved on an exception", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { saveCheckpointSteps: 10 });
    await rejects(run(m, 1, 3, {
      step: () => {
        throw new Error("x");
      },
    }));
    await m.close();
    assertEquals(await names(join(dir, "checkpoint/rank_0")), []);
  });
});

Deno.test("a second breakpoint in the folder gets its own collision suffix", async () => {
  await withTempDir(async (dir) => {
    const ctx: StepContext = {
      step: 1,
      epoch: 1,
      stepsPerEpoch: 4,
      network: model().network,
    };
    for (let i = 0; i < 2; i++) {
      const m = monitor(dir, { exceptionSave: true, saveCheckpointSteps: 10 });
      await m.onException(ctx, new Error("x"));
      await m.close();
    }
    assertEquals(await names(join(dir, "checkpoint/rank_0")), [
      "CKP_rank_0-1_1_breakpoint.ckpt",
      "CKP_rank_0_1-1_1_breakpoint.ckpt",
    ]);
  });
});

Deno.test("a failed save deletes nothing, leaves no temp file, reports and rejects; the next step retries", async () => {
  await withTempDir(async (dir) => {
    const errors: unknown[] = [];
    const m = monitor(dir, {
      keepCheckpointMax: 1,
      saveNetworkParams: false,
      onError: (d) => void errors.push(d.error),
    });
    const { network } = model();
    const ckptDir = join(dir, "checkpoint/rank_0");
    await m.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 10, network });
    // Block the next file's name with a folder: the rename cannot succeed.
    await Deno.mkdir(join(ckptDir, "CKP_rank_0-1_2.ckpt"));
    await rejects(
      m.onStepEnd({ step: 2, epoch: 1, stepsPerEpoch: 10, network }),
    );
    equal(errors.length, 1);
    assertEquals(await names(ckptDir), [
      "CKP_rank_0-1_1.ckpt",
      "CKP_rank_0-1_2.ckpt",
      "meta.json",
    ]);
    equal((await readMeta(dir)).last_ckpt_file, "CKP_rank_0-1_1.ckpt");
    equal(m.checkpoints.length, 1);
    equal(
      await m.onStepEnd({ step: 3, epoch: 1, stepsPerEpoch: 10, network }),
      true,
    );
    await m.close();
  });
});

Deno.test("a non-increasing step is a RangeError", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { saveCheckpointSteps: 100 });
    const { network } = model();
    await m.onStepEnd({ step: 5, epoch: 1, stepsPerEpoch: 10, network });
    await rejects(
      m.onStepEnd({ step: 5, epoch: 1, stepsPerEpoch: 10, network }),
      /greater than the previous step 5.*number 5/,
    );
    await rejects(
      m.onStepEnd({ step: 4, epoch: 1, stepsPerEpoch: 10, network }),
      RangeError,
    );
    await rejects(
      m.onStepEnd({ step: 6.5, epoch: 1, stepsPerEpoch: 10, network }),
      RangeError,
    );
    await rejects(
      m.onStepEnd({ step: NaN, epoch: 1, stepsPerEpoch: 10, network }),
      RangeError,
    );
    await m.close();
  });
});

Deno.test("a network with two parameters of one name fails the save with a RangeError", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { saveNetworkParams: false });
    const network = [f32("w", [1]), f32("w", [2])];
    await rejects(
      m.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 1, network }),
      /two parameters are named "w"/,
    );
    const clash = { network: [f32("m", [1])], optimizer: [f32("m", [2])] };
    await rejects(
      m.onStepEnd({ step: 2, epoch: 1, stepsPerEpoch: 1, ...clash }),
      RangeError,
    );
    await m.close();
  });
});

Deno.test("saves run one at a time even when step ends are not awaited", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { keepCheckpointMax: 2, saveNetworkParams: false });
    const { network } = model();
    const calls = [1, 2, 3, 4].map((step) =>
      m.onStepEnd({ step, epoch: 1, stepsPerEpoch: 10, network })
    );
    assertEquals(await Promise.all(calls), [true, true, true, true]);
    await m.flush();
    assertEquals(await names(join(dir, "checkpoint/rank_0")), [
      "CKP_rank_0-1_3.ckpt",
      "CKP_rank_0-1_4.ckpt",
      "meta.json",
    ]);
    equal((await readMeta(dir)).last_ckpt_file, "CKP_rank_0-1_4.ckpt");
    await m.close();
  });
});

Deno.test("loss_scale keeps the last value a step gave", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, { saveNetworkParams: false });
    const { network } = model();
    const base = { epoch: 1, stepsPerEpoch: 10, network };
    await m.onStepEnd({ ...base, step: 1, outputs: [0.1, false, 512] });
    await m.onStepEnd({ ...base, step: 2, outputs: [0.1] });
    await m.close();
    const first = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-1_1.ckpt"),
    );
    const second = await loadCheckpoint(
      join(dir, "checkpoint/rank_0/CKP_rank_0-1_2.ckpt"),
    );
    equal(scalar(first.get("loss_scale")), 512);
    equal(scalar(second.get("loss_scale")), 512);
  });
});

// ---------------------------------------------------- options, lifecycle ---

Deno.test("difference: config is honoured", async () => {
  await withTempDir(async (dir) => {
    const config = new CheckpointConfig({
      saveCheckpointSteps: 2,
      saveNetworkParams: false,
    });
    const m = monitor(dir, { config });
    equal(m.config, config);
    await run(m, 1, 3);
    await m.close();
    assertEquals(await names(join(dir, "checkpoint/rank_0")), [
      "CKP_rank_0-1_2.ckpt",
      "CKP_rank_0-1_3.ckpt",
      "meta.json",
    ]);
  });
});

Deno.test("difference: config together with a policy option is a TypeError naming the keys", async () => {
  await withTempDir((dir) => {
    const config = new CheckpointConfig();
    assertThrows(
      () =>
        monitor(dir, { config, saveCheckpointSteps: 2, keepCheckpointMax: 1 }),
      (e) =>
        e instanceof TypeError &&
        e.message.includes('"saveCheckpointSteps", "keepCheckpointMax"'),
    );
    assertThrows(
      () => monitor(dir, { config: { saveCheckpointSteps: 1 } as never }),
      TypeError,
    );
  });
});

Deno.test("monitor options: wrong types and values name the option", async () => {
  await withTempDir((dir) => {
    assertThrows(
      () => monitor(dir, { prefix: 3 as never }),
      /"prefix".*number 3/,
    );
    assertThrows(() => monitor(dir, { prefix: "a/b" }), RangeError);
    assertThrows(() => monitor(dir, { prefix: "../up" }), RangeError);
    assertThrows(
      () => new CheckpointMonitor({ directory: 123 as never }),
      /"directory".*number 123/,
    );
    assertThrows(() => new CheckpointMonitor({ directory: "" }), RangeError);
    assertThrows(() => monitor(dir, { rank: -1 }), /"rank"/);
    assertThrows(() => monitor(dir, { clock: 5 as never }), TypeError);
    assertThrows(
      () => monitor(dir, { signals: "SIGTERM" as never }),
      TypeError,
    );
    assertThrows(
      () => monitor(dir, { signals: ["SIGKILL" as never] }),
      RangeError,
    );
    assertThrows(() => monitor(dir, { onSaved: 1 as never }), TypeError);
    assertThrows(
      () => monitor(dir, { saveCheckpointSteps: 1, saveCheckpointSeconds: 1 }),
      RangeError,
    );
    assertThrows(
      () => monitor(dir, { encKey: new Uint8Array(5) }),
      /"encKey".*5 bytes/,
    );
    assertThrows(
      () => monitor(dir, { save_checkpoint_steps: 1 } as never),
      /saveCheckpointSteps/,
    );
  });
});

Deno.test("a directory that is a file is rejected when the run is prepared, before any save", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "x");
    const m = new CheckpointMonitor({ directory: file });
    throws(() => m.layout, /await monitor\.prepare\(\)/);
    await rejects(m.prepare(), Deno.errors.NotADirectory);
    const { network } = model();
    await rejects(
      m.onTrainBegin({ step: 0, epoch: 1, stepsPerEpoch: 1, network }),
      Deno.errors.NotADirectory,
    );
    await m.close();
    equal(await Deno.readTextFile(file), "x");
  });
});

Deno.test("rank comes from the option, else env RANK_ID", async () => {
  await withTempDir(async (dir) => {
    const before = Deno.env.get("RANK_ID");
    try {
      Deno.env.set("RANK_ID", "3");
      const m = new CheckpointMonitor({ directory: dir });
      equal(m.rank, 3);
      equal((await m.prepare()).prefix, "CKP_rank_3");
      equal(m.layout.checkpointDir, join(dir, "checkpoint", "rank_3"));
      await m.close();
      equal(monitor(dir, { rank: 1 }).rank, 1);
      Deno.env.set("RANK_ID", "x");
      assertThrows(() => new CheckpointMonitor({ directory: dir }), /RANK_ID/);
    } finally {
      if (before === undefined) Deno.env.delete("RANK_ID");
      else Deno.env.set("RANK_ID", before);
    }
  });
});

Deno.test("hooks are awaited with the same details as the events", async () => {
  await withTempDir(async (dir) => {
    const log: string[] = [];
    const m = monitor(dir, {
      keepCheckpointMax: 1,
      onSaved: async (d) => {
        await Promise.resolve();
        log.push(`saved ${d.kind} ${d.step} ${d.bytes > 0}`);
      },
      onRemoved: (d) => void log.push(`removed ${basename(d.file)}`),
    });
    await run(m, 1, 2);
    await m.close();
    // Retention runs in the background, beside the network file's save.
    assertEquals(log.filter((l) => l.startsWith("saved")), [
      "saved main 1 true",
      "saved network 1 true",
      "saved main 2 true",
      "saved network 2 true",
    ]);
    ok(
      log.indexOf("removed CKP_rank_0-1_1.ckpt") >
        log.indexOf("saved main 2 true"),
    );
  });
});

Deno.test("a failed meta.json update rejects that save and deletes nothing", async () => {
  await withTempDir(async (dir) => {
    const errors: string[] = [];
    const m = monitor(dir, { keepCheckpointMax: 1, saveNetworkParams: false });
    m.addEventListener(
      "error",
      (e) => void errors.push(basename(e.detail.file)),
    );
    const ckptDir = join(dir, "checkpoint/rank_0");
    await m.prepare();
    await Deno.mkdir(join(ckptDir, "meta.json")); // the rename cannot replace a folder
    const { network } = model();
    const base = { epoch: 1, stepsPerEpoch: 10, network };
    // The save resolves only once meta.json names it, so its failure is
    // this call's; the committed file itself stays.
    await rejects(m.onStepEnd({ ...base, step: 1 }));
    assertEquals(errors, ["meta.json"]);
    assertEquals(await names(ckptDir), ["CKP_rank_0-1_1.ckpt", "meta.json"]);
    await Deno.remove(join(ckptDir, "meta.json"));
    // The trigger only moves on a complete save: step 2 saves again, and its
    // commit lets retention remove step 1's file.
    equal(await m.onStepEnd({ ...base, step: 2 }), true);
    await m.flush();
    assertEquals(await names(ckptDir), ["CKP_rank_0-1_2.ckpt", "meta.json"]);
    const meta = JSON.parse(
      await Deno.readTextFile(join(ckptDir, "meta.json")),
    );
    equal(meta.last_ckpt_file, "CKP_rank_0-1_2.ckpt");
    await m.close();
  });
});

Deno.test("close is idempotent; callbacks after close reject; await using closes", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir);
    await m.close();
    await m.close();
    const { network } = model();
    await rejects(
      m.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 1, network }),
      /closed/,
    );
    let kept: CheckpointMonitor | undefined;
    {
      await using inner = monitor(dir);
      kept = inner;
    }
    await rejects(
      kept.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 1, network }),
      /closed/,
    );
  });
});

Deno.test("a resumed run (train initialStep) saves N steps after its start and names files by global step", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      saveCheckpointSteps: 5,
      saveNetworkParams: false,
    });
    await run(m, 3, 10, { initialStep: 12 });
    await m.close();
    const files = (await names(join(dir, "checkpoint/rank_0"))).filter((f) =>
      f.endsWith(".ckpt")
    );
    // steps 13..30: saves at 17, 22, 27, and 30 at train end.
    assertEquals(files, [
      "CKP_rank_0-2_7.ckpt",
      "CKP_rank_0-3_10.ckpt",
      "CKP_rank_0-3_2.ckpt",
      "CKP_rank_0-3_7.ckpt",
    ]);
  });
});

// -------------------------------------------------------- subprocesses ---

const MOD = new URL("../mod.ts", import.meta.url).href;
const REPO = new URL("..", import.meta.url).pathname;

/** Writes `code` to a script in `dir` and starts `deno run` on it with `flags`. */
async function spawnDeno(
  dir: string,
  code: string,
  flags: string[],
): Promise<Deno.ChildProcess> {
  const script = join(dir, "script.ts");
  await Deno.writeTextFile(script, code);
  return new Deno.Command("deno", {
    args: ["run", "--no-prompt", ...flags, script],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("difference: missing write permission fails at construction naming the exact flag", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    const code = `
      import { CheckpointMonitor } from ${JSON.stringify(MOD)};
      try {
        new CheckpointMonitor({ directory: ${JSON.stringify(out)} });
      } catch (e) {
        console.log(e.name + ": " + e.message);
      }`;
    const child = await spawnDeno(dir, code, [`--allow-read=${REPO},${dir}`]);
    const result = await child.output();
    const text = new TextDecoder().decode(result.stdout).trim();
    equal(
      text,
      `PermissionDenied: Cannot save checkpoints to "${out}": write permission is missing; run with --allow-write=${out}`,
      new TextDecoder().decode(result.stderr),
    );
    assertEquals(await names(out), [], "nothing was created");
  });
});

/** Reads a child's stdout until `marker` (or the end), returning all of it. */
async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  marker: string | null,
): Promise<string> {
  let text = "";
  while (marker === null || !text.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  return text;
}

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  Deno.test(`difference: ${signal} saves at the next step end, then exits with ${code}`, async () => {
    await withTempDir(async (dir) => {
      const out = join(dir, "out");
      const script = `
        import { CheckpointMonitor, train } from ${JSON.stringify(MOD)};
        const w = { dtype: "Float32" as const, shape: [1], data: new Float32Array(1) };
        const monitor = new CheckpointMonitor({
          directory: ${JSON.stringify(out)}, rank: 0, signals: ["${signal}"],
          saveCheckpointSteps: 1000000, saveNetworkParams: false,
        });
        await train({
          epochs: 1000, stepsPerEpoch: 1000, network: { w }, callbacks: [monitor],
          step: async ({ step }) => {
            w.data[0] = step;
            if (step === 3) console.log("ready");
            await new Promise((r) => setTimeout(r, 2));
          },
        });
        console.log("not reached");`;
      const child = await spawnDeno(dir, script, [
        `--allow-read=${REPO},${dir}`,
        `--allow-write=${out}`,
      ]);
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = await readUntil(reader, "ready");
      child.kill(signal);
      text += await readUntil(reader, null);
      const status = await child.status;
      const stderr = await new Response(child.stderr).text();
      equal(status.code, code, stderr);
      equal(
        status.signal,
        null,
        "the monitor exited, the signal did not kill it",
      );
      ok(!text.includes("not reached"), "training stopped after the save");
      const files = (await names(join(out, "checkpoint/rank_0"))).filter((f) =>
        f.endsWith(".ckpt")
      );
      equal(files.length, 1);
      const meta = await readMeta(out);
      ok(meta.global_step >= 3, `saved at step ${meta.global_step}`);
    });
  });
}

Deno.test("close removes the signal listeners: a later SIGTERM terminates as usual", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    const script = `
      import { CheckpointMonitor } from ${JSON.stringify(MOD)};
      const monitor = new CheckpointMonitor({ directory: ${
      JSON.stringify(out)
    }, rank: 0, signals: true });
      await monitor.close();
      console.log("closed");
      setTimeout(() => console.log("not killed"), 20_000);`;
    const child = await spawnDeno(dir, script, [
      `--allow-read=${REPO},${dir}`,
      `--allow-write=${out}`,
    ]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    await readUntil(reader, "closed");
    child.kill("SIGTERM");
    const text = await readUntil(reader, null);
    const status = await child.status;
    await child.stderr.cancel();
    equal(status.signal, "SIGTERM");
    ok(!text.includes("not killed"));
  });
});

Deno.test("signal listeners do not keep a finished process alive", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "out");
    const script = `
      import { CheckpointMonitor } from ${JSON.stringify(MOD)};
      new CheckpointMonitor({ directory: ${
      JSON.stringify(out)
    }, rank: 0, signals: true });
      console.log("constructed");`;
    const child = await spawnDeno(dir, script, [
      `--allow-read=${REPO},${dir}`,
      `--allow-write=${out}`,
    ]);
    const result = await child.output();
    equal(result.code, 0);
    equal(new TextDecoder().decode(result.stdout).trim(), "constructed");
  });
});

Deno.test("the first save removes temporary files a crashed run of this prefix left, and no one else's", async () => {
  await withTempDir(async (dir) => {
    const ckptDir = join(dir, "checkpoint/rank_0");
    await Deno.mkdir(ckptDir, { recursive: true });
    const ours = ".CKP_rank_0-1_7.ckpt.0123456789ab.tmp";
    const meta = ".meta.json.0123456789ab.tmp";
    const other = ".OTHER_rank_0-1_7.ckpt.0123456789ab.tmp";
    for (const f of [ours, meta, other]) {
      await Deno.writeTextFile(join(ckptDir, f), "partial");
    }
    const m = monitor(dir, { saveNetworkParams: false });
    const { network } = model();
    equal(
      await m.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 10, network }),
      true,
    );
    await m.close();
    const left = await names(ckptDir);
    equal(left.includes(ours), false);
    equal(left.includes(meta), false);
    equal(left.includes(other), true);
  });
});

for (const asyncSave of [false, true]) {
  Deno.test(`step ends not awaited (asyncSave ${asyncSave}): every 5 of 20 steps saved once, each with its own step's weights`, async () => {
    await withTempDir(async (dir) => {
      const m = monitor(dir, {
        saveCheckpointSteps: 5,
        keepCheckpointMax: 0,
        saveNetworkParams: false,
        asyncSave,
      });
      const { network, optimizer } = model();
      const calls: Promise<boolean>[] = [];
      for (let step = 1; step <= 20; step++) {
        // The loop changes its tensors at once, never awaiting the monitor.
        (network[0]!.data as Float32Array).fill(step);
        (optimizer[0]!.data as Float32Array).fill(-step);
        calls.push(
          m.onStepEnd({
            step,
            epoch: 1,
            stepsPerEpoch: 20,
            network,
            optimizer,
          }),
        );
      }
      (network[0]!.data as Float32Array).fill(0);
      assertEquals(
        await Promise.all(calls),
        Array.from({ length: 20 }, (_, i) => (i + 1) % 5 === 0),
      );
      await m.close();
      const ckptDir = join(dir, "checkpoint/rank_0");
      const files = [5, 10, 15, 20].map((s) => `CKP_rank_0-1_${s}.ckpt`);
      assertEquals(await names(ckptDir), [...files, "meta.json"].sort());
      for (const [i, name] of files.entries()) {
        const step = 5 * (i + 1);
        const loaded = await loadCheckpoint(join(ckptDir, name));
        const w = loaded.get("dense.weight") as Tensor<"Float32">;
        const m1 = loaded.get("moment1.dense.weight") as Tensor<"Float32">;
        assertEquals(Array.from(w.data), [step, step], name);
        assertEquals(Array.from(m1.data), [-step, -step], name);
        equal(scalar(loaded.get("step_num")), step);
      }
      assertEquals(
        (await readMeta(dir)).files.map((f) => f.name),
        files,
      );
    });
  });
}

Deno.test("step ends not awaited: a failed save is retried at the next call, in order", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir, {
      saveCheckpointSteps: 2,
      saveNetworkParams: false,
    });
    const ckptDir = join(dir, "checkpoint/rank_0");
    await m.prepare();
    // Step 2's name is taken by a folder: its commit fails.
    await Deno.mkdir(join(ckptDir, "CKP_rank_0-1_2.ckpt"));
    const { network } = model();
    const calls = [1, 2, 3, 4].map((step) => {
      (network[0]!.data as Float32Array).fill(step);
      return m.onStepEnd({ step, epoch: 1, stepsPerEpoch: 10, network })
        .then((saved) => saved, () => "failed");
    });
    // Step 3 was not due when it was called (step 2's failure was not
    // known yet); step 4 is due either way.
    assertEquals(await Promise.all(calls), [false, "failed", false, true]);
    await m.close();
    const loaded = await loadCheckpoint(join(ckptDir, "CKP_rank_0-1_4.ckpt"));
    assertEquals(
      Array.from((loaded.get("dense.weight") as Tensor<"Float32">).data),
      [4, 4],
    );
  });
});

Deno.test("the first step end says steps count from 1", async () => {
  await withTempDir(async (dir) => {
    const m = monitor(dir);
    const { network } = model();
    await rejects(
      m.onStepEnd({ step: 0, epoch: 1, stepsPerEpoch: 10, network }),
      (e: Error) => {
        ok(e instanceof RangeError);
        equal(
          e.message,
          "Cannot handle step end: step must be an integer of at least 1 (steps count from 1), received number 0",
        );
        return true;
      },
    );
    await m.close();
  });
});

Deno.test("a near-miss option name gets a did-you-mean, as snake_case names do", () => {
  assertThrows(
    () => new CheckpointMonitor({ saveCheckpointStep: 5 } as never),
    /unknown option "saveCheckpointStep"; did you mean "saveCheckpointSteps"\?/,
  );
  assertThrows(
    () => new CheckpointConfig({ keepcheckpointmax: 2 } as never),
    /did you mean "keepCheckpointMax"\?/,
  );
  assertThrows(
    () => new CheckpointMonitor({ diretory: "x" } as never),
    /did you mean "directory"\?/,
  );
  assertThrows(
    () => new CheckpointMonitor({ colour: "x" } as never),
    (e: Error) =>
      e.message === 'Cannot configure checkpoints: unknown option "colour"',
  );
});

for (const scope of ["run", "prefix"] as const) {
  Deno.test(`retentionScope "${scope}": restarts with keepCheckpointMax 2 ${scope === "run" ? "keep 2 per run (MindFormers)" : "keep 2 in all"}`, async () => {
    await withTempDir(async (dir) => {
      const ckptDir = join(dir, "checkpoint/rank_0");
      await Deno.mkdir(ckptDir, { recursive: true });
      const foreign = [
        "CKP_rank_0-9_9_breakpoint.ckpt",
        "other_rank_0-1_1.ckpt",
      ];
      for (const f of foreign) await Deno.writeTextFile(join(ckptDir, f), "x");
      for (let runIndex = 0; runIndex < 3; runIndex++) {
        const m = monitor(dir, {
          keepCheckpointMax: 2,
          saveNetworkParams: false,
          retentionScope: scope,
        });
        await run(m, 1, 3);
        await m.close();
      }
      const kept = scope === "run"
        ? ["CKP_rank_0", "CKP_rank_0_1", "CKP_rank_0_2"].flatMap((p) => [
          `${p}-1_2.ckpt`,
          `${p}-1_3.ckpt`,
        ])
        : ["CKP_rank_0_2-1_2.ckpt", "CKP_rank_0_2-1_3.ckpt"];
      assertEquals(
        await names(ckptDir),
        [...foreign, ...kept, "meta.json"].sort(),
      );
      assertEquals(
        (await readMeta(dir)).files.map((f) => f.name),
        ["CKP_rank_0_2-1_2.ckpt", "CKP_rank_0_2-1_3.ckpt"],
      );
    });
  });
}

Deno.test('retentionScope "prefix" removes earlier runs\' files oldest run first', async () => {
  await withTempDir(async (dir) => {
    const removed: string[] = [];
    for (let runIndex = 0; runIndex < 2; runIndex++) {
      const m = monitor(dir, {
        keepCheckpointMax: 4,
        saveNetworkParams: false,
        retentionScope: "prefix",
        onRemoved: (d) => void removed.push(basename(d.file)),
      });
      await run(m, 1, 3);
      await m.close();
    }
    assertEquals(removed, ["CKP_rank_0-1_1.ckpt", "CKP_rank_0-1_2.ckpt"]);
  });
});
