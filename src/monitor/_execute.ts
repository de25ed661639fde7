// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: running save plans. One chain holds everything in flight (the
// saves, one at a time, and the bookkeeping after each: `meta.json`,
// retention, the integrated merge); one slot holds a failure nobody was
// told of yet. The tensors of a plan are copied before `submit` returns, so
// the training loop may change them at once, awaited or not.

import type { EncMode } from "../crypto/cipher.ts";
import {
  saveCheckpoint,
  type SaveCheckpointOptions,
  type SaveResult,
} from "../checkpoint/checkpoint.ts";
import type { CheckpointLayout } from "../checkpoint/layout.ts";
import {
  type HeldSnapshot,
  SaveQueue,
  type SaveQueueFile,
} from "../background/save_queue.ts";
import { SnapshotArena } from "../background/snapshot.ts";
import {
  type CheckpointStore,
  dirnamePath,
  type StoreLock,
} from "../store/store.ts";
import type {
  CheckpointMonitorEventMap,
  CheckpointSavedDetail as SavedDetail,
} from "./events.ts";
import type { CheckpointConfig, Clock } from "./options.ts";
import type { RetentionRemoval } from "./retention.ts";
import { type Ledger, writeMeta } from "./_commit.ts";
import { ensureFolders, lockRankFolder } from "./_disk.ts";
import { integrateStep } from "./_integrate.ts";
import {
  type FilePlan,
  placePlan,
  type PlanSnapshot,
  type SavePlan,
  snapshotPlan,
} from "./_plan.ts";

/** Reports an event (and calls its hook). */
export type Emit = <K extends keyof CheckpointMonitorEventMap>(
  type: K,
  detail: CheckpointMonitorEventMap[K]["detail"],
) => Promise<void>;

/** What the executor works with, fixed once the run is prepared. */
export interface ExecutorRun {
  readonly store: CheckpointStore;
  readonly layout: CheckpointLayout;
  readonly ledger: Ledger;
  readonly owner: string;
  /** Called when the rank folder was created again and locked anew. */
  relocked(lock: StoreLock): void;
}

/** What the executor needs from its monitor. */
export interface ExecutorSettings {
  readonly config: CheckpointConfig;
  readonly clock: Clock;
  readonly rank: number;
  readonly rankSize: number | undefined;
  readonly emit: Emit;
}

/** A submitted save. */
export interface Submitted {
  /**
   * What the step end waits for: the files committed (sync), or the
   * tensors handed to the background queue (`asyncSave`). Rejects when the
   * save failed (sync) or could not be queued.
   */
  readonly accepted: Promise<void>;
  /** The save and its bookkeeping finished; resolves to its error, if any. */
  readonly finished: Promise<unknown>;
}

const DONE: Promise<void> = Promise.resolve();

/**
 * Work that goes on after a step resolved (wrapped, so that an async
 * function returning it does not wait for it).
 */
interface Later {
  readonly after: Promise<void>;
}

/**
 * A plan's files as the background queue takes them; the tensors (network,
 * then those of `appendInfo`) are listed in the same order whatever the
 * options, so a copy taken before the paths are known fits the files.
 */
function queueFiles(
  plan: SavePlan,
  options: (file: FilePlan) => SaveCheckpointOptions,
): SaveQueueFile[] {
  return plan.files.map((file) => ({
    path: file.path,
    network: file.network,
    options: {
      ...options(file),
      ...(file.appendInfo && { appendInfo: file.appendInfo }),
    },
  }));
}

/** Runs save plans one at a time; see the module comment. */
export class SaveExecutor {
  #settings: ExecutorSettings;
  #run: ExecutorRun | null = null;
  #tail: Promise<void> = DONE;
  #busy = 0;
  #failure: { error: unknown } | undefined;
  /** Copies of a save waiting for the one in flight (and sync saves). */
  #arena = new SnapshotArena();
  #queue: SaveQueue | null;
  /**
   * Saves copied into this executor's arena (or fresh memory) whose turn
   * to be handed to the queue has not come: while there is one, a later
   * save may not take the queue's arena before it.
   */
  #waitingCopies = 0;
  /** Network and trainable files this monitor wrote (it may replace them). */
  #created = new Set<string>();
  /** Not prepared yet, or a save failed: check the folders before the next. */
  #checkFolders = true;
  #rankSizeReported = false;

  constructor(settings: ExecutorSettings) {
    this.#settings = settings;
    this.#queue = settings.config.asyncSave ? new SaveQueue() : null;
  }

  /** Sets the prepared run (its folders exist) before the first save. */
  set run(run: ExecutorRun) {
    this.#run = run;
    this.#checkFolders = false;
  }

  /** The background queue, with `asyncSave`. */
  get queue(): SaveQueue | null {
    return this.#queue;
  }

  /** Returns the failure nobody was told of yet, and forgets it. */
  takeFailure(): unknown {
    const failure = this.#failure;
    this.#failure = undefined;
    return failure?.error;
  }

  /** Keeps a failure for the next call that can report it. */
  keep(error: unknown): void {
    this.#failure ??= { error };
  }

  /**
   * Queues a plan: its tensors are copied now (with `asyncSave`, straight
   * into the background queue's arena when no save holds it; else into
   * this executor's arena), then it runs after the saves before it. `ready`
   * is awaited first (the run's preparation). `onFailed` is called when
   * the save fails, before `finished` settles.
   */
  submit(
    plan: SavePlan,
    ready: Promise<unknown> | null,
    onFailed: () => void,
  ): Submitted {
    const queue = this.#queue;
    let held: HeldSnapshot | null = null;
    let snapshot: PlanSnapshot | null = null;
    // A save still writing gives the arena back once its bytes are out
    // (before its commit): wait for that rather than copy into a second
    // arena. A save of two files holds it until the second is written.
    let reclaimedMs = 0;
    if (queue !== null && this.#waitingCopies === 0) {
      const start = this.#settings.clock();
      queue.reclaim();
      reclaimedMs = this.#settings.clock() - start;
    }
    if (queue !== null && queue.free && this.#waitingCopies === 0) {
      // One copy, into the memory the Worker writes from: the first save
      // of a run that is not prepared yet included.
      held = queue.hold(queueFiles(plan, () => ({})));
    } else {
      snapshot = snapshotPlan(plan, this.#arena);
      if (queue !== null) this.#waitingCopies++;
    }
    const copied = this.#settings.clock();
    const copy = snapshot?.plan ?? plan;
    const previous = this.#tail;
    const start = previous.then(() => ready).then(async () => {
      const placed = this.#place(copy);
      await this.#prepareFolders(placed);
      return placed;
    });
    let written: Promise<Later>;
    if (queue === null) {
      written = start.then((placed) => this.#write(placed));
    } else {
      const enqueued = start.then((placed) =>
        this.#enqueue(
          placed,
          queue,
          reclaimedMs + this.#settings.clock() - copied,
          held,
        )
      );
      written = held !== null ? enqueued : enqueued.finally(() => {
        this.#waitingCopies--;
      });
    }
    const accepted = written.then(() => {});
    const release = () => {
      snapshot?.release();
      if (held !== null) queue?.release(held);
    };
    // `written` resolves to the bookkeeping still running; its failures and
    // the save's own end in `finished`, which never rejects.
    const finished = written.then(
      (later) => {
        release();
        return later.after.then(
          () => this.#drainQueue(onFailed),
          (error) => void this.keep(error),
        );
      },
      (error) => {
        release();
        this.#checkFolders = true;
        onFailed();
        return error;
      },
    );
    this.#busy++;
    this.#tail = finished.then(() => void this.#busy--);
    // The step end gets `accepted`; a background failure goes to `keep`.
    return { accepted, finished };
  }

  /** Waits until nothing is in flight (later submissions included). */
  async settle(): Promise<void> {
    for (;;) {
      const tail = this.#tail;
      await tail;
      if (tail === this.#tail) return;
    }
  }

  /** Ends the background Worker (a later save starts a new one). */
  async stopWorker(): Promise<void> {
    await this.#queue?.stop().catch((error) => this.keep(error));
  }

  /** Ends the background queue for good. */
  async close(): Promise<void> {
    await this.#queue?.close().catch((error) => this.keep(error));
  }

  /** Moves the queue's kept failure (of the save just finished) here. */
  #drainQueue(onFailed: () => void): undefined {
    const error = this.#queue?.takeFailure();
    if (error !== undefined) {
      this.#checkFolders = true;
      onFailed();
      this.keep(error);
    }
    return undefined;
  }

  /**
   * Creates a save's folders when one went missing: before every save on
   * this thread (a few `stat`s), before the first and after a failure with
   * `asyncSave` (whose saves start before anything can be awaited).
   */
  async #prepareFolders(plan: SavePlan): Promise<void> {
    if (!this.#checkFolders && this.#queue !== null) return;
    const run = this.#prepared();
    const folders = plan.files.map((f) => dirnamePath(f.path));
    const rankFolder = run.layout.checkpointDir;
    if (await ensureFolders(run.store, folders, rankFolder)) {
      run.relocked(await lockRankFolder(run.store, rankFolder, run.owner));
    }
    this.#checkFolders = false;
  }

  /** Writes a plan's files in order on this thread; resolves after `meta.json`. */
  async #write(plan: SavePlan): Promise<Later> {
    let after = DONE;
    for (const file of plan.files) {
      const start = this.#settings.clock();
      let result: SaveResult;
      try {
        result = await saveCheckpoint(
          file.path,
          file.network,
          this.#saveOptions(file, true),
        );
      } catch (error) {
        await this.#settings.emit("error", { error, file: file.path });
        throw error;
      }
      this.#created.add(file.path);
      const saved = this.#savedDetail(plan, file, result, start);
      if (file.kind === "main") {
        // Retention and the merge overlap the other files and the next
        // steps; the next save waits for them (they are on the chain).
        // `saved` comes once `meta.json` names the file, so that a listener
        // that resumes from it finds it.
        const later = await this.#commit(plan, result);
        after = later.after.catch((error) => this.keep(error));
      }
      await this.#settings.emit("saved", saved);
    }
    return { after };
  }

  /**
   * Hands a plan to the background queue; resolves once its tensors are
   * copied, to a promise of the end of its writes and bookkeeping.
   */
  async #enqueue(
    plan: SavePlan,
    queue: SaveQueue,
    waitedMs: number,
    held: HeldSnapshot | null,
  ): Promise<Later> {
    // A store the Worker cannot be sent is written by the queue itself.
    const files = queueFiles(plan, (file) => this.#saveOptions(file, true));
    const start = this.#settings.clock();
    await queue.enqueue(files, {
      // The queue hands each hook the ticket of this save: its own wait for
      // the save before comes on top of the wait in the monitor's chain.
      onFile: async (i, result, _ms, ticket) => {
        const file = plan.files[i]!;
        this.#created.add(file.path);
        const saved = this.#savedDetail(
          plan,
          file,
          result,
          start,
          waitedMs + ticket.waitedMs,
        );
        // `saved` once `meta.json` names the file (see #write).
        const later = file.kind === "main"
          ? await this.#commit(plan, result)
          : null;
        await this.#settings.emit("saved", saved);
        await later?.after;
      },
      onError: (i, error) =>
        this.#settings.emit("error", { error, file: plan.files[i]!.path }),
    }, held ?? undefined);
    return { after: queue.idle() };
  }

  /** The `saveCheckpoint` options of one file (breakpoints are always `.ckpt`). */
  #saveOptions(file: FilePlan, withStore: boolean): SaveCheckpointOptions {
    const config = this.#settings.config;
    return {
      format: file.kind === "breakpoint" ? "ckpt" : config.format,
      ...(file.appendInfo && { appendInfo: file.appendInfo }),
      ...this.#cipher(),
      // Never replace a file this monitor did not write.
      overwrite: this.#created.has(file.path),
      ...(withStore && { store: this.#prepared().store }),
    };
  }

  /** The `saved` event's detail of one file (its time ends now). */
  #savedDetail(
    plan: SavePlan,
    file: FilePlan,
    result: SaveResult,
    start: number,
    waitedMs?: number,
  ): SavedDetail {
    return {
      file: result.path,
      kind: file.kind,
      bytes: result.bytes,
      checksum: result.checksum,
      durationMs: this.#settings.clock() - start,
      step: plan.step,
      epoch: plan.epoch,
      ...(waitedMs !== undefined && { waitedMs }),
    };
  }

  /**
   * After a main file is committed: `meta.json` (awaited, so that once a
   * save is reported `meta.json` names it), then, returned still running,
   * retention's deletions and the integrated merge. A failure to write
   * `meta.json` rejects; a failed deletion or merge is an `error` event.
   */
  async #commit(plan: SavePlan, result: SaveResult): Promise<Later> {
    const { store, layout, ledger } = this.#prepared();
    const decision = ledger.commit(plan, result, this.#settings.clock());
    try {
      await writeMeta(store, layout.metaFile, decision.meta);
    } catch (error) {
      await this.#settings.emit("error", { error, file: layout.metaFile });
      throw error;
    }
    decision.accept();
    const after = this.#remove(decision.remove).then(() =>
      this.#integrate(plan)
    );
    after.catch(() => {}); // Handled where `after` is awaited.
    return { after };
  }

  /** Retention's deletions, in order; a failed one is an `error` event. */
  async #remove(remove: readonly RetentionRemoval[]): Promise<void> {
    const { store } = this.#prepared();
    const emit = this.#settings.emit;
    for (const { checkpoint, reason } of remove) {
      try {
        await store.remove(checkpoint.file);
      } catch (error) {
        await emit("error", { error, file: checkpoint.file });
        continue;
      }
      await emit("removed", { file: checkpoint.file, reason });
    }
  }

  /**
   * With `integratedSave` and sliced parameters in the main file just
   * committed: assembles the step's whole tensors once every rank has
   * committed it, then applies retention there. A failure is an `error`
   * event naming the integrated file; it fails no save.
   */
  async #integrate(plan: SavePlan): Promise<void> {
    const { config, clock, emit, rank } = this.#settings;
    if (!config.integratedSave || plan.files[0]?.slices === undefined) return;
    const { store, layout } = this.#prepared();
    const file = layout.integratedFile(plan.epoch, plan.stepInEpoch);
    const given = this.#settings.rankSize;
    const rankSize = given ?? (rank === 0 ? 1 : undefined);
    const start = clock();
    let outcome: Awaited<ReturnType<typeof integrateStep>>;
    try {
      if (rankSize === undefined) {
        if (this.#rankSizeReported) return;
        this.#rankSizeReported = true;
        throw new RangeError(
          `Cannot assemble sliced parameters: rank ${rank} does not know how many ranks there are; set option "rankSize" or env "RANK_SIZE" (the rank files are saved all the same)`,
        );
      }
      outcome = await integrateStep({
        store,
        layout,
        rankSize,
        epoch: plan.epoch,
        stepInEpoch: plan.stepInEpoch,
        step: plan.step,
        keepCheckpointMax: config.keepCheckpointMax,
        keepCheckpointPerNMinutes: config.keepCheckpointPerNMinutes,
        ...this.#cipher(),
        encMode: config.encMode,
      });
    } catch (error) {
      await emit("error", {
        error: given === undefined && rankSize === 1
          ? new Error(
            `${
              (error as Error).message
            } (rankSize was not set and counts 1 for rank 0: set option "rankSize" or env "RANK_SIZE" when more ranks save here)`,
            { cause: error },
          )
          : error,
        file,
      });
      return;
    }
    if (outcome === null) return;
    const { result, remove } = outcome;
    await emit("saved", {
      file: result.path,
      kind: "integrated",
      bytes: result.bytes,
      checksum: result.checksum,
      durationMs: clock() - start,
      step: plan.step,
      epoch: plan.epoch,
    });
    await this.#remove(remove);
  }

  #cipher(): { encKey?: Uint8Array; encMode?: EncMode } {
    const { encKey, encMode } = this.#settings.config;
    return encKey === undefined ? {} : { encKey, encMode };
  }

  #place(plan: SavePlan): SavePlan {
    return placePlan(plan, this.#prepared().layout);
  }

  #prepared(): ExecutorRun {
    if (this.#run === null) {
      throw new TypeError("Cannot save: the monitor's run is not prepared");
    }
    return this.#run;
  }
}
