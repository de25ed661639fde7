/**
 * `CheckpointMonitor`: the training-loop callback that saves checkpoints
 * where and as MindFormers' `CheckpointMonitor` does, durably, with
 * conflicts rejected up front.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import { checkInteger } from "../core/_validate.ts";
import { resolveAppendInfo } from "../tensor/_append.ts";
import type { AppendValue } from "../tensor/types.ts";
import type { CheckpointLayout } from "../checkpoint/layout.ts";
import type { StoreLock } from "../store/store.ts";
import type { StepContext, TrainCallback } from "./callback.ts";
import type { CheckpointMonitorEventMap } from "./events.ts";
import type { CheckpointConfig, CheckpointMonitorOptions } from "./options.ts";
import { SaveTrigger } from "./triggers.ts";
import { Ledger } from "./_commit.ts";
import { listNames, lockRankFolder, prepareRun } from "./_disk.ts";
import { SaveExecutor } from "./_execute.ts";
import { planSave, type SavePlan } from "./_plan.ts";
import {
  exitForSignal,
  processOwner,
  type ProcessSignal,
  SignalInput,
} from "./_process.ts";
import { type ResolvedOptions, resolveOptions } from "./_resolve.ts";

const NOT_SAVED: Promise<boolean> = Promise.resolve(false);

/**
 * Saves checkpoints from inside a training loop, as MindFormers'
 * `CheckpointMonitor` does for MindSpore: a {@linkcode TrainCallback} whose
 * `onStepEnd` saves every `saveCheckpointSteps` global steps (or after
 * `saveCheckpointSeconds`), keeps the newest `keepCheckpointMax`, and lays
 * files out where MindFormers' resume tooling looks:
 *
 * ```text
 * <directory>/checkpoint/rank_R/{P}-{epoch}_{stepInEpoch}.ckpt   P = {prefix}_rank_R
 * <directory>/checkpoint/rank_R/meta.json
 * <directory>/checkpoint_network/rank_R/{P}-network.ckpt
 * <directory>/checkpoint_trainable/rank_R/{P}-trainable_params.ckpt
 * <directory>/checkpoint/rank_R/{P}-{epoch}_{step}_breakpoint.ckpt
 * <directory>/checkpoint/integrated/{prefix}-{epoch}_{stepInEpoch}.ckpt  (sliced parameters)
 * ```
 *
 * Whether a step end saves is decided when it is called, and the tensors
 * it saves are copied before it returns, so a loop that does not await
 * `onStepEnd` still gets each due step's own weights; saves run one at a
 * time, in order. Each file is committed durably (temporary name, fsync,
 * rename, fsync of the folder) and never replaces a file this monitor did
 * not write; then `meta.json` is replaced atomically; then retention
 * deletes old files of this monitor only. A failed save deletes nothing,
 * leaves no temporary file, is reported as an `error` event and rejects
 * the call; the next step end tries again. By default the step end resolves
 * once every file of the save is committed; the bookkeeping that reads no
 * tensor (retention, the integrated merge) runs on in the background, the
 * next save waits for it, and a failure there rejects the next step end,
 * `flush()`, `onTrainEnd()` or `close()`. With `asyncSave`, the step end
 * resolves once the tensors are copied into a reused arena; a Worker
 * writes the files and the monitor then updates `meta.json` and applies
 * retention. A background failure rejects the next step end (which still
 * saves when due), `flush()`, `onTrainEnd()` or `close()` (once) and is an
 * `error` event naming the file.
 *
 * Options are checked here: wrong types are TypeErrors, wrong values and
 * conflicts RangeErrors, missing permissions
 * `Deno.errors.PermissionDenied` naming the flag to pass. The disk is
 * prepared by {@linkcode CheckpointMonitor.prepare}, which `onTrainBegin`
 * and the first save call: it creates the folders, takes the rank folder's
 * lock for the monitor's life (a second writer is refused, naming the
 * holder), removes what crashed writers left, and picks the collision
 * suffix.
 *
 * @example Save every 2 steps, keep 2
 * ```ts
 * import { CheckpointMonitor, train } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 *
 * const directory = await Deno.makeTempDir();
 * const w = { dtype: "Float32" as const, shape: [2], data: new Float32Array(2) };
 * await using monitor = new CheckpointMonitor({
 *   directory,
 *   saveCheckpointSteps: 2,
 *   keepCheckpointMax: 2,
 *   saveNetworkParams: false,
 * });
 * await train({
 *   epochs: 2,
 *   stepsPerEpoch: 3,
 *   network: { w },
 *   step: () => void w.data.fill(1),
 *   callbacks: [monitor],
 * });
 * deepEqual(monitor.checkpoints.map((f) => f.split("/").pop()), [
 *   "CKP_rank_0-2_1.ckpt",
 *   "CKP_rank_0-2_3.ckpt",
 * ]);
 * await Deno.remove(directory, { recursive: true });
 * ```
 */
export class CheckpointMonitor extends EventTarget
  implements TrainCallback, AsyncDisposable {
  #o: ResolvedOptions;
  #owner = processOwner();
  #trigger: SaveTrigger;
  #timed: boolean;
  #startTime: number;
  #append: Map<string, AppendValue>;
  #stepOffset: number;
  #lastStep = 0;
  #closed = false;
  #signals: SignalInput;
  #executor: SaveExecutor;
  #layout: CheckpointLayout | null = null;
  #ledger: Ledger | null = null;
  #lock: StoreLock | null = null;
  #preparing: Promise<void> | null = null;

  /**
   * Checks the options and permissions; touches no file (see
   * {@linkcode CheckpointMonitor.prepare}).
   *
   * @param options Every option is optional; see
   * {@linkcode CheckpointMonitorOptions}.
   * @throws {TypeError} When an option has the wrong type, is unknown, or
   * `config` comes with policy options.
   * @throws {RangeError} When an option has a wrong value or two conflict.
   * @throws {Deno.errors.PermissionDenied} When read or write permission
   * for `directory` is missing.
   */
  constructor(options: CheckpointMonitorOptions = {}) {
    super();
    this.#o = resolveOptions(options);
    const config = this.#o.config;
    this.#append = resolveAppendInfo(config.appendInfo);
    const offset = this.#append.get("step_num");
    this.#stepOffset = typeof offset === "number" || typeof offset === "bigint"
      ? Number(offset)
      : 0;
    this.#startTime = this.#o.clock();
    this.#timed = config.saveCheckpointSteps === 0;
    this.#trigger = new SaveTrigger({
      saveCheckpointSteps: config.saveCheckpointSteps,
      saveCheckpointSeconds: config.saveCheckpointSeconds,
      startTime: this.#startTime,
    });
    this.#executor = new SaveExecutor({
      config,
      clock: this.#o.clock,
      rank: this.#o.rank,
      rankSize: this.#o.rankSize,
      emit: (type, detail) => this.#emit(type, detail),
    });
    this.#signals = new SignalInput(this.#o.signals);
    this.#signals.install();
  }

  /** The resolved policy settings. */
  get config(): CheckpointConfig {
    return this.#o.config;
  }

  /**
   * The folders and file names this monitor uses, known once the run is
   * prepared (the collision suffix depends on the folder's content).
   *
   * @throws {TypeError} Before {@linkcode CheckpointMonitor.prepare} (or
   * `onTrainBegin`, or the first save) has finished.
   */
  get layout(): CheckpointLayout {
    if (this.#layout === null) {
      throw new TypeError(
        "Cannot tell the layout yet: the collision suffix is chosen when the run is prepared; await monitor.prepare() (onTrainBegin and the first save do it) first",
      );
    }
    return this.#layout;
  }

  /** The folder the run writes under (the `directory` option), known at once. */
  get directory(): string {
    return this.#o.directory;
  }

  /** The rank in the folder and file names. */
  get rank(): number {
    return this.#o.rank;
  }

  /**
   * How many ranks save into the folder (option `rankSize`, else env
   * `RANK_SIZE`), or `undefined` when neither is set.
   */
  get rankSize(): number | undefined {
    return this.#o.rankSize;
  }

  /** The main checkpoints this monitor committed and still keeps, oldest first. */
  get checkpoints(): readonly string[] {
    return this.#ledger?.files ?? [];
  }

  /**
   * Registers an event listener; the monitor's events are `saved`,
   * `removed` and `error`, each a `CustomEvent` whose `detail` says what
   * happened.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options Standard listener options.
   *
   * @example
   * ```ts ignore
   * monitor.addEventListener("saved", (e) => console.log(e.detail.file));
   * ```
   */
  override addEventListener<K extends keyof CheckpointMonitorEventMap>(
    type: K,
    listener: (event: CheckpointMonitorEventMap[K]) => void,
    options?: Parameters<EventTarget["addEventListener"]>[2],
  ): void;
  /**
   * Registers an event listener for any event type.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options Standard listener options.
   */
  override addEventListener(
    type: string,
    listener: Parameters<EventTarget["addEventListener"]>[1],
    options?: Parameters<EventTarget["addEventListener"]>[2],
  ): void;
  override addEventListener(
    type: string,
    listener: Parameters<EventTarget["addEventListener"]>[1],
    options?: Parameters<EventTarget["addEventListener"]>[2],
  ): void {
    super.addEventListener(type, listener, options);
  }

  /**
   * Prepares the disk for the run, once: checks that `directory` is a
   * folder, creates `checkpoint/rank_R/` (and the network and trainable
   * folders the options ask for), takes the rank folder's lock for the
   * monitor's life, removes the temporary files crashed writers of this
   * prefix left, and picks the collision suffix against every folder the
   * run writes. `onTrainBegin` and the first save call it; call it yourself
   * to read {@linkcode CheckpointMonitor.layout} earlier.
   *
   * @returns The layout.
   * @throws {Deno.errors.NotADirectory} When `directory` is a file.
   * @throws {Error} When another writer holds the rank folder's lock (the
   * message names it).
   *
   * @example
   * ```ts
   * import { CheckpointMonitor } from "@ckpt/monitor";
   * const directory = await Deno.makeTempDir();
   * await using monitor = new CheckpointMonitor({ directory });
   * const layout = await monitor.prepare();
   * console.assert(layout.prefix === "CKP_rank_0");
   * await monitor.close();
   * await Deno.remove(directory, { recursive: true });
   * ```
   */
  async prepare(): Promise<CheckpointLayout> {
    if (this.#closed) throw closedError();
    await this.#ready();
    return this.layout;
  }

  /**
   * Starts (or restarts) a run at `ctx.step`: the step trigger counts from
   * it, so a resumed run saves `saveCheckpointSteps` steps after it. Also
   * prepares the disk ({@linkcode CheckpointMonitor.prepare}).
   *
   * @param ctx The context before the first step.
   * @returns When done.
   *
   * @example
   * ```ts ignore
   * await monitor.onTrainBegin({ step: 200, epoch: 3, stepsPerEpoch: 100, network });
   * ```
   */
  async onTrainBegin(ctx: StepContext): Promise<void> {
    if (this.#closed) throw closedError();
    const step = checkInteger(ctx.step, "step", 0, "Cannot start training");
    this.#lastStep = step;
    this.#trigger.saved(step);
    this.#signals.install();
    await this.#ready();
    this.#reserve(ctx);
  }

  /**
   * Saves when a save is due at this step end (or a signal asked for one).
   * The decision and the copy of the tensors happen before this returns,
   * so calls that are not awaited still save each due step's own weights,
   * in order.
   *
   * @param ctx The step that just ended.
   * @returns Whether it saved.
   * @throws {RangeError} When `ctx.step` is not greater than the previous
   * step (steps count from 1).
   *
   * @example
   * ```ts ignore
   * const saved = await monitor.onStepEnd({ step, epoch, stepsPerEpoch, network, optimizer });
   * ```
   */
  onStepEnd(ctx: StepContext): Promise<boolean> {
    const step = ctx.step;
    if (!Number.isSafeInteger(step) || !(step > this.#lastStep)) {
      return Promise.reject(this.#stepError(step));
    }
    if (this.#closed) return Promise.reject(closedError());
    this.#lastStep = step;
    // A failure of an earlier save is reported here; this step still saves.
    const failure = this.#executor.takeFailure();
    const signal = this.#signals.pending;
    const now = this.#timed ? this.#o.clock() : 0;
    const due = this.#trigger.isDue(step, now, signal !== null);
    // Without onTrainBegin, a step end that does not save prepares the
    // snapshot arena off this thread, so the first save copies at speed.
    if (!due && this.#executor.queue?.stats.arenaBytes === 0) {
      this.#reserve(ctx);
    }
    const saved = due ? this.#save(ctx) : NOT_SAVED;
    if (signal !== null) return this.#exitAfter(saved, signal);
    if (failure === undefined) return saved;
    saved.catch((error) => this.#executor.keep(error));
    return Promise.reject(failure);
  }

  /**
   * Nothing: like the original, the monitor does not save at epoch ends.
   *
   * @param _ctx The last step of the epoch.
   * @returns When done.
   *
   * @example
   * ```ts ignore
   * await monitor.onEpochEnd(ctx);
   * ```
   */
  onEpochEnd(_ctx: StepContext): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Saves the last step unless it was just saved, waits for every save,
   * removes the signal listeners and releases the rank folder's lock (a
   * later save takes it again).
   *
   * @param ctx The last step. Without it nothing more is saved: the call
   * only waits for the saves already started and releases what the monitor
   * holds (for a loop that has no context left at its end).
   * @returns When the last save is committed.
   *
   * @example
   * ```ts ignore
   * await monitor.onTrainEnd(ctx);
   * ```
   */
  async onTrainEnd(ctx?: StepContext): Promise<void> {
    if (this.#closed) throw closedError();
    if (ctx !== undefined && ctx.step < this.#lastStep) {
      throw this.#stepError(ctx.step);
    }
    if (ctx !== undefined) this.#lastStep = ctx.step;
    try {
      if (
        ctx !== undefined &&
        this.#trigger.isDue(ctx.step, this.#o.clock(), true)
      ) {
        await this.#save(ctx);
      }
      await this.flush();
    } finally {
      // No Worker may keep the process alive after training.
      await this.#executor.stopWorker();
      this.#signals.remove();
      await this.#unlock();
    }
  }

  /**
   * With `exceptionSave`, saves `{P}-{E}_{S}_breakpoint.ckpt` (network and
   * optimizer, always `.ckpt`); the loop rethrows `error` afterwards. Also
   * removes the signal listeners.
   *
   * @param ctx The failing step.
   * @param _error What escaped the loop.
   * @returns When the breakpoint file is committed.
   *
   * @example
   * ```ts ignore
   * try { await step(); } catch (e) { await monitor.onException(ctx, e); throw e; }
   * ```
   */
  async onException(ctx: StepContext, _error: unknown): Promise<void> {
    this.#signals.remove();
    if (this.#closed || !this.#o.config.exceptionSave) return;
    await this.#executor.settle();
    await this.#ready();
    const { plan, append } = planSave(ctx, "breakpoint", this.#planInput());
    this.#append = append;
    const layout = this.layout;
    const names = await listNames(this.#o.store, layout.checkpointDir);
    const path = layout.breakpointFile(plan.epoch, plan.stepInEpoch, names);
    const placed: SavePlan = {
      ...plan,
      files: [{ ...plan.files[0]!, path }],
    };
    const { accepted, finished } = this.#executor.submit(placed, null, noop);
    await accepted;
    const error = await finished ?? this.#executor.takeFailure();
    if (error !== undefined) throw error;
  }

  /**
   * Waits until every save started so far, with its `meta.json` update and
   * retention, has finished. With `asyncSave`, also until the snapshot
   * arena that `onTrainBegin` (or a step end that does not save) started
   * preparing is ready: `await monitor.flush()` after `onTrainBegin` makes
   * even the first save copy at memory speed.
   *
   * @returns When done.
   * @throws When that bookkeeping failed (the error was also reported as an
   * `error` event).
   *
   * @example
   * ```ts ignore
   * await monitor.flush();
   * ```
   */
  async flush(): Promise<void> {
    await this.#executor.settle();
    await this.#executor.queue?.prepared();
    const failure = this.#executor.takeFailure();
    if (failure !== undefined) throw failure;
  }

  /**
   * Removes the signal listeners, waits for every save (rethrowing a
   * bookkeeping failure, as `flush()`) and releases the rank folder's lock;
   * later callback calls reject. Calling it again does nothing.
   *
   * @returns When closed.
   *
   * @example
   * ```ts
   * import { CheckpointMonitor } from "@ckpt/monitor";
   * const directory = await Deno.makeTempDir();
   * const monitor = new CheckpointMonitor({ directory });
   * await monitor.close();
   * await monitor.close();
   * await Deno.remove(directory, { recursive: true });
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#signals.remove();
    try {
      await this.flush();
    } finally {
      await this.#executor.close();
      await this.#preparing?.catch(() => {});
      await this.#unlock();
    }
  }

  /**
   * Closes the monitor, so `await using` works.
   *
   * @returns When closed.
   *
   * @example
   * ```ts
   * import { CheckpointMonitor } from "@ckpt/monitor";
   * const directory = await Deno.makeTempDir();
   * {
   *   await using _monitor = new CheckpointMonitor({ directory });
   * }
   * await Deno.remove(directory, { recursive: true });
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Plans a main save of `ctx`, copies its tensors and queues it; resolves
   * as the step end should (see {@linkcode SaveExecutor.submit}).
   */
  #save(ctx: StepContext): Promise<boolean> {
    const step = ctx.step;
    const before = this.#trigger.lastSavedStep;
    this.#trigger.saved(step);
    const retry = () => {
      // A failed save is tried again at the next step end.
      if (this.#trigger.lastSavedStep === step) this.#trigger.saved(before);
    };
    try {
      const { plan, append } = planSave(ctx, "main", this.#planInput());
      const submitted = this.#executor.submit(plan, this.#ready(), retry);
      this.#append = append;
      return submitted.accepted.then(() => true);
    } catch (error) {
      retry();
      return Promise.reject(error);
    }
  }

  /** After the save a signal asked for: wait for everything, then exit. */
  async #exitAfter(
    saved: Promise<boolean>,
    signal: ProcessSignal,
  ): Promise<never> {
    try {
      // A failed save was reported as an `error` event; exit all the same.
      await saved.catch(() => false);
      await this.#executor.settle();
    } finally {
      this.#signals.remove();
      exitForSignal(signal);
    }
  }

  /** `null` when the run is prepared and locked, else the preparation. */
  #ready(): Promise<void> | null {
    if (this.#lock !== null) return null;
    this.#preparing ??= this.#prepare().then(
      () => void (this.#preparing = null),
      (error) => {
        this.#preparing = null;
        throw error;
      },
    );
    return this.#preparing;
  }

  async #prepare(): Promise<void> {
    const { store, directory, prefix, rank, config } = this.#o;
    if (this.#layout !== null) {
      // Prepared before, lock released at train end: take it again.
      this.#lock = await lockRankFolder(
        store,
        this.#layout.checkpointDir,
        this.#owner,
      );
      return;
    }
    const run = await prepareRun({
      store,
      directory,
      prefix,
      rank,
      format: config.format,
      owner: this.#owner,
      extraFolders: {
        network: config.saveNetworkParams,
        trainable: config.saveTrainableParams,
      },
      acrossRuns: config.retentionScope === "prefix",
      now: this.#o.clock(),
    });
    const layout = run.layout;
    this.#ledger = new Ledger(
      {
        keepCheckpointMax: config.keepCheckpointMax,
        keepCheckpointPerNMinutes: config.keepCheckpointPerNMinutes,
        rankSize: this.#o.rankSize,
        rank,
        prefix: layout.prefix,
        format: layout.extension,
        encMode: config.encKey === undefined ? null : config.encMode,
      },
      this.#startTime,
      run.earlier,
    );
    this.#executor.run = {
      store,
      layout,
      ledger: this.#ledger,
      owner: this.#owner,
      relocked: (lock) => {
        const old = this.#lock;
        this.#lock = lock;
        old?.release().catch(() => {});
      },
    };
    this.#layout = layout;
    this.#lock = run.lock;
  }

  async #unlock(): Promise<void> {
    const lock = this.#lock;
    this.#lock = null;
    await lock?.release();
  }

  #planInput() {
    return {
      config: this.#o.config,
      stepOffset: this.#stepOffset,
      append: this.#append,
    };
  }

  /**
   * With `asyncSave`, prepares the snapshot arena for the saves to come off
   * the loop's thread, so that even the first save copies at memory speed.
   */
  #reserve(ctx: StepContext): void {
    const queue = this.#executor.queue;
    if (queue === null) return;
    let plan: SavePlan;
    try {
      plan = planSave(ctx, "main", this.#planInput()).plan;
    } catch {
      return; // The save itself will report what is wrong with the context.
    }
    try {
      queue.reserve(
        plan.files.map((f) => ({ path: f.path, network: f.network })),
      );
    } catch {
      // Never out of a step end: the save itself reports the problem.
    }
  }

  async #emit<K extends keyof CheckpointMonitorEventMap>(
    type: K,
    detail: CheckpointMonitorEventMap[K]["detail"],
  ): Promise<void> {
    this.dispatchEvent(new CustomEvent(type, { detail }));
    const hooks = this.#o.hooks;
    const hook = type === "saved"
      ? hooks.onSaved
      : type === "removed"
      ? hooks.onRemoved
      : hooks.onError;
    await (hook as ((d: typeof detail) => unknown) | undefined)?.(detail);
  }

  #stepError(step: unknown): RangeError {
    return new RangeError(
      this.#lastStep === 0
        ? `Cannot handle step end: step must be an integer of at least 1 (steps count from 1), received ${
          describe(step)
        }`
        : `Cannot handle step end: step must be an integer greater than the previous step ${this.#lastStep}, received ${
          describe(step)
        }`,
    );
  }
}

function noop(): void {}

function closedError(): TypeError {
  return new TypeError("Cannot use CheckpointMonitor: it is closed");
}
