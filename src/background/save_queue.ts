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

import { saveCheckpoint, type SaveResult } from "../checkpoint/checkpoint.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  basenamePath,
  type CheckpointStore,
  dirnamePath,
} from "../store/store.ts";
import { type Snapshot, SnapshotArena } from "./snapshot.ts";
import {
  answer,
  fromWire,
  type SaveFunction,
  type WireReply,
} from "./_save_wire.ts";
import {
  type PlannedFile,
  type SaveQueueFile,
  snapshotFiles,
  tensorsOf,
  writesLocally,
} from "./_save_files.ts";
import { SaveWorker } from "./_save_worker_client.ts";

export type { SaveQueueFile } from "./_save_files.ts";

/**
 * What the caller does as a background save progresses. Both run on the
 * caller's thread, in order; the next file is written only after
 * `onFile` of the previous one has resolved.
 */
export interface SaveQueueHooks {
  /**
   * A file was committed: the caller's commit step (e.g. `meta.json`,
   * retention). If it throws, the rest of the save is skipped and the error
   * is kept like a failed write. `ticket` is the one
   * {@linkcode SaveQueue.enqueue} returns for this save (complete before
   * any hook runs, however soon the file is written).
   */
  onFile?: (
    index: number,
    result: SaveResult,
    ms: number,
    ticket: SaveTicket,
  ) => unknown;
  /**
   * Writing file `index` failed in the background (not called for errors
   * thrown by `onFile`). The error is also kept and rethrown.
   */
  onError?: (index: number, error: Error, ticket: SaveTicket) => unknown;
}

/** What {@linkcode SaveQueue.enqueue} did before returning. */
export interface SaveTicket {
  /** Milliseconds spent waiting for the save in flight (back-pressure). */
  readonly waitedMs: number;
  /** Milliseconds spent copying the tensors. */
  readonly snapshotMs: number;
  /** Bytes copied. */
  readonly bytes: number;
}

/** Counters of a {@linkcode SaveQueue}. */
export interface SaveQueueStats {
  /** Saves queued so far. */
  readonly saves: number;
  /** Saves that had to wait for the previous one. */
  readonly waits: number;
  /** Total milliseconds waited for previous saves. */
  readonly waitedMs: number;
  /** Longest single wait, in milliseconds. */
  readonly maxWaitMs: number;
  /** Milliseconds of the last snapshot copy. */
  readonly lastSnapshotMs: number;
  /** Bytes the snapshot arena holds (its slabs, lent or not). */
  readonly arenaBytes: number;
}

/** Options of {@linkcode SaveQueue}. */
export interface SaveQueueOptions {
  /**
   * Largest new slab of the snapshot arena, in bytes.
   *
   * @default {67108864}
   */
  slabSize?: number;
  /**
   * The Worker module that writes files. Only for tests that inject faults:
   * a `node:worker_threads` module that answers as
   * `src/background/_save_worker.ts` does. By default the Worker runs that
   * module's bundled code, which reads no file to start.
   *
   * @default {undefined}
   */
  workerUrl?: URL;
  /**
   * Milliseconds without a save after which the Worker is ended (a later
   * save starts a new one), to give its memory back. An idle Worker never
   * keeps the process alive, whatever this is. `Infinity` keeps the Worker
   * until {@linkcode SaveQueue.stop} or {@linkcode SaveQueue.close}.
   *
   * @default {5000}
   */
  idleMs?: number;
}

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
  #error: Error | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #saves = 0;
  #waits = 0;
  #waitedMs = 0;
  #maxWaitMs = 0;
  #lastSnapshotMs = 0;

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
    };
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
  ): Promise<SaveTicket> {
    if (this.#closed) throw closedError();
    this.throwIfFailed();
    const start = performance.now();
    let waited = false;
    while (this.#inflight !== null) {
      waited = true;
      await this.#inflight;
    }
    const waitedMs = performance.now() - start;
    if (waited) {
      this.#waits++;
      this.#waitedMs += waitedMs;
      this.#maxWaitMs = Math.max(this.#maxWaitMs, waitedMs);
    }
    if (this.#closed) throw closedError();
    this.throwIfFailed();

    // The Worker (if it is not running) boots while the tensors are copied;
    // files of other stores are written here, without it.
    if (writesLocally(files)) this.#worker.warm();
    const copyStart = performance.now();
    const { planned, snapshot } = snapshotFiles(this.#arena, files);
    const snapshotMs = performance.now() - copyStart;
    this.#lastSnapshotMs = snapshotMs;
    this.#saves++;
    // The ticket is complete before the save starts, and the hooks get it.
    const ticket: SaveTicket = { waitedMs, snapshotMs, bytes: snapshot.bytes };
    const run: Promise<void> = this.#run(planned, snapshot, hooks, ticket)
      .catch((error) => this.#keep(error))
      .finally(() => this.#settled(run));
    this.#inflight = run;
    return ticket;
  }

  /**
   * Prepares the arena for saves of `files` (the same files a later
   * {@linkcode SaveQueue.enqueue} gets) without copying anything: slabs it
   * lacks are allocated and touched page by page in the Worker, so the
   * first snapshot copies at memory speed instead of paying ~15 µs per
   * fresh 4 KiB page on the caller's thread. Returns at once; a save queued
   * meanwhile waits for it. Does nothing when the arena already fits.
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
    const tensors = tensorsOf(files);
    if (this.#inflight !== null || this.#arena.lent) return;
    // Where no save Worker can start (the browser build), nothing is
    // allocated ahead: the first snapshot allocates as it copies.
    if (!SaveWorker.available) return;
    const sizes = this.#arena.reservation(tensors);
    if (sizes.every((n) => n === 0)) return;
    const run: Promise<void> = this.#worker.request({ id: 0, alloc: sizes }, [])
      .then((reply) => {
        this.#arena.adopt(
          sizes.map((n, i) => n === 0 ? null : reply.buffers[i]!),
        );
      })
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
      .finally(() => this.#settled(run));
    this.#inflight = run;
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
    while (this.#inflight !== null) await this.#inflight;
    this.throwIfFailed();
  }

  /**
   * Waits until no save is in flight, without throwing: a failure stays
   * kept for the next call that reports it.
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
      while (this.#inflight !== null) await this.#inflight;
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
        try {
          reply = await this.#write(file, buffers);
        } catch (crash) {
          // The slabs went down with the Worker (or never left).
          if (buffers.every((b) => !b.detached)) {
            this.#arena.restore(buffers);
          } else {
            this.#arena.discard();
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
        buffers = reply.buffers;
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
  async #write(file: PlannedFile, buffers: ArrayBuffer[]): Promise<WireReply> {
    const request = { id: 0, file: file.wire, buffers };
    if (file.local) return await this.#worker.request(request, buffers);
    await afterStep();
    return await answer(request, saveInto(file.store));
  }

  /** A save (or reservation) ended: nothing is in flight. */
  #settled(run: Promise<void>): void {
    if (this.#inflight === run) this.#inflight = null;
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
