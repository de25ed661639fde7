// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Background saves: the caller pays for a copy of its tensors into a
 * reused arena; serialisation, encryption, the durable write and what the
 * caller does after each file (commit, `meta.json`, retention) run later,
 * with the CPU-heavy part in a Worker.
 *
 * The parts: this queue (one save at a time, back-pressure, the kept
 * failure), `_save_files.ts` (what a save writes, by reference to the
 * snapshot), `_save_worker_client.ts` and `_save_wire.ts` (the Worker and
 * what the two say to each other), `snapshot.ts` (the arena).
 *
 * @module
 */

import { saveCheckpoint } from "../checkpoint/checkpoint.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  basenamePath,
  type CheckpointStore,
  dirnamePath,
} from "../store/store.ts";
import { type Snapshot, SnapshotArena } from "./snapshot.ts";
import type { Tensor } from "../tensor/types.ts";
import {
  answer,
  fromWire,
  type SaveFunction,
  type WireReply,
} from "./_save_wire.ts";
import {
  describeFiles,
  type PlannedFile,
  type SaveQueueFile,
  tensorsOf,
  writesLocally,
} from "./_save_files.ts";
import { SaveWorker } from "./_save_worker_client.ts";
import { isDetached } from "./_detached.ts";
import type {
  Held,
  HeldSnapshot,
  SaveQueueHooks,
  SaveQueueOptions,
  SaveQueueStats,
  SaveTicket,
} from "./_save_types.ts";

export type { SaveQueueFile } from "./_save_files.ts";
export type {
  HeldSnapshot,
  SaveQueueHooks,
  SaveQueueOptions,
  SaveQueueStats,
  SaveTicket,
} from "./_save_types.ts";

function closedError(): TypeError {
  return new TypeError("Cannot save in the background: the queue is closed");
}

function backgroundError(path: string, cause: Error): Error {
  return new Error(
    `Cannot save checkpoint "${path}" in the background: ${cause.message}`,
    { cause },
  );
}

/**
 * Removes what an interrupted write of `path` left (by the store's own rule
 * for its temporary names). A failure here is not reported: the write's own
 * failure is.
 */
async function removeIncompleteWrite(
  path: string,
  store: CheckpointStore,
): Promise<void> {
  try {
    await store.removeIncomplete(dirnamePath(path), {
      prefixes: [basenamePath(path)],
    });
  } catch { /* the folder is gone, or unreadable: nothing more to do */ }
}

/** `saveCheckpoint` into a given store (the in-process save). */
function saveInto(store: CheckpointStore): SaveFunction {
  return (path, network, options) =>
    saveCheckpoint(path, network, { ...options, store });
}

/** Resolves after the current macrotask: the caller's step goes on first. */
function afterStep(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * One background save at a time. {@linkcode SaveQueue.enqueue} waits for the
 * save in flight (back-pressure: never two writes at once, never a due save
 * dropped), copies the tensors into a reused {@linkcode SnapshotArena} and
 * returns; a Worker then writes each file with `saveCheckpoint`
 * (serialise, encrypt, write, fsync, rename) on the arena's memory,
 * transferred to it and back without a copy. A failure is kept and thrown
 * once, by the next `enqueue`, {@linkcode SaveQueue.throwIfFailed},
 * {@linkcode SaveQueue.flush}, {@linkcode SaveQueue.stop} or
 * {@linkcode SaveQueue.close}, whichever comes first. A Worker that crashes
 * fails the save it was writing (its temporary file is removed) and is
 * replaced at the next save.
 *
 * Permissions: the Worker runs the library's bundled code from a `data:`
 * URL, so starting it reads no file; it inherits the process's permissions
 * (Deno 2.9 narrows a Worker's only behind `--unstable-worker-options`), and
 * `--allow-read=<dir> --allow-write=<dir>` of the checkpoint folder is all
 * a background save needs, wherever the library was imported from. An idle
 * Worker does not keep the process alive.
 *
 * Stores: a store object cannot be handed to a Worker, so only files of the
 * local store (the default for plain paths) are written there. A file of
 * any other store (a `store` option, or a path of a registered scheme such
 * as `s3://`) is written on the caller's thread, still off the step: after
 * `enqueue` has returned and the caller's current task has run, from the
 * same snapshot. Its serialisation and encryption then share the caller's
 * thread (the uploads themselves are I/O).
 *
 * @example Save in the background, then wait
 * ```ts
 * import { SaveQueue } from "./save_queue.ts";
 * import { loadCheckpoint } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await using queue = new SaveQueue();
 *   const w = { dtype: "Float32" as const, shape: [2], data: new Float32Array([1, 2]) };
 *   await queue.enqueue([{ path: `${dir}/a.ckpt`, network: { w } }]);
 *   w.data.fill(0); // the copy is already taken
 *   await queue.flush();
 *   const loaded = await loadCheckpoint(`${dir}/a.ckpt`);
 *   assertEquals(Array.from((loaded.get("w") as typeof w).data), [1, 2]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export class SaveQueue implements AsyncDisposable {
  #arena: SnapshotArena;
  #worker: SaveWorker;
  #inflight: Promise<void> | null = null;
  /** The arena's reservation, slab after slab, while it runs. */
  #reserving: Promise<void> | null = null;
  #error: Error | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #saves = 0;
  #waits = 0;
  #waitedMs = 0;
  #maxWaitMs = 0;
  #lastSnapshotMs = 0;
  #early = 0;
  #reclaims = 0;
  #reclaimedMs = 0;
  #reservedBytes = 0;

  /**
   * Makes a queue; the Worker starts with the first save.
   *
   * @param options Options.
   * @throws {RangeError} When `slabSize` is not a positive integer or
   * `idleMs` is negative.
   */
  constructor(options: SaveQueueOptions = {}) {
    this.#arena = new SnapshotArena(
      options.slabSize === undefined ? {} : { slabSize: options.slabSize },
    );
    const idleMs = options.idleMs ?? 5000;
    if (typeof idleMs !== "number" || !(idleMs >= 0)) {
      throw new RangeError(
        `Cannot make save queue: idleMs must be a non-negative number, received ${
          describe(idleMs)
        }`,
      );
    }
    this.#worker = new SaveWorker({
      idleMs,
      ...(options.workerUrl !== undefined && { url: options.workerUrl }),
    });
  }

  /** Whether a save is in flight. */
  get pending(): boolean {
    return this.#inflight !== null;
  }

  /** Whether a reservation of the arena is running. */
  get reserving(): boolean {
    return this.#reserving !== null;
  }

  /**
   * Whether {@linkcode SaveQueue.hold} can copy now: the queue is open and
   * no save holds the arena (the save before has given it back).
   */
  get free(): boolean {
    return !this.#closed && !this.#arena.lent;
  }

  /** Whether {@linkcode SaveQueue.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Counters: saves, waits and their time, the last snapshot's time. */
  get stats(): SaveQueueStats {
    return {
      saves: this.#saves,
      waits: this.#waits,
      waitedMs: this.#waitedMs,
      maxWaitMs: this.#maxWaitMs,
      lastSnapshotMs: this.#lastSnapshotMs,
      arenaBytes: this.#arena.capacity,
      early: this.#early,
      reclaims: this.#reclaims,
      reclaimedMs: this.#reclaimedMs,
      reservedBytes: this.#reservedBytes,
    };
  }

  /**
   * When the save in flight holds the arena only until its last bytes are
   * written (a one-file save, or the last file of a save, in the Worker),
   * blocks this thread until they are, at most `timeoutMs`, and takes the
   * arena back, so that the next {@linkcode SaveQueue.hold} copies into it
   * instead of into a second arena. The file's commit (fsync, rename) goes
   * on in the Worker; its failure is kept as any other. Returns whether
   * the arena is {@linkcode SaveQueue.free} now.
   *
   * @param timeoutMs The longest wait, in milliseconds.
   * @returns Whether the arena is free.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { ok as assert } from "node:assert/strict";
   * const queue = new SaveQueue();
   * assert(queue.reclaim());
   * await queue.close();
   * ```
   */
  reclaim(timeoutMs = 10_000): boolean {
    if (this.free || this.#closed || !this.#worker.writing) return this.free;
    const start = performance.now();
    this.#worker.waitWritten(timeoutMs);
    if (!this.free) return false;
    this.#reclaims++;
    this.#reclaimedMs += performance.now() - start;
    return true;
  }

  /**
   * Queues a save of one or more files, written in order. Waits first for
   * the save in flight, if any; then copies the tensors and returns. The
   * caller may change its tensors as soon as this resolves.
   *
   * @param files The files to write.
   * @param hooks What to do after each file (commit) or when one fails.
   * @returns How long it waited and copied.
   * @throws {Error} The kept failure of an earlier background save (once).
   * @throws {TypeError} When the queue is closed, or a tensor or option is malformed.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { ok as assert } from "node:assert/strict";
   * const dir = await Deno.makeTempDir();
   * const queue = new SaveQueue();
   * const network = { b: { dtype: "Int8" as const, shape: [1], data: Int8Array.of(1) } };
   * const ticket = await queue.enqueue([{ path: `${dir}/b.ckpt`, network }]);
   * assert(ticket.bytes === 1);
   * await queue.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async enqueue(
    files: readonly SaveQueueFile[],
    hooks: SaveQueueHooks = {},
    held?: HeldSnapshot,
  ): Promise<SaveTicket> {
    const own = held === undefined ? undefined : this.#own(held);
    let waitedMs = 0;
    let copy: Held;
    let planned: PlannedFile[];
    try {
      if (this.#closed) throw closedError();
      this.throwIfFailed();
      const start = performance.now();
      let waited = false;
      while (this.#inflight !== null) {
        waited = true;
        await this.#inflight;
      }
      if (waited) {
        waitedMs = performance.now() - start;
        this.#waits++;
        this.#waitedMs += waitedMs;
        this.#maxWaitMs = Math.max(this.#maxWaitMs, waitedMs);
      }
      if (this.#closed) throw closedError();
      this.throwIfFailed();
      copy = own ?? this.#hold(files);
      planned = describeFiles(files, copy.snapshot);
    } catch (error) {
      if (own !== undefined) this.release(own);
      throw error;
    }
    // From here the save owns the arena until its run gives it back.
    copy.done = true;
    const snapshot = copy.snapshot;
    this.#saves++;
    // The ticket is complete before the save starts, and the hooks get it.
    const ticket: SaveTicket = {
      waitedMs,
      snapshotMs: copy.snapshotMs,
      bytes: snapshot.bytes,
    };
    const run: Promise<void> = this.#run(planned, snapshot, hooks, ticket)
      .catch((error) => this.#keep(error))
      .finally(() => this.#settled(run));
    this.#inflight = run;
    return ticket;
  }

  /**
   * Copies the tensors of `files` into the arena now, synchronously, and
   * keeps the copy for a later {@linkcode SaveQueue.enqueue} of the same
   * files (their paths and options may be settled by then). The caller may
   * change its tensors as soon as this returns. Until the copy is enqueued
   * or {@linkcode SaveQueue.release}d the arena is taken: check
   * {@linkcode SaveQueue.free} first. A reservation still running is
   * completed first, on this thread and the Worker's at once; with none
   * running, the slabs the arena lacks are prepared that way too.
   *
   * @param files The files of the save to come (only their tensors count).
   * @returns The copy, to pass to `enqueue`.
   * @throws {TypeError} When the queue is closed, the arena is taken, or a
   * tensor is malformed.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const dir = await Deno.makeTempDir();
   * const queue = new SaveQueue();
   * const w = { dtype: "Int8" as const, shape: [1], data: Int8Array.of(1) };
   * const held = queue.hold([{ path: "", network: { w } }]);
   * w.data[0] = 2; // the copy is taken
   * await queue.enqueue([{ path: `${dir}/w.ckpt`, network: { w } }], {}, held);
   * await queue.close();
   * assertEquals(held.bytes, 1);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  hold(files: readonly SaveQueueFile[]): HeldSnapshot {
    if (this.#closed) throw closedError();
    return this.#hold(files);
  }

  /**
   * Gives back the arena a {@linkcode SaveQueue.hold} took, when its save
   * will not be enqueued. Does nothing once it was enqueued or released.
   *
   * @param held What `hold` returned.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { ok as assert } from "node:assert/strict";
   * const queue = new SaveQueue();
   * const w = { dtype: "Int8" as const, shape: [1], data: Int8Array.of(1) };
   * queue.release(queue.hold([{ path: "", network: { w } }]));
   * assert(queue.free);
   * await queue.close();
   * ```
   */
  release(held: HeldSnapshot): void {
    const own = this.#own(held);
    if (own.done) return;
    own.done = true;
    this.#arena.restore(own.snapshot.buffers);
  }

  /**
   * Prepares the arena for saves of `files` (the same files a later
   * {@linkcode SaveQueue.enqueue} gets) without copying anything: slabs it
   * lacks are allocated and touched page by page in the Worker, one slab
   * (at most `slabSize`) at a time, and adopted as each arrives, so the
   * first snapshot copies at memory speed instead of paying for fresh pages
   * on the caller's thread. Returns at once. The caller's thread need not
   * return to its event loop for the slabs to be taken: a snapshot takes
   * every slab prepared so far synchronously. A save that comes before the
   * reservation is complete completes it together with the Worker: it
   * prepares the slabs the Worker has not reached (from the last one down)
   * while the Worker finishes the one it is on, takes them all and copies;
   * its write is not held back. Does nothing when the arena already fits,
   * is taken, or a reservation is running.
   *
   * @param files The files of the saves to come.
   * @throws {TypeError} When the queue is closed, or a tensor is malformed.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const queue = new SaveQueue();
   * const network = { w: { dtype: "Float32" as const, shape: [4], data: new Float32Array(4) } };
   * queue.reserve([{ path: "unused.ckpt", network }]);
   * await queue.flush();
   * assertEquals(queue.stats.arenaBytes, 65536);
   * await queue.close();
   * ```
   */
  reserve(files: readonly SaveQueueFile[]): void {
    if (this.#closed) throw closedError();
    // Where no save Worker can start (the browser build), nothing is
    // allocated ahead: the first snapshot allocates as it copies.
    const tensors = tensorsOf(files);
    if (SaveWorker.available) this.#reserve(tensors);
  }

  /** Starts a reservation for `tensors` (checked) unless none is needed. */
  #reserve(tensors: readonly Tensor[]): void {
    if (this.#reserving !== null || this.#arena.lent) return;
    const sizes = this.#arena.reservation(tensors);
    if (sizes.every((n) => n === 0)) return;
    const run: Promise<void> = this.#worker
      .reserve(sizes, (index, buffer) => this.#adopt(tensors, index, buffer))
      .catch((error) =>
        this.#keep(
          new Error(
            `Cannot prepare the snapshot arena in the background: ${
              (error as Error).message
            }`,
            { cause: error },
          ),
        )
      )
      .finally(() => {
        if (this.#reserving === run) this.#reserving = null;
      });
    this.#reserving = run;
  }

  /**
   * Throws the kept failure of a background save, once; does nothing when
   * there is none. Cheap enough for every step.
   *
   * @throws {Error} The kept failure.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * const queue = new SaveQueue();
   * queue.throwIfFailed();
   * await queue.close();
   * ```
   */
  throwIfFailed(): void {
    const error = this.takeFailure();
    if (error !== undefined) throw error;
  }

  /**
   * Returns the kept failure of a background save and forgets it, for a
   * caller that rejects a promise instead of throwing.
   *
   * @returns The failure, or `undefined` when there is none.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const queue = new SaveQueue();
   * assertEquals(queue.takeFailure(), undefined);
   * await queue.close();
   * ```
   */
  takeFailure(): Error | undefined {
    const error = this.#error;
    this.#error = null;
    return error ?? undefined;
  }

  /**
   * Waits until no save is in flight, then throws a kept failure (once).
   *
   * @returns When every queued save has finished.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * const queue = new SaveQueue();
   * await queue.flush();
   * await queue.close();
   * ```
   */
  async flush(): Promise<void> {
    await this.#quiet();
    this.throwIfFailed();
  }

  /**
   * Waits until no save is in flight (a reservation may still run),
   * without throwing: a failure stays kept for the next call that reports
   * it.
   *
   * @returns When nothing is in flight.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * const queue = new SaveQueue();
   * await queue.idle();
   * await queue.close();
   * ```
   */
  async idle(): Promise<void> {
    while (this.#inflight !== null) await this.#inflight;
  }

  /**
   * Waits until the arena's reservation, if one runs, has ended (the arena
   * is then ready for the files it was asked for), without throwing: a
   * failure stays kept for the next call that reports it. Keeps the process
   * alive meanwhile.
   *
   * @returns When no reservation runs.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * import { equal as assertEquals } from "node:assert/strict";
   * const queue = new SaveQueue();
   * const network = { w: { dtype: "Int8" as const, shape: [8], data: new Int8Array(8) } };
   * queue.reserve([{ path: "unused.ckpt", network }]);
   * await queue.prepared();
   * assertEquals(queue.reserving, false);
   * await queue.close();
   * ```
   */
  async prepared(): Promise<void> {
    while (this.#reserving !== null) {
      await this.#worker.reserved(this.#reserving);
    }
  }

  /**
   * Waits like {@linkcode SaveQueue.flush}, then ends the Worker so nothing
   * keeps the process alive; a later save starts a new one.
   *
   * @returns When the Worker is ended.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * const queue = new SaveQueue();
   * await queue.stop();
   * ```
   */
  async stop(): Promise<void> {
    try {
      // No save will use what a reservation still running would prepare.
      this.#worker.stopReserving(0);
      await this.#quiet();
    } finally {
      this.#worker.terminate();
    }
    this.throwIfFailed();
  }

  /**
   * Waits for the save in flight, ends the Worker and frees the arena;
   * later saves are refused. Throws a kept failure (once). Calling it again
   * waits for the first call and does nothing more.
   *
   * @returns When closed.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * const queue = new SaveQueue();
   * await queue.close();
   * await queue.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closing !== null) {
      await this.#closing.catch(() => {});
      return;
    }
    this.#closed = true;
    this.#closing = (async () => {
      try {
        await this.stop();
      } finally {
        if (!this.#arena.lent) this.#arena.discard();
      }
    })();
    await this.#closing;
  }

  /**
   * Closes the queue, so `await using` works.
   *
   * @returns When closed.
   *
   * @example
   * ```ts
   * import { SaveQueue } from "./save_queue.ts";
   * {
   *   await using _queue = new SaveQueue();
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Runs one save: each file in the Worker (or, for a store other than the
   * local one, on this thread), then the caller's hook.
   */
  async #run(
    files: readonly PlannedFile[],
    snapshot: Snapshot,
    hooks: SaveQueueHooks,
    ticket: SaveTicket,
  ): Promise<void> {
    let buffers: ArrayBuffer[] | null = snapshot.buffers;
    try {
      for (const [index, file] of files.entries()) {
        let reply: WireReply;
        // The last file gives the arena back once its bytes are written,
        // before its commit: the next snapshot need not wait for the fsync.
        const last = index === files.length - 1;
        const written = (back: ArrayBuffer[]) => {
          buffers = null;
          this.#arena.restore(back);
          this.#early++;
        };
        try {
          reply = await this.#write(file, buffers!, last ? written : undefined);
        } catch (crash) {
          // The slabs went down with the Worker (or never left), unless
          // they came back before the commit.
          if (buffers !== null) {
            if (buffers.every((b) => !isDetached(b))) {
              this.#arena.restore(buffers);
            } else {
              this.#arena.discard();
            }
          }
          buffers = null;
          await removeIncompleteWrite(file.wire.path, file.store);
          const error = backgroundError(file.wire.path, crash as Error);
          await this.#failed(
            error,
            () => hooks.onError?.(index, error, ticket),
          );
          return;
        }
        if (buffers !== null) buffers = reply.buffers;
        if (!reply.ok) {
          const error = backgroundError(file.wire.path, fromWire(reply.error));
          await this.#failed(
            error,
            () => hooks.onError?.(index, error, ticket),
          );
          return;
        }
        try {
          if (reply.result === null) {
            throw new TypeError(
              "the save worker answered a write with nothing",
            );
          }
          await hooks.onFile?.(index, reply.result, reply.ms, ticket);
        } catch (error) {
          this.#keep(error);
          return;
        }
      }
    } finally {
      if (buffers !== null) this.#arena.restore(buffers);
    }
  }

  /** Writes one file: in the Worker, or here for a store it cannot reach. */
  async #write(
    file: PlannedFile,
    buffers: ArrayBuffer[],
    written?: (buffers: ArrayBuffer[]) => void,
  ): Promise<WireReply> {
    if (file.local) {
      // The snapshot ended any reservation: nothing to wait for.
      const early = written !== undefined;
      const request = { id: 0, file: { ...file.wire, early }, buffers };
      return await this.#worker.request(request, buffers, written);
    }
    const request = { id: 0, file: file.wire, buffers };
    await afterStep();
    return await answer(request, saveInto(file.store));
  }

  /** A save ended: nothing is in flight. */
  #settled(run: Promise<void>): void {
    if (this.#inflight === run) this.#inflight = null;
  }

  /** Until neither a save nor a reservation runs. */
  async #quiet(): Promise<void> {
    while (this.#inflight !== null || this.#reserving !== null) {
      await this.#inflight;
      await this.prepared();
    }
  }

  /** Copies the files' tensors into the arena (lent from then on). */
  #hold(files: readonly SaveQueueFile[]): Held {
    const tensors = tensorsOf(files);
    // The Worker (if it is not running) boots while the tensors are copied;
    // files of other stores are written here, without it. (A hold may not
    // name the files' store yet, so where no save Worker can start, as in
    // the browser build, the path alone must not start one.)
    const inWorker = SaveWorker.available && writesLocally(files);
    if (inWorker) this.#worker.warm();
    const start = performance.now();
    // Take what the reservation has prepared, even if this thread has not
    // returned to its event loop since (a loop awaiting settled promises
    // never does), and prepare the rest here while the Worker finishes its
    // slab: two threads touch fresh pages faster than the copy alone would.
    // With nothing prepared, the Worker prepares the front of the arena
    // while this thread prepares the back.
    if (inWorker) this.#reserve(tensors);
    if (this.#reserving !== null) this.#worker.finishReserving();
    const snapshot = this.#arena.snapshot(tensors);
    const snapshotMs = performance.now() - start;
    this.#lastSnapshotMs = snapshotMs;
    return { bytes: snapshot.bytes, snapshotMs, snapshot, done: false };
  }

  #own(held: HeldSnapshot): Held {
    const own = held as Held;
    if (typeof own.done !== "boolean" || own.snapshot === undefined) {
      throw new TypeError(
        `Cannot save in the background: expected a snapshot from hold(), received ${
          describe(held)
        }`,
      );
    }
    return own;
  }

  /**
   * A slab the reservation prepared for a snapshot of `tensors` at `index`:
   * adopted while the arena is free and still lacks exactly that slab. A
   * slab before it that never came (it reached this thread late, as an
   * event) is filled with fresh memory, as the snapshot would have.
   */
  #adopt(tensors: readonly Tensor[], index: number, buffer: ArrayBuffer): void {
    if (this.#closed || this.#arena.lent) return;
    const needed = this.#arena.reservation(tensors);
    if (needed[index] !== buffer.byteLength) return;
    const slabs = needed.slice(0, index).map((n) =>
      n === 0 ? null : new ArrayBuffer(n)
    );
    slabs.push(buffer);
    try {
      this.#arena.adopt(slabs);
    } catch {
      return; // Never out of a step end: the snapshot allocates instead.
    }
    this.#reservedBytes += buffer.byteLength;
  }

  async #failed(error: Error, report: () => unknown): Promise<void> {
    this.#keep(error);
    try {
      await report();
    } catch { /* the save's own error is the one kept */ }
  }

  #keep(error: unknown): void {
    this.#error ??= error instanceof Error ? error : new Error(String(error));
  }
}
