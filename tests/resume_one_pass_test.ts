// Copyright 2026 the @ckpt/monitor authors. MIT license.
// resume(): find + restore + verify in one pass over the file.

import { deepEqual, equal, ok } from "node:assert/strict";
import {
  CheckpointMonitor,
  type Parameter,
  resume,
  saveCheckpoint,
} from "../mod.ts";
import type { CheckpointStore } from "../src/store/store.ts";
import { countingStore, MemoryStore } from "./_memory_store.ts";
import { withTempDir } from "./_helpers.ts";

function network(n = 4_000_000): Parameter[] {
  return [
    { name: "w", dtype: "Float32", shape: [n], data: new Float32Array(n) },
    { name: "b", dtype: "Int32", shape: [3], data: new Int32Array(3) },
  ];
}

async function save(
  store: CheckpointStore,
  dir: string,
  steps: number[],
  key?: Uint8Array,
): Promise<void> {
  const net = network();
  const monitor = new CheckpointMonitor({
    directory: dir,
    store,
    saveCheckpointSteps: 1,
    saveNetworkParams: false,
    ...(key && { encKey: key }),
  });
  for (const step of steps) {
    (net[0]!.data as Float32Array).fill(step);
    (net[1]!.data as Int32Array).fill(-step);
    await monitor.onStepEnd({
      step,
      epoch: 1,
      stepsPerEpoch: 100,
      network: net,
    });
  }
  await monitor.close();
}

Deno.test("resume restores the newest checkpoint into the network, reading the file about once", async () => {
  const mem = new MemoryStore();
  await save(mem, "mem://run", [1, 2, 3]);
  const [store, read] = countingStore(mem);
  const net = network();
  const r = await resume("mem://run", {
    network: net,
    store,
    stepsPerEpoch: 100,
  });
  ok(r !== null);
  equal(r.step, 3);
  equal(r.context.initialStep, 3);
  deepEqual(r.restored.loaded, ["w", "b"]);
  equal((net[0]!.data as Float32Array)[777], 3);
  equal((net[1]!.data as Int32Array)[2], -3);
  const size = mem.files.get(r.files[0]!)!.bytes.byteLength;
  // One pass for data and checksum; the parse reads a 1 MiB window at each
  // header, and the resume context reads the append info.
  ok(read() < size * 1.2, `read ${read()} bytes of a ${size}-byte file`);
});

Deno.test("resume skips a candidate whose checksum fails and restores the next over it", async () => {
  const mem = new MemoryStore();
  await save(mem, "mem://run", [1, 2]);
  const newest = "mem://run/checkpoint/rank_0/CKP_rank_0-1_2.ckpt";
  mem.files.get(newest)!.bytes[5000]! ^= 0x10; // a value inside "w"
  const net = network();
  const r = await resume("mem://run", { network: net, store: mem });
  ok(r !== null);
  equal(r.step, 1);
  equal(r.skipped.length, 1);
  // The file's own check (or meta.json's CRC-32) refuses it in the pass.
  ok(
    ["checksum", "corrupt"].includes(r.skipped[0]!.kind),
    r.skipped[0]!.reason,
  );
  // Every value is the step-1 file's, none left from the damaged one.
  ok((net[0]!.data as Float32Array).every((x) => x === 1));
});

Deno.test("resume works on encrypted files and leaves the network alone for a fresh start", async () => {
  const mem = new MemoryStore();
  const key = new Uint8Array(32).fill(1);
  await save(mem, "mem://run", [4], key);
  const net = network();
  const r = await resume("mem://run", {
    network: net,
    store: mem,
    decKey: key,
  });
  equal(r?.step, 4);
  equal((net[0]!.data as Float32Array)[0], 4);
  await withTempDir(async (dir) => {
    const untouched = network();
    (untouched[0]!.data as Float32Array).fill(9);
    equal(await resume(dir, { network: untouched }), null);
    equal((untouched[0]!.data as Float32Array)[5], 9);
  });
});

Deno.test("resume skips a checkpoint of another model", async () => {
  const mem = new MemoryStore();
  await save(mem, "mem://run", [1]);
  await saveCheckpoint("mem://other/x.ckpt", network(5), { store: mem });
  const net = network(10);
  let error: unknown;
  try {
    await resume("mem://run", { network: net, store: mem });
  } catch (e) {
    error = e;
  }
  ok(
    error instanceof Error && /another model|shape/.test(error.message),
    String(error),
  );
});

Deno.test("resume restores a checkpoint whose append info holds a string (a note is not a stray parameter; a stray tensor still is)", async () => {
  const mem = new MemoryStore();
  const net = network(1000);
  (net[0]!.data as Float32Array).fill(7);
  const monitor = new CheckpointMonitor({
    directory: "mem://note",
    store: mem,
    saveNetworkParams: false,
    appendInfo: ["epoch_num", "step_num", { note: "warm-up done" }],
  });
  await monitor.onStepEnd({
    step: 1,
    epoch: 1,
    stepsPerEpoch: 10,
    network: net,
  });
  await monitor.close();
  const back = network(1000);
  const r = await resume("mem://note", { network: back, store: mem });
  ok(r !== null);
  equal((back[0]!.data as Float32Array)[999], 7);
  // One parameter fewer: the checkpoint's "b" is a stray tensor, refused.
  await resume("mem://note", { network: back.slice(0, 1), store: mem }).then(
    () => ok(false, "resumed with a stray tensor"),
    (e: Error) => ok(/the network lacks "b"/.test(e.message), e.message),
  );
});
