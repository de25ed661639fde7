// Copyright 2026 the @ckpt/monitor authors. MIT license.
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { join } from "node:path";
import {
  type CheckpointErrorDetail,
  CheckpointMismatchError,
  CheckpointMonitor,
  type CheckpointMonitorOptions,
  type CheckpointSavedDetail,
  CorruptCheckpointError,
  type DType,
  EncryptionMismatchError,
  findResumeCheckpoint,
  loadCheckpoint,
  loadParamsInto,
  mergeSlicedCheckpoints,
  type Network,
  networkParameters,
  openCheckpoint,
  type Parameter,
  type ParameterSlice,
  saveCheckpoint,
  type Tensor,
  train,
} from "../mod.ts";
import { SliceAssembler } from "../src/tensor/_slices.ts";
import { withTempDir } from "./_helpers.ts";

/** A whole tensor whose element k is k + 1 (so every element differs). */
function iota(shape: number[]): Float32Array {
  let n = 1;
  for (const d of shape) n *= d;
  return Float32Array.from({ length: n }, (_, k) => k + 1);
}

/** The slice of `whole` (shape `global`) at `offset` with shape `shape`. */
function cut(
  whole: Float32Array,
  global: number[],
  offset: number[],
  shape: number[],
): Float32Array {
  const out: number[] = [];
  const walk = (dim: number, at: number) => {
    if (dim === shape.length) return void out.push(whole[at]!);
    let stride = 1;
    for (let i = dim + 1; i < global.length; i++) stride *= global[i]!;
    for (let i = 0; i < shape[dim]!; i++) {
      walk(dim + 1, at + (offset[dim]! + i) * stride);
    }
  };
  walk(0, 0);
  return Float32Array.from(out);
}

/** Assembles `parts` (offset, shape) of an iota tensor of `global`. */
function assemble(
  global: number[],
  parts: [offset: number[], shape: number[]][],
  tamper?: (data: Float32Array, part: number) => void,
): Float32Array {
  const whole = iota(global);
  const a = new SliceAssembler('parameter "w"', global, 4);
  for (const [i, [offset, shape]] of parts.entries()) {
    const data = cut(whole, global, offset, shape);
    tamper?.(data, i);
    a.add(
      new Uint8Array(data.buffer),
      shape,
      { globalShape: global, offset },
      `rank ${i}`,
    );
  }
  return new Float32Array(a.finish().buffer);
}

// --------------------------------------------------------- validation ---

Deno.test("a parameter's slice is checked when the network is read, naming the parameter", () => {
  const p = (slice: unknown, shape = [2, 4]): Parameter =>
    ({
      name: "w",
      dtype: "Float32",
      shape,
      data: new Float32Array(shape[0]! * shape[1]!),
      slice,
    }) as Parameter;
  const good = networkParameters([
    p({ globalShape: [6, 4], offset: [2, 0] }),
  ]);
  deepEqual(good[0]!.slice, { globalShape: [6, 4], offset: [2, 0] });
  const bad: [unknown, ErrorConstructor, RegExp][] = [
    [null, TypeError, /slice of parameter "w": expected an object/],
    [{ globalShape: [6, 4] }, TypeError, /"offset" must be an array/],
    [{ globalShape: "6,4", offset: [0, 0] }, TypeError, /"globalShape"/],
    [{ globalShape: [6, 4], offset: [-1, 0] }, RangeError, /non-negative/],
    [{ globalShape: [6, 4], offset: [0.5, 0] }, RangeError, /non-negative/],
    [{ globalShape: [6, 4, 1], offset: [0, 0, 0] }, RangeError, /lengths/],
    [{ globalShape: [6, 4], offset: [0] }, RangeError, /lengths/],
    [
      { globalShape: [6, 4], offset: [5, 0] },
      RangeError,
      /parameter "w": offset \[5, 0\] plus shape \[2, 4\] goes past global shape \[6, 4\] in dimension 0/,
    ],
  ];
  for (const [slice, type, message] of bad) {
    throws(() => networkParameters([p(slice)]), (e: Error) => {
      ok(e instanceof type, `${JSON.stringify(slice)}: ${e}`);
      match(e.message, message);
      return true;
    });
  }
});

Deno.test("a monitor rejects rankSize 0, a fraction, or a rank not below it", async () => {
  await withTempDir(async (directory) => {
    throws(() => new CheckpointMonitor({ directory, rankSize: 0 }), RangeError);
    throws(
      () => new CheckpointMonitor({ directory, rankSize: 1.5 }),
      RangeError,
    );
    throws(
      () => new CheckpointMonitor({ directory, rankSize: "2" as never }),
      TypeError,
    );
    throws(
      () => new CheckpointMonitor({ directory, rank: 2, rankSize: 2 }),
      /rank 2 must be below rankSize 2/,
    );
    const m = new CheckpointMonitor({ directory, rank: 1, rankSize: 2 });
    equal(m.rankSize, 2);
    await m.close();
  });
});

// ----------------------------------------------------------- assembly ---

Deno.test("assembling: 2-D row and column splits, a 3-D split, uneven parts", () => {
  const cases: [number[], [number[], number[]][]][] = [
    [[6, 4], [[[0, 0], [2, 4]], [[2, 0], [2, 4]], [[4, 0], [2, 4]]]],
    [[3, 4], [[[0, 0], [3, 1]], [[0, 1], [3, 3]]]],
    [[2, 3, 4], [[[0, 0, 0], [2, 1, 4]], [[0, 1, 0], [2, 2, 4]]]],
    [[2, 3, 4], [
      [[0, 0, 0], [1, 3, 2]],
      [[0, 0, 2], [1, 3, 2]],
      [[1, 0, 0], [1, 3, 4]],
    ]],
    [[], [[[], []]]],
    [[0, 3], [[[0, 0], [0, 3]]]],
  ];
  for (const [global, parts] of cases) {
    deepEqual(
      Array.from(assemble(global, parts)),
      Array.from(iota(global)),
      `global ${global}`,
    );
  }
});

Deno.test("assembling: replicated slices may overlap when identical; different values there, or a gap, are errors naming the element", () => {
  const global = [4, 2];
  const halves: [number[], number[]][] = [[[0, 0], [2, 2]], [[2, 0], [2, 2]]];
  // Two ranks hold the same rows (data parallel inside tensor parallel).
  deepEqual(
    Array.from(
      assemble(global, [...halves, [[0, 0], [2, 2]], [[1, 0], [3, 2]]]),
    ),
    Array.from(iota(global)),
  );
  throws(
    () =>
      assemble(global, [...halves, [[1, 0], [2, 2]]], (d, i) => {
        if (i === 2) d[3] = -1;
      }),
    /parameter "w": the slice at offset \[1, 0\] from rank 2 overlaps another slice with a different value at element \[2, 1\]/,
  );
  throws(
    () => assemble(global, [[[0, 0], [2, 2]], [[3, 0], [1, 2]]]),
    /parameter "w": element \[2, 0\] of global shape \[4, 2\] is in no rank's slice/,
  );
});

// --------------------------------------------------- merging files ---

/** Saves one file per rank: `w` row-split over the ranks, `b` whole. */
async function saveRanks(
  dir: string,
  ranks: number,
  options: { dtype?: (rank: number) => DType; encKey?: Uint8Array } = {},
): Promise<{ files: string[]; slices: Record<string, ParameterSlice>[] }> {
  const global = [ranks * 2, 3];
  const whole = iota(global);
  const files: string[] = [];
  const slices: Record<string, ParameterSlice>[] = [];
  for (let r = 0; r < ranks; r++) {
    const slice = { globalShape: global, offset: [2 * r, 0] };
    const data = cut(whole, global, slice.offset, [2, 3]);
    const dtype = options.dtype?.(r) ?? "Float32";
    const w = dtype === "Float32"
      ? { dtype, shape: [2, 3], data }
      : { dtype, shape: [2, 3], data: Float64Array.from(data) };
    const b = { dtype: "Int32", shape: [2], data: Int32Array.of(7, 8) };
    const path = join(dir, `r${r}.ckpt`);
    await saveCheckpoint(path, { w, b } as Record<string, Tensor>, {
      appendInfo: { epoch_num: 3, note: "hi" },
      ...(options.encKey && { encKey: options.encKey }),
    });
    files.push(path);
    slices.push({ w: slice });
  }
  return { files, slices };
}

Deno.test("mergeSlicedCheckpoints writes the whole tensors, unsliced entries and append info from the first file, in its order", async () => {
  await withTempDir(async (dir) => {
    const { files, slices } = await saveRanks(dir, 3);
    const out = join(dir, "whole.ckpt");
    const result = await mergeSlicedCheckpoints(files, out, { slices });
    deepEqual(result.merged, ["w"]);
    const m = await loadCheckpoint(out);
    deepEqual([...m.keys()], ["w", "b", "epoch_num", "note"]);
    const w = m.get("w") as Tensor;
    deepEqual(w.shape, [6, 3]);
    deepEqual(Array.from(w.data as Float32Array), Array.from(iota([6, 3])));
    deepEqual(Array.from((m.get("b") as Tensor).data as Int32Array), [7, 8]);
    equal(m.get("note"), "hi");
  });
});

Deno.test("mergeSlicedCheckpoints refuses what would be a wrong merge, naming the parameter or file", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "whole.ckpt");
    const dtypes = await saveRanks(dir, 2, {
      dtype: (r) => r === 1 ? "Float64" : "Float32",
    });
    await rejects(
      mergeSlicedCheckpoints(dtypes.files, out, { slices: dtypes.slices }),
      /parameter "w" is Float32 in ".*r0\.ckpt" and Float64 in ".*r1\.ckpt"/,
    );
    const { files, slices } = await saveRanks(dir, 2);
    // No layout: the files' folder has no meta.json.
    await rejects(
      mergeSlicedCheckpoints(files, out),
      /slice layout of ".*r0\.ckpt" is unknown: .*meta\.json does not list it/,
    );
    // Layouts saying nothing is sliced: equal-shaped slices must not pass
    // as one replicated tensor.
    await rejects(
      mergeSlicedCheckpoints(files, out, { slices: [{}, {}] }),
      /none of the 2 files records a sliced parameter/,
    );
    await rejects(
      mergeSlicedCheckpoints(files, out, {
        slices: [slices[0]!, { w: { globalShape: [4, 3], offset: [0, 0] } }],
      }),
      /parameter "w": the slice at offset \[0, 0\] from rank 1 \(".*r1\.ckpt"\) overlaps/,
    );
    await rejects(
      mergeSlicedCheckpoints(files, out, {
        slices: [slices[0]!, { w: { globalShape: [5, 3], offset: [2, 0] } }],
      }),
      /global shape \[4, 3\] in ".*r0\.ckpt" and \[5, 3\]/,
    );
    await rejects(
      mergeSlicedCheckpoints(files, out, {
        slices: [slices[0]!, { w: { globalShape: [4, 3], offset: [3, 0] } }],
      }),
      RangeError,
    );
    await rejects(
      mergeSlicedCheckpoints(files, out, {
        slices: [slices[0]!, { v: { globalShape: [4, 3], offset: [2, 0] } }],
      }),
      /records a slice of "v", which the file lacks/,
    );
    await rejects(mergeSlicedCheckpoints([files[0]!], files[0]!), RangeError);
    await rejects(mergeSlicedCheckpoints([], out), TypeError);
    await rejects(Deno.stat(out), Deno.errors.NotFound);
  });
});

Deno.test("mergeSlicedCheckpoints: an unsliced entry that differs in shape, or is missing, between files is an error", async () => {
  await withTempDir(async (dir) => {
    const { files, slices } = await saveRanks(dir, 2);
    const w = (r: number) => ({
      dtype: "Float32" as const,
      shape: [2, 3],
      data: cut(iota([4, 3]), [4, 3], [2 * r, 0], [2, 3]),
    });
    const odd = join(dir, "odd.ckpt");
    await saveCheckpoint(odd, {
      w: w(1),
      b: { dtype: "Int32", shape: [3], data: new Int32Array(3) },
    }, { appendInfo: { epoch_num: 3, note: "hi" } });
    await rejects(
      mergeSlicedCheckpoints([files[0]!, odd], join(dir, "o.ckpt"), { slices }),
      /"b" is not sliced, yet it is Int32 \[2\] in ".*r0\.ckpt" and Int32 \[3\] in ".*odd\.ckpt"/,
    );
    const lacking = join(dir, "lacking.ckpt");
    await saveCheckpoint(lacking, { w: w(1) }, {
      appendInfo: { epoch_num: 3, note: "hi" },
    });
    await rejects(
      mergeSlicedCheckpoints([files[0]!, lacking], join(dir, "o.ckpt"), {
        slices,
      }),
      /"b" is not sliced and is in ".*r0\.ckpt" but not in ".*lacking\.ckpt"/,
    );
  });
});

Deno.test("mergeSlicedCheckpoints reads encrypted ranks with decKey and encrypts the merged file with encKey", async () => {
  await withTempDir(async (dir) => {
    const key = crypto.getRandomValues(new Uint8Array(16));
    const { files, slices } = await saveRanks(dir, 2, { encKey: key });
    const out = join(dir, "whole.ckpt");
    await rejects(
      mergeSlicedCheckpoints(files, out, { slices }),
      EncryptionMismatchError,
    );
    await mergeSlicedCheckpoints(files, out, {
      slices,
      decKey: key,
      encKey: key,
      encMode: "AES-GCM",
    });
    await rejects(loadCheckpoint(out), EncryptionMismatchError);
    const w = (await loadCheckpoint(out, { decKey: key })).get("w") as Tensor;
    deepEqual(Array.from(w.data as Float32Array), Array.from(iota([4, 3])));
    await rejects(
      mergeSlicedCheckpoints(files, join(dir, "x.ckpt"), {
        slices,
        decKey: key,
        encKey: new Uint8Array(5),
      }),
      /option "encKey"/,
    );
  });
});

// --------------------------------------------------------- restoring ---

Deno.test("loadParamsInto reads a slice out of a whole tensor, from a map and from a reader; the slice itself loads as before; another shape is a mismatch", async () => {
  await withTempDir(async (dir) => {
    const global = [4, 6];
    const whole = join(dir, "whole.ckpt");
    await saveCheckpoint(whole, {
      w: { dtype: "Float32", shape: global, data: iota(global) },
    });
    const part = (offset: number[], shape: number[]): Parameter => ({
      name: "w",
      dtype: "Float32",
      shape,
      data: new Float32Array(shape[0]! * shape[1]!),
      slice: { globalShape: global, offset },
    });
    for (const mode of ["map", "reader"] as const) {
      for (const [offset, shape] of [[[2, 0], [2, 6]], [[1, 2], [3, 3]]]) {
        const p = part(offset!, shape!);
        const ckpt = mode === "map"
          ? await loadCheckpoint(whole)
          : await openCheckpoint(whole);
        try {
          deepEqual(await loadParamsInto([p], ckpt, { strict: true }), {
            loaded: ["w"],
            missing: [],
            unexpected: [],
          });
        } finally {
          if (!(ckpt instanceof Map)) await ckpt.close();
        }
        deepEqual(
          Array.from(p.data as Float32Array),
          Array.from(cut(iota(global), global, offset!, shape!)),
          `${mode} ${offset}`,
        );
      }
    }
    // A rank file holding the slice itself.
    const own = join(dir, "own.ckpt");
    const slice = cut(iota(global), global, [2, 0], [2, 6]);
    await saveCheckpoint(own, {
      w: { dtype: "Float32", shape: [2, 6], data: slice },
    });
    const p = part([2, 0], [2, 6]);
    await loadParamsInto([p], await loadCheckpoint(own));
    deepEqual(Array.from(p.data as Float32Array), Array.from(slice));
    // Neither the slice's shape nor the global one.
    const other = part([0, 0], [1, 6]);
    await rejects(
      loadParamsInto([other], await loadCheckpoint(own)),
      (e: Error) => {
        ok(e instanceof CheckpointMismatchError);
        equal(e.parameter, "w");
        match(
          e.message,
          /shape \[1, 6\] \(a slice of global shape \[4, 6\]\) in the network, \[2, 6\] in the checkpoint/,
        );
        return true;
      },
    );
    deepEqual(Array.from(other.data as Float32Array), [0, 0, 0, 0, 0, 0]);
  });
});

// ------------------------------------------- monitors in one process ---

/** One rank's network: rows [2r, 2r+2) of a 6×2 weight, a whole bias. */
function rankNet(rank: number, ranks = 3) {
  const w: Parameter<"Float32"> = {
    name: "w",
    dtype: "Float32",
    shape: [6 / ranks, 2],
    data: new Float32Array(12 / ranks),
    slice: { globalShape: [6, 2], offset: [rank * (6 / ranks), 0] },
  };
  const b: Parameter<"Float32"> = {
    name: "b",
    dtype: "Float32",
    shape: [2],
    data: new Float32Array(2),
  };
  const fill = (step: number) => {
    w.data.forEach((_, k) => w.data[k] = step * 100 + rank * 4 + k);
    b.data.set([step, -step]);
  };
  return { network: [w, b], fill };
}

function wholeAt(step: number): number[] {
  return Array.from({ length: 12 }, (_, k) => step * 100 + k);
}

/** Trains `steps` steps of `network` with a monitor (no network file). */
async function trainRank(
  options: CheckpointMonitorOptions,
  network: Network,
  steps = 1,
): Promise<CheckpointMonitor> {
  const monitor = new CheckpointMonitor({
    saveNetworkParams: false,
    ...options,
  });
  await train({
    epochs: 1,
    stepsPerEpoch: steps,
    network,
    step: () => {},
    callbacks: [monitor],
  });
  return monitor;
}

const AES_KEY = crypto.getRandomValues(new Uint8Array(16));
const VARIANTS: [string, CheckpointMonitorOptions][] = [
  ["", {}],
  [" with asyncSave", { asyncSave: true }],
  [" in safetensors", { format: "safetensors" }],
  [" encrypted (AES-CBC)", { encKey: AES_KEY, encMode: "AES-CBC" }],
];
for (const [label, variant] of VARIANTS) {
  const ext = variant.format ?? "ckpt";
  const key = variant.encKey === undefined
    ? {}
    : { decKey: AES_KEY, decMode: variant.encMode! };
  Deno.test(
    `monitors of 3 ranks in one folder${label}: the last rank to commit a step assembles it once into checkpoint/integrated/, with its meta.json and retention, after removing a crashed merge's leftovers`,
    async () => {
      await withTempDir(async (directory) => {
        const saved: CheckpointSavedDetail[] = [];
        const errors: unknown[] = [];
        const ranks = [0, 1, 2].map((rank) => {
          const monitor = new CheckpointMonitor({
            directory,
            rank,
            rankSize: 3,
            keepCheckpointMax: 2,
            saveNetworkParams: false,
            ...variant,
            onSaved: (d) => void saved.push(d),
            onError: (d) => void errors.push(d.error),
          });
          return { monitor, ...rankNet(rank) };
        });
        // What a merge killed mid-write would leave: the next merge removes it.
        const dir = join(directory, "checkpoint", "integrated");
        await Deno.mkdir(dir, { recursive: true });
        await Deno.writeTextFile(
          join(dir, ".CKP-1_9.ckpt.0123456789ab.tmp"),
          "",
        );
        // Rank by rank, each one step behind the one before.
        for (let step = 1; step <= 3; step++) {
          for (const { monitor, network, fill } of ranks) {
            fill(step);
            await monitor.onStepEnd({
              step,
              epoch: 1,
              stepsPerEpoch: 10,
              network,
            });
            await monitor.flush();
          }
        }
        for (const { monitor } of ranks) await monitor.close();
        deepEqual(errors, []);
        const integrated = saved.filter((d) => d.kind === "integrated");
        deepEqual(
          integrated.map((d) => [d.file.split("/").pop(), d.step]),
          [1, 2, 3].map((step) => [`CKP-1_${step}.${ext}`, step]),
        );
        const meta = JSON.parse(
          await Deno.readTextFile(join(dir, "meta.json")),
        );
        equal(meta.last_ckpt_file, `CKP-1_3.${ext}`);
        equal(meta.ranks, 3);
        equal(meta.enc_mode, variant.encMode ?? null);
        deepEqual(meta.files.map((f: { name: string }) => f.name), [
          `CKP-1_2.${ext}`,
          `CKP-1_3.${ext}`,
        ]);
        deepEqual(
          meta.files[1].sources.map((s: { name: string }) => s.name),
          [0, 1, 2].map((r) => `CKP_rank_${r}-1_3.${ext}`),
        );
        const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
        deepEqual(names, [
          ".lock",
          `CKP-1_2.${ext}`,
          `CKP-1_3.${ext}`,
          "meta.json",
        ]);
        if (variant.encKey !== undefined) {
          await rejects(
            loadCheckpoint(join(dir, `CKP-1_3.${ext}`)),
            EncryptionMismatchError,
          );
        }
        const found = await findResumeCheckpoint(directory, key);
        equal(found?.integrated, join(dir, `CKP-1_3.${ext}`));
        const m = await loadCheckpoint(join(dir, `CKP-1_3.${ext}`), key);
        deepEqual(
          Array.from((m.get("w") as Tensor<"Float32">).data),
          wholeAt(3),
        );
        deepEqual(Array.from((m.get("b") as Tensor<"Float32">).data), [3, -3]);
        const rankMeta = JSON.parse(
          await Deno.readTextFile(
            join(directory, "checkpoint", "rank_1", "meta.json"),
          ),
        );
        deepEqual(rankMeta.files[1].slices, {
          w: { globalShape: [6, 2], offset: [2, 0] },
        });
        // A damaged integrated file is passed over with a warning; the rank
        // files are still the resume point.
        const file = join(dir, `CKP-1_3.${ext}`);
        await Deno.chmod(file, 0o600);
        const bytes = await Deno.readFile(file);
        bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
        await Deno.writeFile(file, bytes);
        const after = await findResumeCheckpoint(directory, key);
        equal(after?.integrated, undefined);
        equal(after?.files.length, 3);
        match(
          after!.warnings.join("\n"),
          /CKP-1_3.* does not verify: .*checksum/,
        );
      });
    },
  );
}

Deno.test("a merge that fails (slices leave a gap) is an error event naming the integrated file; every rank's save stands", async () => {
  await withTempDir(async (directory) => {
    const errors: { error: unknown; file: string }[] = [];
    // Rank 1 claims rows 4-5 of a 6-row tensor: rows 2-3 are nobody's.
    for (const rank of [0, 1]) {
      await trainRank(
        { directory, rank, rankSize: 2, onError: (d) => void errors.push(d) },
        rankNet(rank === 0 ? 0 : 2).network,
      );
    }
    equal(errors.length, 1);
    match(errors[0]!.file, /checkpoint\/integrated\/CKP-1_1\.ckpt$/);
    match(
      String(errors[0]!.error),
      /element \[2, 0\] .* is in no rank's slice/,
    );
    for (const rank of [0, 1]) {
      const file = join(
        directory,
        `checkpoint/rank_${rank}/CKP_rank_${rank}-1_1.ckpt`,
      );
      equal((await loadCheckpoint(file)).has("w"), true);
    }
    const left = [...Deno.readDirSync(join(directory, "checkpoint/integrated"))]
      .map((e) => e.name);
    deepEqual(left, [".lock"]);
  });
});

Deno.test("without rankSize, a rank above 0 with slices saves its files and says once that it cannot merge; rank 0 merges alone and its gap error says to set rankSize", async () => {
  await withTempDir(async (directory) => {
    const errors: unknown[] = [];
    const onError = (d: CheckpointErrorDetail) => void errors.push(d.error);
    const monitor = await trainRank(
      { directory, rank: 1, onError },
      rankNet(1).network,
      3,
    );
    equal(errors.length, 1);
    match(String(errors[0]), /set option "rankSize" or env "RANK_SIZE"/);
    equal(monitor.checkpoints.length, 3);
    // Rank 0 counts as a run of 1: its third of the rows leaves a gap, and
    // the error says what to set.
    await trainRank({ directory, rank: 0, onError }, rankNet(0).network);
    equal(errors.length, 2);
    match(
      String(errors[1]),
      /is in no rank's slice .*rankSize was not set and counts 1 for rank 0/,
    );
  });
});

Deno.test("integratedSave false, or no sliced parameter: nothing is merged; meta.json records slices only when there are some; a file changed since meta.json recorded it does not merge", async () => {
  await withTempDir(async (directory) => {
    const run = async (
      folder: string,
      options: CheckpointMonitorOptions,
      network: Network,
    ) => {
      await trainRank(
        { directory: join(directory, folder), ...options },
        network,
      );
      await rejects(
        Deno.stat(join(directory, folder, "checkpoint/integrated")),
        Deno.errors.NotFound,
      );
      const rank0 = join(directory, folder, "checkpoint/rank_0");
      const meta = JSON.parse(
        await Deno.readTextFile(join(rank0, "meta.json")),
      );
      return { meta, file: join(rank0, meta.files[0].name) };
    };
    const off = await run(
      "off",
      { integratedSave: false },
      rankNet(0, 1).network,
    );
    deepEqual(off.meta.files[0].slices, {
      w: { globalShape: [6, 2], offset: [0, 0] },
    });
    const whole = await run("whole", {}, { b: rankNet(0).network[1]! });
    equal("slices" in whole.meta.files[0], false);
    await rejects(
      mergeSlicedCheckpoints([whole.file], join(directory, "x.ckpt")),
      /nothing to merge/,
    );
    // The layout comes from meta.json, and so do the size and checksum.
    const out = join(directory, "merged.ckpt");
    await mergeSlicedCheckpoints([off.file], out);
    deepEqual(((await loadCheckpoint(out)).get("w") as Tensor).shape, [6, 2]);
    await Deno.chmod(off.file, 0o600);
    const bytes = await Deno.readFile(off.file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    await Deno.writeFile(off.file, bytes);
    await rejects(
      mergeSlicedCheckpoints([off.file], join(directory, "y.ckpt")),
      (e: Error) => {
        ok(e instanceof CorruptCheckpointError, String(e));
        match(e.message, /checksum is crc32:[0-9a-f]+, meta.json records/);
        return true;
      },
    );
  });
});
