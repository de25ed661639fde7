// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Background saves: the caller pays for a copy of its tensors into a
 * reused arena; serialisation, encryption, the durable write and what the
 * caller does after each file (commit, `meta.json`, retention) run later,
 * with the CPU-heavy part in a module Worker.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import type {
  SaveCheckpointOptions,
  SaveResult,
} from "../checkpoint/checkpoint.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { type Snapshot, SnapshotArena } from "./snapshot.ts";
import {
  type Network,
  networkParameters,
  type Parameter,
  type Tensor,
} from "../tensor/types.ts";
import {
  fromWire,
  type WireAppend,
  type WireFile,
  type WireParam,
  type WireReply,
  type WireRequest,
} from "./_save_wire.ts";

/** One file of a background save. */
export interface SaveQueueFile {
  /** Where to write it; its folder must exist when the save runs. */
  readonly path: string;
  /** The tensors to save (copied when the save is queued). */
  readonly network: Network;
  /**
   * The options of `saveCheckpoint`. Tensors in `appendInfo` are copied
   * with the network; every other option is passed to the Worker by
   * structured clone (an encryption key included).
   *
   * @default {{}}
   */
  readonly options?: SaveCheckpointOptions;
}

/**
 * What the caller does as a background save progresses. Both run on the
 * caller's thread, in order; the next file is written only after
 * `onFile` of the previous one has resolved.
 */
export interface SaveQueueHooks {
  /**
   * A file was committed: the caller's commit step (e.g. `meta.json`,
   * retention). If it throws, the rest of the save is skipped and the error
   * is kept like a failed write.
   */
  onFile?: (index: number, result: SaveResult, ms: number) => unknown;
  /**
   * Writing file `index` failed in the background (not called for errors
   * thrown by `onFile`). The error is also kept and rethrown.
   */
  onError?: (index: number, error: Error) => unknown;
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
   * it must answer as `src/_save_worker.ts` does.
   *
   * @default {undefined}
   */
  workerUrl?: URL;
  /**
   * Milliseconds without a save after which the Worker is ended (a later
   * save starts a new one). The timer is unreferenced and a live Worker
   * would keep the process alive, so this is what lets a program that never
   * calls `close()` exit. `Infinity` keeps the Worker until
   * {@linkcode SaveQueue.stop} or {@linkcode SaveQueue.close}.
   *
   * @default {5000}
   */
  idleMs?: number;
}

const WORKER_URL = new URL("./_save_worker.ts", import.meta.url);

interface Pending {
  resolve(reply: WireReply): void;
  reject(error: Error): void;
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

/** Removes the temporary files an interrupted atomic write of `path` left. */
async function removeTemps(path: string): Promise<void> {
  const name = basename(path);
  const pattern = new RegExp(
    `^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.[0-9a-f]{12}\\.tmp$`,
  );
  const folder = dirname(path);
  try {
    for await (const entry of Deno.readDir(folder)) {
      if (entry.isFile && pattern.test(entry.name)) {
        await Deno.remove(`${folder}/${entry.name}`).catch(() => {});
      }
    }
  } catch { /* the folder is gone: so are its temporary files */ }
}

/** A file of a save, its tensors numbered in the list a snapshot copies. */
interface FileLayout {
  path: string;
  params: Parameter[];
  /** Index of the first parameter in the tensor list. */
  first: number;
  append?: [string, { index: number } | WireAppend][];
  options: Omit<SaveCheckpointOptions, "appendInfo">;
}

/**
 * Checks the files and lists the tensors a snapshot of them copies, in a
 * fixed order (so the arena lays them out the same way every time).
 */
function collect(
  files: readonly SaveQueueFile[],
): { layouts: FileLayout[]; tensors: Tensor[] } {
  if (!Array.isArray(files)) {
    throw new TypeError(
      `Cannot save in the background: files must be an array, received ${
        describe(files)
      }`,
    );
  }
  const tensors: Tensor[] = [];
  const layouts = files.map((file, i): FileLayout => {
    if (typeof file !== "object" || file === null) {
      throw new TypeError(
        `Cannot save in the background: file ${i} must be an object, received ${
          describe(file)
        }`,
      );
    }
    if (typeof file.path !== "string") {
      throw new TypeError(
        `Cannot save in the background: file ${i} path must be a string, received ${
          describe(file.path)
        }`,
      );
    }
    const params = networkParameters(file.network);
    const first = tensors.length;
    tensors.push(...params);
    const { appendInfo, ...options } = file.options ?? {};
    if (appendInfo === undefined) {
      return { path: file.path, params, first, options };
    }
    const append: [string, { index: number } | WireAppend][] = [];
    const pairs = appendInfo instanceof Map
      ? [...appendInfo]
      : Object.entries(appendInfo);
    for (const [key, value] of pairs) {
      if (typeof value === "object" && value !== null) {
        append.push([key, { index: tensors.length }]);
        tensors.push(value as Tensor);
      } else if (
        typeof value === "number" || typeof value === "bigint" ||
        typeof value === "boolean" || typeof value === "string"
      ) {
        append.push([key, { value }]);
      } else {
        throw new TypeError(
          `Cannot save "${file.path}" in the background: appendInfo "${key}" must be a number, bigint, boolean, string or Tensor, received ${
            describe(value)
          }`,
        );
      }
    }
    return { path: file.path, params, first, append, options };
  });
  return { layouts, tensors };
}

/**
 * One background save at a time. {@linkcode SaveQueue.enqueue} waits for the
 * save in flight (back-pressure: never two writes at once, never a due save
 * dropped), copies the tensors into a reused {@linkcode SnapshotArena} and
 * returns; a module Worker then writes each file with `saveCheckpoint`
 * (serialise, encrypt, write, fsync, rename) on the arena's memory,
 * transferred to it and back without a copy. A failure is kept and thrown
 * once, by the next `enqueue`, {@linkcode SaveQueue.throwIfFailed},
 * {@linkcode SaveQueue.flush}, {@linkcode SaveQueue.stop} or
 * {@linkcode SaveQueue.close}, whichever comes first. A Worker that crashes
 * fails the save it was writing (its temporary file is removed) and is
 * replaced at the next save.
 *
 * The Worker inherits the process's permissions: Deno 2.9 only narrows a
 * Worker's permissions behind `--unstable-worker-options`, and asking
 * without that flag ends the process. Loading it needs read access to this
 * module's folder when the package is on the local disk.
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
  #workerUrl: URL;
  #worker: Worker | null = null;
  #pending: Pending | null = null;
  #nextId = 1;
  #inflight: Promise<void> | null = null;
  #error: Error | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #saves = 0;
  #waits = 0;
  #waitedMs = 0;
  #maxWaitMs = 0;
  #lastSnapshotMs = 0;
  #idleMs: number;
  #idleTimer: ReturnType<typeof setTimeout> | undefined = undefined;

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
    this.#workerUrl = options.workerUrl ?? WORKER_URL;
    const idleMs = options.idleMs ?? 5000;
    if (typeof idleMs !== "number" || !(idleMs >= 0)) {
      throw new RangeError(
        `Cannot make save queue: idleMs must be a non-negative number, received ${
          describe(idleMs)
        }`,
      );
    }
    this.#idleMs = idleMs;
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
   * assert(ticket.waitedMs >= 0);
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

    const copyStart = performance.now();
    const { wire, snapshot } = this.#snapshot(files);
    const snapshotMs = performance.now() - copyStart;
    this.#lastSnapshotMs = snapshotMs;
    this.#saves++;
    const run: Promise<void> = this.#run(wire, snapshot, hooks)
      .catch((error) => this.#keep(error))
      .finally(() => this.#settled(run));
    this.#inflight = run;
    return { waitedMs, snapshotMs, bytes: snapshot.bytes };
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
    const { tensors } = collect(files);
    if (this.#inflight !== null || this.#arena.lent) return;
    const sizes = this.#arena.reservation(tensors);
    if (sizes.every((n) => n === 0)) return;
    const run: Promise<void> = this.#request({ id: 0, alloc: sizes }, [])
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
      this.#terminate();
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

  /** Copies the files' tensors and describes the files by reference. */
  #snapshot(
    files: readonly SaveQueueFile[],
  ): { wire: WireFile[]; snapshot: Snapshot } {
    const { layouts, tensors } = collect(files);
    const snapshot = this.#arena.snapshot(tensors);
    const wire = layouts.map((l): WireFile => {
      const params = l.params.map((p, j): WireParam => {
        const ref = snapshot.refs[l.first + j]!;
        return p.requiresGrad === undefined
          ? { ...ref, name: p.name }
          : { ...ref, name: p.name, requiresGrad: p.requiresGrad };
      });
      const appendInfo = l.append?.map(([key, v]): [string, WireAppend] =>
        "index" in v ? [key, { tensor: snapshot.refs[v.index]! }] : [key, v]
      );
      return {
        path: l.path,
        params,
        ...(appendInfo && { appendInfo }),
        options: l.options,
      };
    });
    return { wire, snapshot };
  }

  /** Runs one save: each file in the Worker, then the caller's hook. */
  async #run(
    files: readonly WireFile[],
    snapshot: Snapshot,
    hooks: SaveQueueHooks,
  ): Promise<void> {
    let buffers: ArrayBuffer[] | null = snapshot.buffers;
    try {
      for (const [index, file] of files.entries()) {
        let reply: WireReply;
        try {
          reply = await this.#call(file, buffers);
        } catch (crash) {
          // The slabs went down with the Worker (or never left).
          if (buffers.every((b) => !b.detached)) {
            this.#arena.restore(buffers);
          } else {
            this.#arena.discard();
          }
          buffers = null;
          await removeTemps(file.path);
          const error = backgroundError(file.path, crash as Error);
          await this.#failed(error, () => hooks.onError?.(index, error));
          return;
        }
        buffers = reply.buffers;
        if (!reply.ok) {
          const error = backgroundError(file.path, fromWire(reply.error));
          await this.#failed(error, () => hooks.onError?.(index, error));
          return;
        }
        try {
          if (reply.result === null) {
            throw new TypeError(
              "the save worker answered a write with nothing",
            );
          }
          await hooks.onFile?.(index, reply.result, reply.ms);
        } catch (error) {
          this.#keep(error);
          return;
        }
      }
    } finally {
      if (buffers !== null) this.#arena.restore(buffers);
    }
  }

  /** A save (or reservation) ended: nothing in flight, the idle clock runs. */
  #settled(run: Promise<void>): void {
    if (this.#inflight !== run) return;
    this.#inflight = null;
    if (this.#worker === null || !Number.isFinite(this.#idleMs)) return;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#inflight === null) this.#terminate();
    }, this.#idleMs);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
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

  /** Sends one file to the Worker (starting it if needed) and waits for it. */
  #call(file: WireFile, buffers: ArrayBuffer[]): Promise<WireReply> {
    return this.#request({ id: 0, file, buffers }, buffers);
  }

  /** Sends one request to the Worker (starting it if needed) and waits. */
  #request(
    request: WireRequest,
    transfer: ArrayBuffer[],
  ): Promise<WireReply> {
    return new Promise((resolve, reject) => {
      try {
        const worker = this.#spawn();
        this.#pending = { resolve, reject };
        worker.postMessage({ ...request, id: this.#nextId++ }, transfer);
      } catch (error) {
        this.#pending = null;
        reject(error);
      }
    });
  }

  #spawn(): Worker {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(this.#workerUrl, {
      type: "module",
      name: "ckpt-save",
    });
    worker.onmessage = (e: MessageEvent<WireReply>) => {
      const pending = this.#pending;
      this.#pending = null;
      pending?.resolve(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#crash(`the save worker crashed: ${e.message}`);
    };
    worker.onmessageerror = () => {
      this.#crash("the save worker sent a message that could not be read");
    };
    this.#worker = worker;
    return worker;
  }

  #crash(message: string): void {
    this.#terminate();
    const pending = this.#pending;
    this.#pending = null;
    pending?.reject(new Error(message));
  }

  #terminate(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#worker?.terminate();
    this.#worker = null;
  }
}
