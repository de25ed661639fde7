// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, notEqual, ok, throws } from "node:assert/strict";
import { SnapshotArena, viewTensor } from "../src/background/snapshot.ts";
import type { Tensor } from "../src/tensor/types.ts";

function f32(...v: number[]): Tensor<"Float32"> {
  return { dtype: "Float32", shape: [v.length], data: Float32Array.from(v) };
}

function zeros(n: number): Tensor<"Float32"> {
  return { dtype: "Float32", shape: [n], data: new Float32Array(n) };
}

Deno.test("a snapshot is a true copy: mutating the source afterwards changes nothing", () => {
  const arena = new SnapshotArena();
  const a = f32(1, 2, 3);
  const b: Tensor = {
    dtype: "Int64",
    shape: [2],
    data: BigInt64Array.of(5n, -6n),
  };
  const snap = arena.snapshot([a, b]);
  a.data.fill(9);
  (b.data as BigInt64Array).fill(0n);
  deepEqual(
    Array.from(viewTensor(snap.buffers, snap.refs[0]!).data as Float32Array),
    [1, 2, 3],
  );
  deepEqual(
    Array.from(viewTensor(snap.buffers, snap.refs[1]!).data as BigInt64Array),
    [5n, -6n],
  );
  equal(snap.bytes, 12 + 16);
});

Deno.test("the same model lands in the same memory every time: no new buffer after the first snapshot", () => {
  const arena = new SnapshotArena({ slabSize: 1 << 20 });
  const model = [zeros(100_000), zeros(300_000), f32(1)];
  const first = arena.snapshot(model);
  const capacity = arena.capacity;
  arena.restore(first.buffers);
  for (let i = 0; i < 3; i++) {
    const again = arena.snapshot(model);
    deepEqual(again.refs, first.refs);
    ok(again.buffers.every((b, j) => b === first.buffers[j]));
    arena.restore(again.buffers);
  }
  equal(arena.capacity, capacity);
});

Deno.test("the arena grows only when the model grows, and a tensor larger than a slab gets its own", () => {
  const arena = new SnapshotArena({ slabSize: 1 << 20 });
  const small = arena.snapshot([zeros(1000)]);
  const before = arena.capacity;
  ok(before < 1 << 20, "a small model gets a small slab");
  arena.restore(small.buffers);
  const big = zeros(1 << 20); // 4 MiB: larger than a slab
  const grown = arena.snapshot([zeros(1000), big]);
  ok(arena.capacity >= before + big.data.byteLength);
  equal(grown.buffers[0], small.buffers[0], "the first slab is kept");
  equal(grown.refs[1]!.byteLength, big.data.byteLength);
  arena.restore(grown.buffers);
  // A smaller model again: nothing is allocated.
  const capacity = arena.capacity;
  arena.restore(arena.snapshot([zeros(10)]).buffers);
  equal(arena.capacity, capacity);
});

Deno.test("a tensor shared by two files is copied once; offsets are 64-byte aligned", () => {
  const arena = new SnapshotArena();
  const w = f32(1, 2, 3);
  const d: Tensor = { dtype: "Float64", shape: [1], data: Float64Array.of(2) };
  const snap = arena.snapshot([w, d, w]);
  equal(snap.refs[0], snap.refs[2]);
  equal(snap.bytes, 12 + 8);
  ok(snap.refs.every((r) => r.byteOffset % 64 === 0));
  equal(viewTensor(snap.buffers, snap.refs[1]!).data[0], 2);
});

Deno.test("the slabs survive a transfer and come back; the arena refuses a snapshot while they are out", () => {
  const arena = new SnapshotArena();
  const w = f32(4, 5);
  const snap = arena.snapshot([w]);
  ok(arena.lent);
  throws(() => arena.snapshot([w]), /in use by a save in flight/);
  // What a Worker round trip does: the same memory under new objects.
  const back = structuredClone(snap.buffers, { transfer: snap.buffers });
  ok(snap.buffers.every((b) => b.detached));
  deepEqual(
    Array.from(viewTensor(back, snap.refs[0]!).data as Float32Array),
    [4, 5],
  );
  equal(arena.capacity, back[0]!.byteLength);
  arena.restore(back);
  ok(!arena.lent);
  const again = arena.snapshot([w]);
  equal(again.buffers[0], back[0]);
});

Deno.test("restore rejects buffers that are not the ones lent; discard forgets them", () => {
  const arena = new SnapshotArena();
  throws(() => arena.restore([]), /not lent/);
  const snap = arena.snapshot([f32(1)]);
  throws(() => arena.restore([]), /not the ones it lent/);
  throws(() => arena.restore([new ArrayBuffer(3)]), /not the ones it lent/);
  structuredClone(snap.buffers, { transfer: snap.buffers });
  throws(() => arena.restore(snap.buffers), /not the ones it lent/);
  arena.discard();
  ok(!arena.lent);
  equal(arena.capacity, 0);
  const fresh = arena.snapshot([f32(7)]);
  notEqual(fresh.buffers[0], snap.buffers[0]);
});

Deno.test("bad input: malformed tensors and slab sizes", () => {
  throws(() => new SnapshotArena({ slabSize: 0 }), RangeError);
  const arena = new SnapshotArena();
  throws(
    () =>
      arena.snapshot([{
        dtype: "Float32",
        shape: [3],
        data: new Float32Array(2),
      }]),
    RangeError,
  );
  ok(!arena.lent, "a failed snapshot lends nothing");
  const empty = arena.snapshot([]);
  equal(empty.bytes, 0);
  arena.restore(empty.buffers);
  const zero = arena.snapshot([zeros(0)]);
  equal(viewTensor(zero.buffers, zero.refs[0]!).data.length, 0);
});
