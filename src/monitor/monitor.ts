/**
 * `CheckpointMonitor`: the training-loop callback that saves checkpoints
 * where and as MindFormers' `CheckpointMonitor` does, durably, with
 * conflicts rejected up front.
 *
 * @module
 */

import type { EncMode } from "../crypto/cipher.ts";
import { basename, dirname } from "node:path";
import { resolveAppendInfo } from "../tensor/_append.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  checkBoolean,
  checkCount,
  checkKnownKeys,
  CONFIG_KEYS,
  SNAKE_NAMES,
} from "../core/_validate.ts";
import type { StepContext, TrainCallback } from "./callback.ts";
import type {
  CheckpointErrorDetail,
  CheckpointKind,
  CheckpointRemovedDetail,
  CheckpointSavedDetail,
} from "./events.ts";
import {
  saveCheckpoint,
  type SaveCheckpointOptions,
  type SaveResult,
} from "../checkpoint/checkpoint.ts";
import {
  CheckpointConfig,
  type CheckpointMonitorOptions,
  type CheckpointSignal,
  type Clock,
} from "./options.ts";
import { removeTempFiles } from "../store/temp_files.ts";
import {
  type CommittedCheckpoint,
  planRetention,
  type RetentionDecision,
} from "./retention.ts";
import {
  checkPermissions,
  countFromEnv,
  listFiles,
  prepareCheckpointDir,
  rankFromEnv,
} from "../store/_prepare.ts";
import { integrateStep } from "./_integrate.ts";
import { sliceLayouts } from "../tensor/_slices.ts";
import { writeFileAtomic } from "../store/atomic_write.ts";
import {
  CheckpointLayout,
  type CheckpointMeta,
  type CheckpointMetaFile,
  checkPrefix,
  stepInEpoch,
} from "../checkpoint/layout.ts";
import { SaveQueue, type SaveQueueFile } from "../background/save_queue.ts";
import { SaveTrigger } from "./triggers.ts";
import {
  type AppendValue,
  networkParameters,
  type Parameter,
  type ParameterSlice,
  type Tensor,
} from "../tensor/types.ts";

const MONITOR_KEYS: ReadonlySet<string> = new Set([
  ...CONFIG_KEYS,
  "prefix",
  "directory",
  "config",
  "rank",
  "rankSize",
  "clock",
  "signals",
  "onSaved",
  "onRemoved",
  "onError",
]);

const SIGNAL_NUMBERS: Readonly<Record<CheckpointSignal, number>> = {
  SIGINT: 2,
  SIGTERM: 15,
};

const NOT_SAVED: Promise<boolean> = Promise.resolve(false);

/** One file of a save, with everything needed to write it. */
interface FilePlan {
  readonly kind: CheckpointKind;
  readonly path: string;
  readonly network: readonly Parameter[];
  readonly appendInfo?: ReadonlyMap<string, AppendValue>;
  /** Where its sliced parameters lie, for `meta.json` (main files). */
  readonly slices?: Readonly<Record<string, ParameterSlice>>;
}

/**
 * One save: what a step end decided to write. Building it reads the step
 * context; running it ({@linkcode CheckpointMonitor}'s `#run`) only reads the
 * plan, so a background queue can run it later on a snapshot.
 */
interface SavePlan {
  readonly step: number;
  readonly epoch: number;
  readonly stepInEpoch: number;
  readonly stepNum: number;
  readonly files: readonly FilePlan[];
}

/** A committed main checkpoint, as retention and `meta.json` see it. */
interface Committed extends CommittedCheckpoint {
  readonly meta: CheckpointMetaFile;
}

/** The events of a {@linkcode CheckpointMonitor}, by type. */
export interface CheckpointMonitorEventMap {
  /** A file was committed. */
  saved: CustomEvent<CheckpointSavedDetail>;
  /** Retention removed a file. */
  removed: CustomEvent<CheckpointRemovedDetail>;
  /** A save or a removal failed. */
  error: CustomEvent<CheckpointErrorDetail>;
}

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
 * Each file is committed durably (temporary name, fsync, rename, fsync of
 * the folder); then `meta.json` is replaced atomically; then retention
 * deletes old files of this monitor only. A failed save deletes nothing,
 * leaves no temporary file, is reported as an `error` event and rejects the
 * call. By default the step end resolves once every file of the save is
 * committed; the bookkeeping that reads no tensor (`meta.json`, then
 * retention) runs on in the background, the next save waits for it, and a
 * failure there rejects the next step end, `flush()`, `onTrainEnd()` or
 * `close()`. With `asyncSave`, the step end resolves once the tensors are
 * copied into a reused arena; a Worker writes the files and the monitor
 * then updates `meta.json` and applies retention, one save at a time (a
 * save due while one is writing waits for it). A background failure
 * rejects the next step end, `flush()`, `onTrainEnd()` or `close()` (once)
 * and is an `error` event naming the file.
 *
 * Options are checked once, here: wrong types are TypeErrors, wrong values
 * and conflicts RangeErrors, missing permissions
 * `Deno.errors.PermissionDenied` naming the flag to pass.
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
  #config: CheckpointConfig;
  #layout: CheckpointLayout;
  #rank: number;
  #rankSize: number | undefined;
  #rankSizeReported = false;
  #clock: Clock;
  #timed: boolean;
  #trigger: SaveTrigger;
  #append: Map<string, AppendValue>;
  #stepOffset: number;
  #committed: Committed[] = [];
  #previousSaveTime: number;
  #lastStep = 0;
  #closed = false;
  #queue: Promise<void> = Promise.resolve();
  #background: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | undefined;
  #extraDirsMade = new Set<string>();
  #signals: readonly CheckpointSignal[];
  #listeners: Map<CheckpointSignal, () => void> = new Map();
  #pendingSignal: CheckpointSignal | null = null;
  #hooks: Pick<CheckpointMonitorOptions, "onSaved" | "onRemoved" | "onError">;
  /** The background pipeline, with `asyncSave`. */
  #saver: SaveQueue | null = null;

  /**
   * Validates the options, checks permissions, creates
   * `<directory>/checkpoint/rank_R/` and resolves the file-name prefix
   * against the files already there.
   *
   * @param options Every option is optional; see
   * {@linkcode CheckpointMonitorOptions}.
   * @throws {TypeError} When an option has the wrong type, is unknown, or
   * `config` comes with policy options.
   * @throws {RangeError} When an option has a wrong value or two conflict.
   * @throws {Deno.errors.PermissionDenied} When read or write permission
   * for `directory` is missing.
   * @throws {Deno.errors.NotADirectory} When `directory` is a file.
   */
  constructor(options: CheckpointMonitorOptions = {}) {
    super();
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Cannot configure checkpoints: options must be an object, received ${
          describe(options)
        }`,
      );
    }
    checkKnownKeys(options, MONITOR_KEYS, SNAKE_NAMES);
    this.#config = resolveConfig(options);
    const prefix = checkPrefix(options.prefix ?? "CKP");
    const directory = options.directory ?? "./output";
    if (typeof directory !== "string") {
      throw new TypeError(
        `Cannot use option "directory": expected a string, received ${
          describe(directory)
        }`,
      );
    }
    if (directory.length === 0 || directory.includes("\0")) {
      throw new RangeError(
        `Cannot use option "directory": expected a non-empty path without NUL, received ${
          describe(directory)
        }`,
      );
    }
    this.#rank = options.rank === undefined
      ? rankFromEnv()
      : checkCount(options.rank, "rank", true);
    this.#rankSize = options.rankSize === undefined
      ? countFromEnv("RANK_SIZE", 1)
      : checkCount(options.rankSize, "rankSize", true);
    if (this.#rankSize === 0) {
      throw new RangeError(
        `Cannot configure checkpoints: option "rankSize" must be a positive integer, received number 0`,
      );
    }
    if (this.#rankSize !== undefined && !(this.#rank < this.#rankSize)) {
      throw new RangeError(
        `Cannot configure checkpoints: rank ${this.#rank} must be below rankSize ${this.#rankSize} (option "rankSize" or env "RANK_SIZE")`,
      );
    }
    this.#clock = options.clock ?? (() => performance.now());
    if (typeof this.#clock !== "function") {
      throw new TypeError(
        `Cannot use option "clock": expected a function, received ${
          describe(options.clock)
        }`,
      );
    }
    this.#signals = resolveSignals(options.signals);
    for (const hook of ["onSaved", "onRemoved", "onError"] as const) {
      const h = options[hook];
      if (h !== undefined && typeof h !== "function") {
        throw new TypeError(
          `Cannot use option "${hook}": expected a function, received ${
            describe(h)
          }`,
        );
      }
    }
    this.#hooks = {
      ...(options.onSaved && { onSaved: options.onSaved }),
      ...(options.onRemoved && { onRemoved: options.onRemoved }),
      ...(options.onError && { onError: options.onError }),
    };

    const config = this.#config;
    this.#append = resolveAppendInfo(config.appendInfo);
    const offset = this.#append.get("step_num");
    this.#stepOffset = typeof offset === "number" || typeof offset === "bigint"
      ? Number(offset)
      : 0;

    checkPermissions(directory);
    const where = { prefix, rank: this.#rank, format: config.format };
    const names = prepareCheckpointDir(
      directory,
      new CheckpointLayout(directory, where).checkpointDir,
    );
    this.#layout = new CheckpointLayout(directory, { ...where, names });

    const now = this.#clock();
    this.#timed = config.saveCheckpointSteps === 0;
    this.#trigger = new SaveTrigger({
      saveCheckpointSteps: config.saveCheckpointSteps,
      saveCheckpointSeconds: config.saveCheckpointSeconds,
      startTime: now,
    });
    this.#previousSaveTime = now;
    if (config.asyncSave) this.#saver = new SaveQueue();
    this.#installSignals();
  }

  /** The resolved policy settings. */
  get config(): CheckpointConfig {
    return this.#config;
  }

  /** The folders and file names this monitor uses. */
  get layout(): CheckpointLayout {
    return this.#layout;
  }

  /** The rank in the folder and file names. */
  get rank(): number {
    return this.#rank;
  }

  /**
   * How many ranks save into the folder (option `rankSize`, else env
   * `RANK_SIZE`), or `undefined` when neither is set.
   */
  get rankSize(): number | undefined {
    return this.#rankSize;
  }

  /** The main checkpoints this monitor committed and still keeps, oldest first. */
  get checkpoints(): readonly string[] {
    return this.#committed.map((c) => c.file);
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
    options?: boolean | AddEventListenerOptions,
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
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
  }

  /**
   * Starts (or restarts) a run at `ctx.step`: the step trigger counts from
   * it, so a resumed run saves `saveCheckpointSteps` steps after it.
   *
   * @param ctx The context before the first step.
   * @returns When done.
   *
   * @example
   * ```ts ignore
   * await monitor.onTrainBegin({ step: 200, epoch: 3, stepsPerEpoch: 100, network });
   * ```
   */
  onTrainBegin(ctx: StepContext): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    const step = ctx.step;
    if (!Number.isSafeInteger(step) || step < 0) {
      return Promise.reject(
        new RangeError(
          `Cannot start training: step must be a non-negative integer, received ${
            describe(step)
          }`,
        ),
      );
    }
    this.#lastStep = step;
    this.#trigger.saved(step);
    this.#installSignals();
    this.#reserve(ctx);
    return Promise.resolve();
  }

  /**
   * Saves when a save is due at this step end (or a signal asked for one).
   * The step must be greater than the previous one.
   *
   * @param ctx The step that just ended.
   * @returns Whether it saved.
   * @throws {RangeError} When `ctx.step` is not greater than the previous step.
   *
   * @example
   * ```ts ignore
   * const saved = await monitor.onStepEnd({ step, epoch, stepsPerEpoch, network, optimizer });
   * ```
   */
  onStepEnd(ctx: StepContext): Promise<boolean> {
    const step = ctx.step;
    if (!(step > this.#lastStep) || !Number.isSafeInteger(step)) {
      return Promise.reject(this.#stepError(step));
    }
    if (this.#closed) return Promise.reject(closedError());
    if (this.#failure !== undefined) return Promise.reject(this.#takeFailure());
    const failure = this.#saver?.takeFailure();
    if (failure !== undefined) return Promise.reject(failure);
    this.#lastStep = step;
    if (
      this.#pendingSignal === null &&
      !this.#trigger.isDue(step, this.#timed ? this.#clock() : 0)
    ) {
      // Without onTrainBegin, a step end that does not save prepares the
      // snapshot arena off this thread, so the first save copies at speed.
      if (this.#saver?.stats.arenaBytes === 0) this.#reserve(ctx);
      return NOT_SAVED;
    }
    return this.#saveAtStepEnd(ctx);
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
   * Saves the last step unless it was just saved, waits for every save, and
   * removes the signal listeners.
   *
   * @param ctx The last step.
   * @returns When the last save is committed.
   *
   * @example
   * ```ts ignore
   * await monitor.onTrainEnd(ctx);
   * ```
   */
  async onTrainEnd(ctx: StepContext): Promise<void> {
    if (this.#closed) throw closedError();
    if (ctx.step < this.#lastStep) throw this.#stepError(ctx.step);
    this.#lastStep = ctx.step;
    try {
      if (this.#trigger.isDue(ctx.step, this.#clock(), true)) {
        await this.#save(ctx);
      }
      await this.flush();
    } finally {
      // No Worker may keep the process alive after training.
      await this.#saver?.stop().catch(() => {});
      this.#removeSignals();
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
    this.#removeSignals();
    if (this.#closed || !this.#config.exceptionSave) return;
    await this.#settle();
    const plan = this.#plan(ctx, "breakpoint");
    const names = await listFiles(this.#layout.checkpointDir);
    const path = this.#layout.breakpointFile(
      plan.epoch,
      plan.stepInEpoch,
      names,
    );
    await this.#run({
      ...plan,
      files: [{ ...plan.files[0]!, path }],
    });
  }

  /**
   * Waits until every save started so far, with its `meta.json` update and
   * retention, has finished.
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
    await this.#settle();
    this.#saver?.throwIfFailed();
    if (this.#failure !== undefined) throw this.#takeFailure();
  }

  /**
   * Removes the signal listeners and waits for every save (rethrowing a
   * bookkeeping failure, as `flush()`); later callback calls reject.
   * Calling it again does nothing.
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
    this.#removeSignals();
    try {
      await this.flush();
    } finally {
      await this.#saver?.close().catch(() => {});
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

  async #saveAtStepEnd(ctx: StepContext): Promise<boolean> {
    const signal = this.#pendingSignal;
    if (signal === null) {
      await this.#save(ctx);
      return true;
    }
    try {
      // A failed save was reported as an `error` event; exit all the same.
      if (this.#trigger.isDue(ctx.step, this.#clock(), true)) {
        await this.#save(ctx);
      }
    } finally {
      await this.#settle();
      this.#removeSignals();
      Deno.exit(128 + SIGNAL_NUMBERS[signal]);
    }
  }

  async #save(ctx: StepContext): Promise<void> {
    await this.#run(this.#plan(ctx, "main"));
    this.#trigger.saved(ctx.step);
  }

  /** Builds the plan of a main or breakpoint save from the step context. */
  #plan(ctx: StepContext, kind: "main" | "breakpoint"): SavePlan {
    const epoch = positive(ctx.epoch, "epoch");
    const perEpoch = positive(ctx.stepsPerEpoch, "stepsPerEpoch");
    const inEpoch = stepInEpoch(ctx.step, perEpoch);
    const stepNum = this.#stepOffset + ctx.step;
    const config = this.#config;
    const append = this.#append;
    if (append.has("epoch_num")) append.set("epoch_num", epoch);
    if (append.has("step_num")) append.set("step_num", stepNum);
    if (append.has("loss_scale")) {
      const scale = ctx.lossScale ?? ctx.outputs?.[2];
      if (typeof scale === "number") append.set("loss_scale", float32(scale));
      else if (isTensor(scale)) append.set("loss_scale", scale);
    }
    const source = kind === "main"
      ? config.savedNetwork ?? ctx.network
      : ctx.network;
    const withOptimizer = kind === "breakpoint" ||
      config.savedNetwork === undefined;
    const optimizer = withOptimizer && ctx.optimizer !== undefined
      ? networkParameters(ctx.optimizer)
      : [];
    append.set(
      "global_step",
      optimizer.find((p) => p.name === "global_step") ?? globalStep(stepNum),
    );
    if (config.globalBatchSize !== undefined) {
      append.set("global_batch_size", config.globalBatchSize);
    }
    const network = networkParameters(source);
    // The format layer replaces a parameter whose name is an append key in
    // place (the original's rule), and rejects two parameters of one name.
    const all = network.concat(optimizer);
    // An append key replaces the parameter of its name: that one is no slice.
    const slices = sliceLayouts(all, append);
    const files: FilePlan[] = [{
      kind,
      path: this.#layout.mainFile(epoch, inEpoch),
      network: all,
      appendInfo: new Map(append),
      ...(slices !== undefined && { slices }),
    }];
    if (kind === "main") {
      const own = source === ctx.network
        ? network
        : networkParameters(ctx.network);
      if (config.saveNetworkParams) {
        files.push({
          kind: "network",
          path: this.#layout.networkFile,
          network: own,
        });
      }
      if (config.saveTrainableParams) {
        files.push({
          kind: "trainable",
          path: this.#layout.trainableFile,
          network: own.filter((p) => p.requiresGrad !== false),
        });
      }
    }
    return { step: ctx.step, epoch, stepInEpoch: inEpoch, stepNum, files };
  }

  /**
   * Runs a save plan after the saves before it, so at most one is in flight
   * even when calls are not awaited.
   */
  #run(plan: SavePlan): Promise<void> {
    const run = this.#queue.then(() => this.#execute(plan));
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Executes a save plan: each file is written and committed in order;
   * after the main file, `meta.json` and retention. This is the one place a
   * background queue would call.
   */
  async #execute(plan: SavePlan): Promise<void> {
    if (this.#saver !== null) return this.#executeAsync(plan, this.#saver);
    await this.#background;
    if (this.#failure !== undefined) throw this.#takeFailure();
    for (const file of plan.files) {
      const start = this.#clock();
      await this.#makeDir(file.path);
      let result: SaveResult;
      try {
        result = await saveCheckpoint(
          file.path,
          file.network,
          this.#saveOptions(file),
        );
      } catch (error) {
        await this.#emit("error", { error, file: file.path });
        throw error;
      }
      await this.#emitSaved(plan, file, result, start);
      if (file.kind === "main") await this.#commit(plan, result, true);
    }
  }

  /**
   * `#execute` with `asyncSave`: resolves once the plan's tensors are copied
   * (after waiting for the save in flight). The queue's Worker writes each
   * file; after each, on this thread, the same `saved` event and, for the
   * main file, `#commit` (`meta.json`, then retention) before the next file
   * is written. A breakpoint save waits until it is committed.
   */
  async #executeAsync(plan: SavePlan, saver: SaveQueue): Promise<void> {
    for (const file of plan.files) await this.#makeDir(file.path);
    const start = this.#clock();
    await saver.enqueue(this.#saveFiles(plan), {
      // The queue hands each hook the ticket of this save.
      onFile: async (i, result, _ms, { waitedMs }) => {
        const file = plan.files[i]!;
        await this.#emitSaved(plan, file, result, start, waitedMs);
        if (file.kind === "main") await this.#commit(plan, result, false);
      },
      onError: (i, error) =>
        this.#emit("error", { error, file: plan.files[i]!.path }),
    });
    if (plan.files[0]?.kind === "breakpoint") await saver.flush();
  }

  /** What the save queue writes for a plan: the same options as `#execute`. */
  #saveFiles(plan: SavePlan): SaveQueueFile[] {
    return plan.files.map((file) => ({
      path: file.path,
      network: file.network,
      options: this.#saveOptions(file),
    }));
  }

  /** The `saveCheckpoint` options of one file (breakpoints are always `.ckpt`). */
  #saveOptions(file: FilePlan): SaveCheckpointOptions {
    return {
      format: file.kind === "breakpoint" ? "ckpt" : this.#config.format,
      ...(file.appendInfo && { appendInfo: file.appendInfo }),
      ...this.#cipher(),
    };
  }

  /** The `saved` event of one written file of a plan. */
  #emitSaved(
    plan: SavePlan,
    file: FilePlan,
    result: SaveResult,
    start: number,
    waitedMs?: number,
  ): Promise<void> {
    return this.#emit("saved", {
      file: result.path,
      kind: file.kind,
      bytes: result.bytes,
      checksum: result.checksum,
      durationMs: this.#clock() - start,
      step: plan.step,
      epoch: plan.epoch,
      ...(waitedMs !== undefined && { waitedMs }),
    });
  }

  /**
   * With `asyncSave`, prepares the snapshot arena for the saves to come off
   * the loop's thread, so that even the first save copies at memory speed.
   */
  #reserve(ctx: StepContext): void {
    if (this.#saver === null) return;
    try {
      this.#saver.reserve(this.#saveFiles(this.#plan(ctx, "main")));
    } catch {
      // The save itself will report what is wrong with the context.
    }
  }

  /**
   * After a main file is committed: `meta.json` (awaited, so that once a
   * save is reported `meta.json` names it and a kill cannot leave it one
   * checkpoint behind), then retention. With `backgroundRemoval` the
   * deletions run in the background (they read no tensor and only remove
   * files `meta.json` no longer lists), overlapping the extra files and the
   * next steps; the next save waits for them. A failure to write `meta.json`
   * rejects this save; a failed deletion is an `error` event.
   */
  async #commit(
    plan: SavePlan,
    result: SaveResult,
    backgroundRemoval: boolean,
  ): Promise<void> {
    const now = this.#clock();
    const name = basename(result.path);
    this.#committed.push({
      file: result.path,
      time: now,
      meta: {
        name,
        bytes: result.bytes,
        checksum: result.checksum,
        epoch: plan.epoch,
        step: plan.stepInEpoch,
        global_step: plan.step,
        ...(this.#rankSize !== undefined && { rank_size: this.#rankSize }),
        ...(plan.files[0]?.slices && { slices: plan.files[0].slices }),
      },
    });
    const decision = planRetention(this.#committed, {
      keepCheckpointMax: this.#config.keepCheckpointMax,
      keepCheckpointPerNMinutes: this.#config.keepCheckpointPerNMinutes,
      previousSaveTime: this.#previousSaveTime,
    });
    this.#previousSaveTime = now;
    const keep = decision.keep as Committed[];
    const meta: CheckpointMeta = {
      last_epoch: plan.epoch,
      last_step: plan.stepInEpoch,
      last_ckpt_file: name,
      global_step: plan.step,
      step_num: plan.stepNum,
      format: this.#layout.extension,
      enc_mode: this.#config.encKey === undefined ? null : this.#config.encMode,
      prefix: this.#layout.prefix,
      rank: this.#rank,
      files: keep.map((c) => c.meta),
    };
    try {
      await writeFileAtomic(
        this.#layout.metaFile,
        new TextEncoder().encode(JSON.stringify(meta, null, 2) + "\n"),
        { fileMode: 0o600 },
      );
    } catch (error) {
      await this.#emit("error", { error, file: this.#layout.metaFile });
      throw error;
    }
    this.#committed = keep;
    const after = this.#remove(decision.remove).then(() =>
      this.#integrate(plan)
    );
    if (backgroundRemoval) {
      this.#background = after.catch((error) => {
        this.#failure ??= { error };
      });
    } else {
      await after;
    }
  }

  /**
   * With `integratedSave` and sliced parameters in the main file just
   * committed: assembles the step's whole tensors once every rank has
   * committed it (see `integrateStep`), then applies retention there. A
   * failure is an `error` event naming the integrated file; it fails no
   * save, and the rank files stay as they are.
   */
  async #integrate(plan: SavePlan): Promise<void> {
    if (!this.#config.integratedSave || plan.files[0]?.slices === undefined) {
      return;
    }
    const file = this.#layout.integratedFile(plan.epoch, plan.stepInEpoch);
    const rankSize = this.#rankSize ?? (this.#rank === 0 ? 1 : undefined);
    const start = this.#clock();
    let outcome: Awaited<ReturnType<typeof integrateStep>>;
    try {
      if (rankSize === undefined) {
        if (this.#rankSizeReported) return;
        this.#rankSizeReported = true;
        throw new RangeError(
          `Cannot assemble sliced parameters: rank ${this.#rank} does not know how many ranks there are; set option "rankSize" or env "RANK_SIZE" (the rank files are saved all the same)`,
        );
      }
      const config = this.#config;
      outcome = await integrateStep({
        layout: this.#layout,
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
      await this.#emit("error", {
        error: this.#rankSize === undefined && rankSize === 1
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
    await this.#emit("saved", {
      file: result.path,
      kind: "integrated",
      bytes: result.bytes,
      checksum: result.checksum,
      durationMs: this.#clock() - start,
      step: plan.step,
      epoch: plan.epoch,
    });
    await this.#remove(remove);
  }

  /** Retention's deletions, in order; a failed one is an `error` event. */
  async #remove(
    remove: RetentionDecision["remove"],
  ): Promise<void> {
    for (const { checkpoint, reason } of remove) {
      try {
        await Deno.remove(checkpoint.file);
      } catch (error) {
        await this.#emit("error", { error, file: checkpoint.file });
        continue;
      }
      await this.#emit("removed", { file: checkpoint.file, reason });
    }
  }

  #cipher(): { encKey?: Uint8Array; encMode?: EncMode } {
    const key = this.#config.encKey;
    return key === undefined
      ? {}
      : { encKey: key, encMode: this.#config.encMode };
  }

  /**
   * Before the first save into a folder: creates it and removes the
   * temporary files a crashed earlier run of this prefix left there.
   */
  async #makeDir(file: string): Promise<void> {
    const dir = dirname(file);
    if (this.#extraDirsMade.has(dir)) return;
    await Deno.mkdir(dir, { recursive: true });
    await removeTempFiles(dir, {
      prefixes: [this.#layout.basePrefix, "meta.json"],
    });
    this.#extraDirsMade.add(dir);
  }

  async #emit<K extends keyof CheckpointMonitorEventMap>(
    type: K,
    detail: CheckpointMonitorEventMap[K]["detail"],
  ): Promise<void> {
    this.dispatchEvent(new CustomEvent(type, { detail }));
    const hook = type === "saved"
      ? this.#hooks.onSaved
      : type === "removed"
      ? this.#hooks.onRemoved
      : this.#hooks.onError;
    await (hook as ((d: typeof detail) => unknown) | undefined)?.(detail);
  }

  /** Waits until no save and no bookkeeping is running. */
  async #settle(): Promise<void> {
    for (;;) {
      const queue = this.#queue, background = this.#background;
      await queue;
      await background;
      await this.#saver?.idle();
      if (queue === this.#queue && background === this.#background) return;
    }
  }

  #takeFailure(): unknown {
    const error = this.#failure?.error;
    this.#failure = undefined;
    return error;
  }

  #stepError(step: unknown): RangeError {
    return new RangeError(
      `Cannot handle step end: step must be an integer greater than the previous step ${this.#lastStep}, received ${
        describe(step)
      }`,
    );
  }

  #installSignals(): void {
    for (const signal of this.#signals) {
      // Windows delivers SIGINT (Ctrl-C) only.
      if (signal === "SIGTERM" && Deno.build.os === "windows") continue;
      if (this.#listeners.has(signal)) continue;
      const listener = () => {
        if (this.#pendingSignal !== null) {
          Deno.exit(128 + SIGNAL_NUMBERS[signal]);
        }
        this.#pendingSignal = signal;
      };
      Deno.addSignalListener(signal, listener);
      this.#listeners.set(signal, listener);
    }
  }

  #removeSignals(): void {
    for (const [signal, listener] of this.#listeners) {
      Deno.removeSignalListener(signal, listener);
    }
    this.#listeners.clear();
  }
}

function resolveConfig(options: CheckpointMonitorOptions): CheckpointConfig {
  if (options.config === undefined) {
    const policy: Record<string, unknown> = {};
    for (const key of CONFIG_KEYS) {
      const value = (options as Record<string, unknown>)[key];
      if (value !== undefined) policy[key] = value;
    }
    return new CheckpointConfig(policy);
  }
  if (!(options.config instanceof CheckpointConfig)) {
    throw new TypeError(
      `Cannot use option "config": expected a CheckpointConfig, received ${
        describe(options.config)
      }`,
    );
  }
  const clash = CONFIG_KEYS.filter((key) =>
    (options as Record<string, unknown>)[key] !== undefined
  );
  if (clash.length > 0) {
    throw new TypeError(
      `Cannot use option "config" together with ${
        clash.map((k) => `"${k}"`).join(", ")
      }: set them in the CheckpointConfig instead`,
    );
  }
  return options.config;
}

function resolveSignals(value: unknown): readonly CheckpointSignal[] {
  if (value === undefined || value === false) return [];
  if (value === true) return ["SIGINT", "SIGTERM"];
  if (!Array.isArray(value)) {
    checkBoolean(value, "signals");
  }
  for (const s of value as unknown[]) {
    if (s !== "SIGINT" && s !== "SIGTERM") {
      throw new RangeError(
        `Cannot use option "signals": expected "SIGINT" or "SIGTERM", received ${
          describe(s)
        }`,
      );
    }
  }
  return [...new Set(value as CheckpointSignal[])];
}

function positive(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot save checkpoint: step context "${field}" must be a positive integer, received ${
        describe(value)
      }`,
    );
  }
  return value;
}

function closedError(): TypeError {
  return new TypeError("Cannot use CheckpointMonitor: it is closed");
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === "object" && value !== null && "dtype" in value &&
    "data" in value;
}

function float32(n: number): Tensor<"Float32"> {
  return { dtype: "Float32", shape: [], data: Float32Array.of(n) };
}

/** The original's `global_step`: the optimizer's Int32 tensor of shape [1]. */
function globalStep(step: number): Tensor {
  return step <= 0x7fffffff
    ? { dtype: "Int32", shape: [1], data: Int32Array.of(step) }
    : { dtype: "Int64", shape: [1], data: BigInt64Array.of(BigInt(step)) };
}
