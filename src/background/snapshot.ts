// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A snapshot arena: memory kept across saves into which a save copies the
 * tensors it writes, so the training loop may change its own tensors as soon
 * as the copy is taken.
 *
 * Fresh memory costs ~15 µs per 4 KiB page on our machines (see docs/performance.md): a
 * fresh copy of 1 GiB takes seconds, a copy into memory already touched
 * tens of milliseconds. The arena therefore keeps its buffers ("slabs")
 * from one save to the next and only adds or enlarges one when the tensors
 * no longer fit. Its slabs are plain `ArrayBuffer`s, so they can be
 * transferred to a Worker (no copy) and given back when the save is done;
 * while they are away the arena is "lent" and refuses a new snapshot, which
 * bounds the memory of one save in flight to one arena.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import { checkInteger } from "../core/_validate.ts";
import {
  type DType,
  type Tensor,
  tensorBytes,
  typedArrayFromBytes,
  validateTensor,
} from "../tensor/types.ts";

/** Where the copy of one tensor lives in a {@linkcode Snapshot}. */
export interface TensorRef {
  /** The element type. */
  readonly dtype: DType;
  /** The shape (a copy of the original's). */
  readonly shape: readonly number[];
  /** Index of the slab in {@linkcode Snapshot.buffers}. */
  readonly slab: number;
  /** Offset of the first byte in that slab (a multiple of 64). */
  readonly byteOffset: number;
  /** Number of bytes. */
  readonly byteLength: number;
}

/** The copies taken by {@linkcode SnapshotArena.snapshot}. */
export interface Snapshot {
  /**
   * The arena's slabs, to transfer to a Worker or to read with
   * {@linkcode viewTensor}. Hand them back with
   * {@linkcode SnapshotArena.restore} when done.
   */
  readonly buffers: ArrayBuffer[];
  /** One reference per tensor passed, in order. */
  readonly refs: TensorRef[];
  /** Bytes copied (each distinct tensor once). */
  readonly bytes: number;
}

/** Options of {@linkcode SnapshotArena}. */
export interface SnapshotArenaOptions {
  /**
   * Largest size of a new slab, in bytes. A tensor larger than this gets a
   * slab of its own size. Smaller snapshots get one slab of their own size.
   *
   * @default {67108864}
   */
  slabSize?: number;
}

/** Every copy starts at a multiple of this (a cache line; any dtype's size divides it). */
const ALIGN = 64;
/** New slabs are a whole number of these. */
const SLAB_GRAIN = 64 * 1024;
const DEFAULT_SLAB_SIZE = 64 * 1024 * 1024;

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** The tensors of a list, each distinct `data` once, checked. */
function distinctTensors(tensors: readonly Tensor[]): Tensor[] {
  const distinct = new Map<unknown, Tensor>();
  for (const [i, t] of tensors.entries()) {
    validateTensor(t, `tensor ${i} of the snapshot`);
    if (!distinct.has(t.data)) distinct.set(t.data, t);
  }
  return [...distinct.values()];
}

/**
 * Places tensors of the given byte sizes, in order, into slabs of the given
 * capacities: each goes after the previous one in the same slab when it
 * fits, else to the next slab. A slab is added when there is none left,
 * and replaced by a larger one when a tensor does not fit even alone. A
 * new slab is as large as the rest of the snapshot, at most `slabSize`
 * (and at least the tensor). The same sizes in the same order always give
 * the same places.
 */
function layout(
  sizes: readonly number[],
  capacities: readonly number[],
  slabSize: number,
): { places: { slab: number; offset: number }[]; caps: number[] } {
  const caps = [...capacities];
  let remaining = 0;
  for (const n of sizes) remaining += roundUp(n, ALIGN);
  const places: { slab: number; offset: number }[] = [];
  let slab = 0;
  let offset = 0;
  for (const n of sizes) {
    for (;;) {
      const cap = slab < caps.length ? caps[slab]! : -1;
      if (cap >= 0 && offset + n <= cap) break;
      if (cap < 0 || (offset === 0 && n > cap)) {
        caps[slab] = roundUp(
          Math.max(n, Math.min(remaining, slabSize), 1),
          SLAB_GRAIN,
        );
        break;
      }
      slab++;
      offset = 0;
    }
    places.push({ slab, offset });
    offset = roundUp(offset + n, ALIGN);
    remaining -= roundUp(n, ALIGN);
  }
  return { places, caps };
}

/**
 * Memory kept across saves for the copies of the tensors a save writes. Each
 * {@linkcode SnapshotArena.snapshot} copies tensors into it with `set()` and
 * lends its slabs out; {@linkcode SnapshotArena.restore} takes them back.
 * The same tensors (same sizes, same order) land at the same places every
 * time, so after the first snapshot no new memory is touched.
 *
 * @example Snapshot, mutate the original, read the copy
 * ```ts
 * import { SnapshotArena, viewTensor } from "./snapshot.ts";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const arena = new SnapshotArena();
 * const w = { dtype: "Float32" as const, shape: [3], data: new Float32Array([1, 2, 3]) };
 * const snap = arena.snapshot([w]);
 * w.data.fill(0); // the loop goes on
 * const copy = viewTensor(snap.buffers, snap.refs[0]!);
 * assertEquals(Array.from(copy.data as Float32Array), [1, 2, 3]);
 * arena.restore(snap.buffers);
 * ```
 */
export class SnapshotArena {
  #slabs: ArrayBuffer[] = [];
  /** The slabs' sizes when lent (a transferred buffer reads as 0 bytes). */
  #lentSizes: number[] = [];
  #lent = false;
  #slabSize: number;

  /**
   * Makes an empty arena; memory is allocated by the first snapshot.
   *
   * @throws {TypeError} When `slabSize` is not a number.
   * @throws {RangeError} When `slabSize` is not a positive integer.
   * @throws {RangeError} When `slabSize` is not a positive integer.
   */
  constructor(options: SnapshotArenaOptions = {}) {
    this.#slabSize = checkInteger(
      options.slabSize ?? DEFAULT_SLAB_SIZE,
      "slabSize",
      1,
      "Cannot make snapshot arena",
    );
  }

  /** Bytes of the arena's slabs, lent or not. */
  get capacity(): number {
    if (this.#lent) return this.#lentSizes.reduce((a, b) => a + b, 0);
    let n = 0;
    for (const s of this.#slabs) n += s.byteLength;
    return n;
  }

  /** Whether a snapshot's slabs are out and not yet restored. */
  get lent(): boolean {
    return this.#lent;
  }

  /**
   * Copies tensors into the arena and lends its slabs out. A tensor whose
   * `data` is the same typed array as an earlier one's is copied once and
   * both get the same reference. The arena is lent until
   * {@linkcode SnapshotArena.restore} (or {@linkcode SnapshotArena.discard}).
   *
   * @param tensors The tensors to copy.
   * @returns The slabs and where each tensor's copy is.
   * @throws {TypeError} When the slabs are lent, or a tensor is malformed.
   *
   * @example
   * ```ts
   * import { SnapshotArena } from "./snapshot.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const arena = new SnapshotArena();
   * const data = new Int32Array(8);
   * const snap = arena.snapshot([{ dtype: "Int32", shape: [8], data }]);
   * assertEquals(snap.bytes, 32);
   * arena.restore(snap.buffers);
   * ```
   */
  snapshot(tensors: readonly Tensor[]): Snapshot {
    if (this.#lent) {
      throw new TypeError(
        "Cannot take a snapshot: the arena's memory is in use by a save in flight",
      );
    }
    const refs = new Map<unknown, TensorRef>();
    const distinct = distinctTensors(tensors);
    const { places, caps } = layout(
      distinct.map((t) => t.data.byteLength),
      this.#slabs.map((b) => b.byteLength),
      this.#slabSize,
    );
    const slabs = this.#slabs;
    for (const [i, cap] of caps.entries()) {
      // A new slab, or a too-small one replaced: the model grew.
      if (i >= slabs.length || slabs[i]!.byteLength !== cap) {
        slabs[i] = new ArrayBuffer(cap);
      }
    }
    const sources: Uint8Array[] = [];
    const plan: TensorRef[] = [];
    for (const [i, t] of distinct.entries()) {
      const ref: TensorRef = {
        dtype: t.dtype,
        shape: [...t.shape],
        slab: places[i]!.slab,
        byteOffset: places[i]!.offset,
        byteLength: t.data.byteLength,
      };
      refs.set(t.data, ref);
      sources.push(tensorBytes(t));
      plan.push(ref);
    }
    // Copy at memory speed into memory touched by the previous snapshots.
    let bytes = 0;
    for (const [i, ref] of plan.entries()) {
      const src = sources[i]!;
      new Uint8Array(slabs[ref.slab]!, ref.byteOffset, ref.byteLength).set(src);
      bytes += ref.byteLength;
    }
    const buffers = slabs.slice();
    this.#lentSizes = buffers.map((b) => b.byteLength);
    this.#lent = true;
    return {
      buffers,
      refs: tensors.map((t) => refs.get(t.data)!),
      bytes,
    };
  }

  /**
   * Says which slabs a snapshot of `tensors` would allocate, without
   * allocating: the size of each slab to add or replace, 0 where the
   * current slab serves. Allocate and touch them elsewhere (e.g. in a
   * Worker, so the page faults of fresh memory do not stall the loop) and
   * hand them over with {@linkcode SnapshotArena.adopt}.
   *
   * @param tensors The tensors a snapshot will copy.
   * @returns One size per slab index; all zeros when nothing must grow.
   * @throws {TypeError} When a tensor is malformed.
   *
   * @example
   * ```ts
   * import { SnapshotArena } from "./snapshot.ts";
   * import { deepEqual as assertEquals } from "node:assert/strict";
   * const arena = new SnapshotArena();
   * const t = { dtype: "UInt8" as const, shape: [10], data: new Uint8Array(10) };
   * const sizes = arena.reservation([t]);
   * assertEquals(sizes, [65536]);
   * arena.adopt(sizes.map((n) => new ArrayBuffer(n)));
   * assertEquals(arena.reservation([t]), [0]);
   * ```
   */
  reservation(tensors: readonly Tensor[]): number[] {
    const current = this.#lent
      ? this.#lentSizes
      : this.#slabs.map((b) => b.byteLength);
    const { caps } = layout(
      distinctTensors(tensors).map((t) => t.data.byteLength),
      current,
      this.#slabSize,
    );
    return caps.map((cap, i) => cap === current[i] ? 0 : cap);
  }

  /**
   * Takes slabs allocated for a {@linkcode SnapshotArena.reservation}: each
   * non-null buffer replaces (or adds) the slab at its index.
   *
   * @param buffers One entry per slab index; `null` keeps the current slab.
   * @throws {TypeError} When the arena is lent, or an entry is not an
   * `ArrayBuffer` or `null`, or leaves a gap.
   *
   * @example
   * ```ts
   * import { SnapshotArena } from "./snapshot.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const arena = new SnapshotArena();
   * arena.adopt([new ArrayBuffer(1024)]);
   * assertEquals(arena.capacity, 1024);
   * ```
   */
  adopt(buffers: readonly (ArrayBuffer | null)[]): void {
    if (this.#lent) {
      throw new TypeError(
        "Cannot adopt slabs: the arena's memory is in use by a save in flight",
      );
    }
    const slabs = [...this.#slabs];
    for (const [i, b] of buffers.entries()) {
      if (b === null && i < slabs.length) continue;
      if (!(b instanceof ArrayBuffer) || b.detached) {
        throw new TypeError(
          `Cannot adopt slabs: entry ${i} must be an ArrayBuffer${
            i < slabs.length ? " or null" : ""
          }, received ${describe(b)}`,
        );
      }
      slabs[i] = b;
    }
    this.#slabs = slabs;
  }

  /**
   * Takes back the slabs of the last snapshot, e.g. as transferred back from
   * a Worker. Their contents do not matter.
   *
   * @param buffers The slabs, in the order {@linkcode Snapshot.buffers} had.
   * @throws {TypeError} When the arena is not lent, or the buffers are not
   * the ones lent (count or sizes differ, or one is detached).
   *
   * @example
   * ```ts
   * import { SnapshotArena } from "./snapshot.ts";
   * import { ok as assert } from "node:assert/strict";
   * const arena = new SnapshotArena();
   * const snap = arena.snapshot([{ dtype: "UInt8", shape: [1], data: new Uint8Array(1) }]);
   * assert(arena.lent);
   * arena.restore(snap.buffers);
   * assert(!arena.lent);
   * ```
   */
  restore(buffers: readonly ArrayBuffer[]): void {
    if (!this.#lent) {
      throw new TypeError("Cannot restore the arena: it is not lent");
    }
    const ok = buffers.length === this.#lentSizes.length &&
      buffers.every((b, i) =>
        b instanceof ArrayBuffer && !b.detached &&
        b.byteLength === this.#lentSizes[i]
      );
    if (!ok) {
      throw new TypeError(
        "Cannot restore the arena: the buffers are not the ones it lent",
      );
    }
    this.#slabs = [...buffers];
    this.#lent = false;
  }

  /**
   * Gives up the lent slabs (they were lost, e.g. with a crashed Worker):
   * the next snapshot allocates fresh memory.
   *
   * @example
   * ```ts
   * import { SnapshotArena } from "./snapshot.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const arena = new SnapshotArena();
   * arena.snapshot([{ dtype: "UInt8", shape: [4], data: new Uint8Array(4) }]);
   * arena.discard();
   * assertEquals(arena.capacity, 0);
   * ```
   */
  discard(): void {
    this.#slabs = [];
    this.#lentSizes = [];
    this.#lent = false;
  }
}

/**
 * Rebuilds a tensor from a {@linkcode TensorRef} as a view of the snapshot's
 * buffers (no copy), e.g. inside the Worker the buffers were transferred to.
 *
 * @param buffers The snapshot's slabs.
 * @param ref Where the tensor is.
 * @returns The tensor, its data a view of `buffers[ref.slab]`.
 * @throws {RangeError} When `ref` points outside the buffers.
 *
 * @example
 * ```ts
 * import { viewTensor } from "./snapshot.ts";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 * const buf = new Uint16Array([7, 8]).buffer;
 * const t = viewTensor([buf], { dtype: "UInt16", shape: [2], slab: 0, byteOffset: 0, byteLength: 4 });
 * assertEquals(Array.from(t.data as Uint16Array), [7, 8]);
 * ```
 */
export function viewTensor(
  buffers: readonly ArrayBuffer[],
  ref: TensorRef,
): Tensor {
  const buffer = buffers[ref.slab];
  if (
    buffer === undefined || ref.byteOffset < 0 ||
    ref.byteOffset + ref.byteLength > buffer.byteLength
  ) {
    throw new RangeError(
      `Cannot view tensor: slab ${ref.slab} bytes ${ref.byteOffset}+${ref.byteLength} are outside the snapshot`,
    );
  }
  const bytes = new Uint8Array(buffer, ref.byteOffset, ref.byteLength);
  return {
    dtype: ref.dtype,
    shape: ref.shape,
    data: typedArrayFromBytes(ref.dtype, bytes),
  };
}
