// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The types of the background save queue (`save_queue.ts`): its hooks,
 * tickets, counters, options and the held copy of a save's tensors.
 *
 * @module
 */

import type { SaveResult } from "../checkpoint/checkpoint.ts";
import type { Snapshot } from "./snapshot.ts";

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
   * `SaveQueue.enqueue` returns for this save (complete before
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

/** What `SaveQueue.enqueue` did before returning. */
export interface SaveTicket {
  /** Milliseconds spent waiting for the save in flight (back-pressure). */
  readonly waitedMs: number;
  /** Milliseconds spent copying the tensors. */
  readonly snapshotMs: number;
  /** Bytes copied. */
  readonly bytes: number;
}

/**
 * A copy of a save's tensors taken by `SaveQueue.hold`, waiting
 * in the arena to be written by `SaveQueue.enqueue` (or given
 * back by `SaveQueue.release`).
 */
export interface HeldSnapshot {
  /** Bytes copied. */
  readonly bytes: number;
  /** Milliseconds the copy took. */
  readonly snapshotMs: number;
}

/** The queue's side of a {@linkcode HeldSnapshot}. */
export interface Held extends HeldSnapshot {
  readonly snapshot: Snapshot;
  /** Taken by `enqueue` or given back: the arena is no longer this one's. */
  done: boolean;
}

/** Counters of a `SaveQueue`. */
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
  /** Saves whose arena came back before their commit (bytes written). */
  readonly early: number;
  /**
   * Snapshots that waited, blocking, for the save in flight to give the
   * arena back (its bytes written) instead of copying into a second one.
   */
  readonly reclaims: number;
  /** Milliseconds those waits took, in total. */
  readonly reclaimedMs: number;
  /**
   * Bytes of the arena's slabs prepared (allocated and touched) by
   * `SaveQueue.reserve` rather than by a snapshot's copy: in the Worker,
   * or on the caller's thread beside it when a snapshot completed the
   * reservation.
   */
  readonly reservedBytes: number;
}

/** Options of `SaveQueue`. */
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
   * until `SaveQueue.stop` or `SaveQueue.close`.
   *
   * @default {5000}
   */
  idleMs?: number;
}
