// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The storage seam: every store passes the same conformance steps, and the
// library's save / load / verify / resume / merge work through a store that
// is not the local disk (an in-memory double) with nothing on disk.

import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import {
  basenamePath,
  checksumFile,
  dirnamePath,
  findResumeCheckpoint,
  joinPath,
  loadCheckpoint,
  localStore,
  mergeSlicedCheckpoints,
  openCheckpoint,
  type Parameter,
  saveCheckpoint,
  storeFor,
  verifyCheckpoint,
} from "../mod.ts";
import { MemoryStore } from "./_memory_store.ts";
import { storeConformance } from "./_store_conformance.ts";
import { withTempDir } from "./_helpers.ts";

Deno.test("the local store passes the store conformance steps", async (t) => {
  await withTempDir((dir) => storeConformance(t, localStore, dir));
});

Deno.test("the in-memory test store passes the same steps", async (t) => {
  await storeConformance(t, new MemoryStore(), "mem://root");
});

Deno.test("path helpers keep a scheme and use / everywhere", () => {
  equal(joinPath("s3://bucket", "run", "rank_0"), "s3://bucket/run/rank_0");
  equal(joinPath("/a/", "b", "", ".", "c"), "/a/b/c");
  equal(joinPath(".", "x"), "x");
  equal(dirnamePath("s3://bucket/run/x.ckpt"), "s3://bucket/run");
  equal(dirnamePath("opfs:/run/x.ckpt"), "opfs:/run");
  equal(dirnamePath("/x.ckpt"), "/");
  equal(dirnamePath("x.ckpt"), ".");
  equal(dirnamePath("C:/run/x.ckpt"), "C:/run");
  equal(basenamePath("s3://bucket/run/x.ckpt"), "x.ckpt");
  equal(basenamePath("/a/b/"), "b");
});

Deno.test("a path with a scheme no store serves is a TypeError naming it", () => {
  throws(() => storeFor("nosuch://b/x.ckpt"), /no store serves "nosuch:"/);
  equal(storeFor("/tmp/x.ckpt"), localStore);
  const mem = new MemoryStore();
  equal(storeFor("nosuch://b/x.ckpt", mem), mem);
});

function network(step: number): Parameter[] {
  return [
    {
      name: "w",
      dtype: "Float32",
      shape: [2, 3],
      data: new Float32Array([1, 2, 3, 4, 5, 6].map((x) => x * step)),
    },
    {
      name: "b",
      dtype: "Int32",
      shape: [3],
      data: new Int32Array([step, 0, -step]),
    },
  ];
}

Deno.test("save, open, load, verify and checksum go through the given store only", async () => {
  const store = new MemoryStore();
  const path = "mem://run/model.ckpt";
  const saved = await saveCheckpoint(path, network(2), {
    store,
    appendInfo: { step_num: 7 },
  });
  ok(store.files.has(path));
  equal(await checksumFile(path, store), saved.checksum);
  const loaded = await loadCheckpoint(path, { store });
  deepEqual(
    [...(loaded.get("w") as { data: Float32Array }).data],
    [2, 4, 6, 8, 10, 12],
  );
  await using reader = await openCheckpoint(path, { store });
  deepEqual(reader.entries.map((e) => e.name), ["w", "b", "step_num"]);
  const good = await verifyCheckpoint(path, { store, expected: saved });
  equal(good.ok, true);
  // Flip one byte in the stored copy: the checksum catches it.
  store.files.get(path)!.bytes[40]! ^= 1;
  const bad = await verifyCheckpoint(path, { store, expected: saved });
  equal(bad.ok, false);
  if (!bad.ok) equal(bad.kind, "checksum");
  ok(store.calls.every((c) => c.split(" ")[1]!.startsWith("mem://")));
});

Deno.test("encrypted and safetensors files round-trip through the store", async () => {
  const store = new MemoryStore();
  const key = new Uint8Array(32).fill(3);
  await saveCheckpoint("mem://run/e.ckpt", network(3), {
    store,
    encKey: key,
    encMode: "AES-GCM",
  });
  const e = await loadCheckpoint("mem://run/e.ckpt", { store, decKey: key });
  deepEqual([...(e.get("b") as { data: Int32Array }).data], [3, 0, -3]);
  await saveCheckpoint("mem://run/s.safetensors", network(4), {
    store,
    format: "safetensors",
  });
  const s = await loadCheckpoint("mem://run/s.safetensors", { store });
  deepEqual([...(s.get("b") as { data: Int32Array }).data], [4, 0, -4]);
});

Deno.test("a failed save through the store commits nothing", async () => {
  const store = new MemoryStore();
  store.failAfterBytes = 50;
  await rejects(
    saveCheckpoint("mem://run/f.ckpt", network(1), { store }),
    /injected failure/,
  );
  equal(store.files.size, 0);
  equal(store.inFlight.size, 0);
});

Deno.test("findResumeCheckpoint and mergeSlicedCheckpoints work on the store alone", async () => {
  const store = new MemoryStore();
  const dir = "mem://run/checkpoint/rank_0";
  await store.ensureDir(dir);
  for (const step of [5, 10]) {
    await saveCheckpoint(
      joinPath(dir, `CKP_rank_0-1_${step}.ckpt`),
      network(step),
      {
        store,
        appendInfo: { epoch_num: 1, step_num: step },
      },
    );
  }
  // Damage the newest: resume falls back to step 5 and says why.
  const newest = store.files.get(joinPath(dir, "CKP_rank_0-1_10.ckpt"))!;
  newest.bytes = newest.bytes.subarray(0, newest.bytes.byteLength - 3);
  const found = await findResumeCheckpoint("mem://run", { store });
  ok(found !== null);
  equal(found.step, 5);
  equal(basenamePath(found.files[0]!), "CKP_rank_0-1_5.ckpt");
  equal(found.skipped.length, 1);
  equal(dirnamePath(found.files[0]!), dir);

  // Two row slices of one matrix, merged into a whole one in the store.
  const half = (row: number): Parameter[] => [{
    name: "m",
    dtype: "Float32",
    shape: [1, 2],
    data: new Float32Array([row * 2 + 1, row * 2 + 2]),
    slice: { globalShape: [2, 2], offset: [row, 0] },
  }];
  await saveCheckpoint("mem://m/r0.ckpt", half(0), { store });
  await saveCheckpoint("mem://m/r1.ckpt", half(1), { store });
  const layout = (row: number) => ({
    m: { globalShape: [2, 2], offset: [row, 0] },
  });
  await mergeSlicedCheckpoints(
    ["mem://m/r0.ckpt", "mem://m/r1.ckpt"],
    "mem://m/whole.ckpt",
    { store, slices: [layout(0), layout(1)] },
  );
  const whole = await loadCheckpoint("mem://m/whole.ckpt", { store });
  deepEqual([...(whole.get("m") as { data: Float32Array }).data], [1, 2, 3, 4]);
});
