// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, rejects, throws } from "node:assert/strict";
import {
  CheckpointMismatchError,
  loadCheckpoint,
  loadParamsInto,
  openCheckpoint,
  type Parameter,
  saveCheckpoint,
  type Tensor,
} from "../mod.ts";
import { withTempDir } from "./_helpers.ts";

function net(): Parameter[] {
  return [
    {
      name: "dense.weight",
      dtype: "Float32",
      shape: [2, 2],
      data: new Float32Array(4),
    },
    {
      name: "dense.bias",
      dtype: "Float64",
      shape: [2],
      data: new Float64Array(2),
    },
    {
      name: "global_step",
      dtype: "Int32",
      shape: [1],
      data: new Int32Array(1),
    },
    {
      name: "count",
      dtype: "Int64",
      shape: [],
      data: new BigInt64Array(1),
    },
  ];
}

function source(): Parameter[] {
  const n = net();
  (n[0]!.data as Float32Array).set([1, 2, 3, 4]);
  (n[1]!.data as Float64Array).set([-0.5, 0.25]);
  (n[2]!.data as Int32Array)[0] = 42;
  (n[3]!.data as BigInt64Array)[0] = 2n ** 60n;
  return n;
}

Deno.test("loadParamsInto copies into the network's own typed arrays, from a map and from a reader", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    await saveCheckpoint(path, source(), {
      appendInfo: { epoch_num: 1, step_num: 5 },
    });
    for (const mode of ["map", "reader"]) {
      const target = net();
      const arrays = target.map((p) => p.data);
      await using reader = await openCheckpoint(path);
      const ckpt = mode === "map" ? await loadCheckpoint(path) : reader;
      const r = await loadParamsInto(target, ckpt, { strict: true });
      deepEqual(r, {
        loaded: ["dense.weight", "dense.bias", "global_step", "count"],
        missing: [],
        unexpected: [],
      });
      deepEqual(target, source());
      target.forEach((p, i) => equal(p.data, arrays[i], "same array object"));
    }
  });
});

Deno.test("loadParamsInto reports missing and unexpected names, and strict refuses them before copying", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    const s = source();
    const extra: Tensor = { dtype: "Int8", shape: [1], data: new Int8Array(1) };
    await saveCheckpoint(
      path,
      new Map<string, Tensor>([
        ["dense.weight", s[0]!],
        ["moment1.dense.weight", s[0]!],
        ["extra", extra],
      ]),
      { appendInfo: { note: "hi", epoch_num: 3 } },
    );
    const ckpt = await loadCheckpoint(path);
    const target = net();
    const r = await loadParamsInto(target, ckpt);
    deepEqual(r.loaded, ["dense.weight"]);
    deepEqual(r.missing, ["dense.bias", "global_step", "count"]);
    deepEqual(r.unexpected, ["moment1.dense.weight", "extra", "note"]);
    deepEqual(Array.from(target[0]!.data as Float32Array), [1, 2, 3, 4]);

    const fresh = net();
    const e = await rejects(
      loadParamsInto(fresh, ckpt, { strict: true }),
      (e: unknown) =>
        e instanceof CheckpointMismatchError &&
        e.message.includes('"dense.bias"') && e.message.includes('"extra"'),
    );
    void e;
    deepEqual(fresh, net(), "nothing copied under strict");
    // ignore hides names from `unexpected`
    const r2 = await loadParamsInto(net(), ckpt, {
      ignore: ["note", "extra", "moment1.dense.weight"],
    });
    deepEqual(r2.unexpected, ["epoch_num"]);
  });
});

Deno.test("loadParamsInto names the parameter on a dtype or shape mismatch and copies nothing", async () => {
  const good = new Map<string, Tensor | string>(
    source().map((p) => [p.name, p]),
  );
  const cases: [string, Tensor | string, RegExp][] = [
    [
      "dense.bias",
      { dtype: "Float32", shape: [2], data: new Float32Array(2) },
      /"dense\.bias".*dtype Float64 in the network, Float32/,
    ],
    [
      "dense.weight",
      { dtype: "Float32", shape: [4], data: new Float32Array(4) },
      /"dense\.weight".*shape \[2, 2\] in the network, \[4\]/,
    ],
    ["count", "a string", /"count".*a string/],
  ];
  for (const [name, value, message] of cases) {
    const bad = new Map(good);
    bad.set(name, value);
    const target = net();
    await rejects(loadParamsInto(target, bad), (e: unknown) => {
      return e instanceof CheckpointMismatchError && e.parameter === name &&
        message.test(e.message);
    });
    deepEqual(target, net());
  }
});

Deno.test("loadParamsInto accepts records and Maps of tensors as the network", async () => {
  const ckpt = new Map<string, Tensor>(source().map((p) => [p.name, p]));
  const w = new Float32Array(4);
  await loadParamsInto({
    "dense.weight": { dtype: "Float32", shape: [2, 2], data: w },
  }, ckpt);
  deepEqual(Array.from(w), [1, 2, 3, 4]);
  const m = new Map<string, Tensor>([["dense.bias", {
    dtype: "Float64",
    shape: [2],
    data: new Float64Array(2),
  }]]);
  await loadParamsInto(m, ckpt);
  deepEqual(Array.from(m.get("dense.bias")!.data as Float64Array), [
    -0.5,
    0.25,
  ]);
});

Deno.test("loadParamsInto rejects bad arguments", async () => {
  await rejects(loadParamsInto(net(), {} as never), TypeError);
  await rejects(
    loadParamsInto(net(), new Map(), { strict: 1 as never }),
    TypeError,
  );
  throws(() => {
    throw new CheckpointMismatchError(null, "x");
  }, /Cannot load checkpoint into network: x/);
});

Deno.test("loadParamsInto from a reader joins a tensor split across .ckpt entries, straight into the network's bytes", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    await saveCheckpoint(path, source(), {
      splitSize: 8,
      appendInfo: { s: "x" },
    });
    await using reader = await openCheckpoint(path);
    const target = net();
    await loadParamsInto(target, reader, { strict: true, ignore: ["s"] });
    deepEqual(target, source());
    await rejects(reader.readInto("s", new Uint8Array(4)), RangeError);
    await rejects(
      reader.readInto("dense.bias", new Uint8Array(15)),
      RangeError,
    );
    await rejects(reader.readInto("nope", new Uint8Array(4)), RangeError);
  });
});
