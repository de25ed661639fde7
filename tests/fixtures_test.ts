// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok } from "node:assert/strict";
import {
  loadCheckpoint,
  openCheckpoint,
  saveCheckpoint,
  type Tensor,
  tensorBytes,
} from "../mod.ts";
import { FIXTURES, sha256, withTempDir } from "./_helpers.ts";

interface Expected {
  name: string;
  dtype: string;
  dims: number[];
  bytes: number;
  sha256: string;
  sum?: number;
}

const NAMES = ["golden_moe", "golden_router", "golden_sequential_mlp"];

async function expected(name: string): Promise<Expected[]> {
  const text = await Deno.readTextFile(`${FIXTURES}${name}.expected.jsonl`);
  return text.trim().split("\n").map((l) => JSON.parse(l) as Expected);
}

for (const name of NAMES) {
  Deno.test(`MindSpore fixture ${name}.ckpt loads with the expected names, dtypes, shapes, bytes and sums`, async () => {
    const want = await expected(name);
    const loaded = await loadCheckpoint(`${FIXTURES}${name}.ckpt`);
    deepEqual([...loaded.keys()], want.map((e) => e.name));
    for (const e of want) {
      const t = loaded.get(e.name) as Tensor;
      equal(typeof t, "object");
      equal(t.dtype, e.dtype);
      deepEqual(t.shape, e.dims);
      const bytes = tensorBytes(t);
      equal(bytes.byteLength, e.bytes);
      equal(await sha256(bytes), e.sha256);
      ok(t.data instanceof Float32Array);
      let sum = 0;
      for (const x of t.data) sum += x;
      // The expected sum is rounded to 6 decimals.
      ok(
        Math.abs(sum - e.sum!) <= 5e-6,
        `${e.name}: sum ${sum} differs from ${e.sum}`,
      );
    }
  });

  Deno.test(`MindSpore fixture ${name}.ckpt is re-encoded byte for byte`, async () => {
    const original = await Deno.readFile(`${FIXTURES}${name}.ckpt`);
    const loaded = await loadCheckpoint(`${FIXTURES}${name}.ckpt`);
    await withTempDir(async (dir) => {
      const network = new Map<string, Tensor>();
      for (const [k, v] of loaded) network.set(k, v as Tensor);
      const saved = await saveCheckpoint(`${dir}/${name}.ckpt`, network, {
        check: false,
      });
      equal(saved.bytes, original.byteLength);
      deepEqual(await Deno.readFile(saved.path), original);
    });
  });
}

Deno.test("openCheckpoint lists a MindSpore fixture's entries and reads one by name", async () => {
  const want = await expected("golden_moe");
  await using reader = await openCheckpoint(`${FIXTURES}golden_moe.ckpt`);
  equal(reader.format, "ckpt");
  deepEqual(
    reader.entries.map((e) => [e.name, e.dtype, e.shape, e.byteLength]),
    want.map((e) => [e.name, e.dtype, e.dims, e.bytes]),
  );
  const last = want[want.length - 1]!;
  const t = await reader.read(last.name) as Tensor;
  equal(await sha256(tensorBytes(t)), last.sha256);
});
