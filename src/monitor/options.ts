/**
 * The options of a {@linkcode CheckpointMonitor} and the
 * {@linkcode CheckpointConfig} that holds its policy settings, validated once
 * at construction.
 *
 * @module
 */

import { resolveAppendInfo } from "../tensor/_append.ts";
import { describeValue as describe } from "../core/_describe.ts";
import {
  checkBoolean,
  checkChoice,
  checkCount,
  checkKnownKeys,
  CONFIG_KEYS,
  SNAKE_NAMES,
} from "../core/_validate.ts";
import type {
  CheckpointErrorDetail,
  CheckpointRemovedDetail,
  CheckpointSavedDetail,
} from "./events.ts";
import type { CheckpointFormat } from "../checkpoint/checkpoint.ts";
import type { CheckpointStore } from "../store/store.ts";
import { ENC_MODES, type EncMode, validateCipher } from "../crypto/cipher.ts";
import {
  type AppendValue,
  type Network,
  networkParameters,
} from "../tensor/types.ts";

/**
 * One item of the `appendInfo` option, as in the original: the strings
 * `"epoch_num"` and `"step_num"`, or a record (a plain object or a `Map`) of
 * values stored inside every main checkpoint.
 */
export type AppendInfoItem =
  | "epoch_num"
  | "step_num"
  | Readonly<Record<string, AppendValue>>
  | ReadonlyMap<string, AppendValue>;

const FORMATS = ["ckpt", "safetensors"] as const;

/**
 * Which checkpoints retention counts: this run's (`"run"`) or every run's
 * of the same prefix in the rank folder (`"prefix"`).
 */
export type RetentionScope = "run" | "prefix";

const SCOPES: readonly RetentionScope[] = ["run", "prefix"];

/**
 * The policy settings of a checkpoint monitor: when to save, what to keep,
 * what to write. The names are the original's, in camelCase.
 */
export interface CheckpointConfigOptions {
  /**
   * Save every N global steps (`step >= lastSavedStep + N`); 0 turns the
   * step trigger off. Setting only `saveCheckpointSeconds` turns it off too.
   * Setting both above 0 is a RangeError.
   *
   * @default {1}
   */
  readonly saveCheckpointSteps?: number;
  /**
   * Save at the first step end more than N seconds after construction or
   * after the previous save was decided (monotonic clock, no timer).
   *
   * @default {0}
   */
  readonly saveCheckpointSeconds?: number;
  /**
   * Keep at most N main checkpoints of this monitor; the oldest go after a
   * new one is committed. Setting only `keepCheckpointPerNMinutes` turns it
   * off; setting both above 0 is a RangeError; 0 with no other retention
   * keeps every checkpoint.
   *
   * @default {5}
   */
  readonly keepCheckpointMax?: number;
  /**
   * Keep one main checkpoint per N minutes (the original's rule, see the
   * README).
   *
   * @default {0}
   */
  readonly keepCheckpointPerNMinutes?: number;
  /**
   * Which main checkpoints retention counts: `"run"`, the files this
   * monitor committed (as MindFormers does), or `"prefix"`, also those that
   * earlier runs of the same prefix left in this rank's folder
   * (`{prefix}_rank_R`, `{prefix}_rank_R_1`, … oldest run first, then by
   * epoch and step), so that restarts do not pile up files. Breakpoints,
   * other prefixes and files not named like a checkpoint are never counted;
   * `meta.json` lists this run's files only.
   *
   * @default {"run"}
   */
  readonly retentionScope?: RetentionScope;
  /**
   * Assemble sliced parameters into whole tensors. A parameter with a
   * `slice` (its global shape and offset: one rank's shard) is always saved
   * as the slice in this rank's own file, and `meta.json` records where it
   * lies. With `integratedSave`, once every rank `0..rankSize-1` has
   * committed a step, one of them (whichever gets there last; the others
   * see it is done) reads every rank's file, checks it against its
   * `meta.json`, assembles each sliced parameter and writes
   * `checkpoint/integrated/{prefix}-{epoch}_{step}.ckpt` with
   * `checkpoint/integrated/meta.json`, under the same retention rule. No
   * collective is needed; the rank files stay the crash-safe source of
   * truth, and a failed merge is an `error` event that fails no save. The
   * merging rank's next save waits for the merge (one merge reads every
   * rank's file and holds the whole model in memory). With `false`, or when
   * no parameter has a slice, nothing is merged;
   * `mergeSlicedCheckpoints` merges a step after the fact.
   *
   * @default {true}
   */
  readonly integratedSave?: boolean;
  /**
   * Also write the network's parameters alone (no optimizer state) to
   * `checkpoint_network/rank_R/{P}-network.ckpt`, overwritten at each save.
   *
   * @default {true}
   */
  readonly saveNetworkParams?: boolean;
  /**
   * Also write only the parameters with `requiresGrad !== false` to
   * `checkpoint_trainable/rank_R/{P}-trainable_params.ckpt`.
   *
   * @default {false}
   */
  readonly saveTrainableParams?: boolean;
  /**
   * Save in the background: the step end waits only for a copy of the
   * tensors into a reused arena; serialisation, encryption and the durable
   * write run in a Worker, then `meta.json` and retention, one save at a
   * time. A background failure rejects the next step end, `flush()`,
   * `onTrainEnd()` or `close()`. Call `onTrainEnd()` or `close()` at the
   * end to wait for the last save (an idle Worker does not keep the process
   * running). Needs no permission beyond the checkpoint folder's. Files of
   * a store other than the local one are written on the training thread,
   * after the step end returns (a store cannot be sent to a Worker).
   *
   * @default {false}
   */
  readonly asyncSave?: boolean;
  /** Save this network instead of the step context's. */
  readonly savedNetwork?: Network;
  /**
   * Values stored after the parameters of every main checkpoint: the
   * strings `"epoch_num"`, `"step_num"` and at most one record. When not
   * given: `[{ epoch_num: 0, step_num: 0, global_step: 0, loss_scale: 1 }]`.
   * A record's `epoch_num` / `step_num` give the resume offsets.
   */
  readonly appendInfo?: readonly AppendInfoItem[];
  /** The encryption key: 16, 24 or 32 bytes for AES, 16 for SM4. */
  readonly encKey?: Uint8Array;
  /**
   * The cipher used with `encKey` (ignored without a key).
   *
   * @default {"AES-GCM"}
   */
  readonly encMode?: EncMode;
  /**
   * On an exception escaping the loop, save a `_breakpoint` checkpoint; with
   * `signals`, also save at the next step end after SIGTERM / SIGINT.
   *
   * @default {false}
   */
  readonly exceptionSave?: boolean;
  /** Stored in every main checkpoint as `global_batch_size`. */
  readonly globalBatchSize?: number;
  /**
   * The file format.
   *
   * @default {"ckpt"}
   */
  readonly format?: CheckpointFormat;
}

const DEFAULT_APPEND_INFO: readonly AppendInfoItem[] = Object.freeze([
  Object.freeze({ epoch_num: 0, step_num: 0, global_step: 0, loss_scale: 1 }),
]);

/**
 * The policy settings of a checkpoint monitor, validated and resolved: the
 * counterpart of MindSpore's `CheckpointConfig`. Unlike the original, a
 * monitor honours the config it is given, and conflicting settings are
 * errors instead of silent choices.
 *
 * @example Save every 100 steps, keep 3
 * ```ts
 * import { CheckpointConfig } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * const config = new CheckpointConfig({ saveCheckpointSteps: 100, keepCheckpointMax: 3 });
 * equal(config.saveCheckpointSeconds, 0);
 * ```
 *
 * @example Only the seconds trigger: the step trigger turns off
 * ```ts
 * import { CheckpointConfig } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * equal(new CheckpointConfig({ saveCheckpointSeconds: 60 }).saveCheckpointSteps, 0);
 * ```
 */
export class CheckpointConfig {
  /** Save every N global steps; 0 when off. */
  readonly saveCheckpointSteps: number;
  /** Save after N seconds; 0 when off. */
  readonly saveCheckpointSeconds: number;
  /** Keep at most N main checkpoints; 0 when off. */
  readonly keepCheckpointMax: number;
  /** Keep one main checkpoint per N minutes; 0 when off. */
  readonly keepCheckpointPerNMinutes: number;
  /** Whether retention counts this run's files or every run's of the prefix. */
  readonly retentionScope: RetentionScope;
  /** Assemble sliced parameters into `checkpoint/integrated/` (no effect on whole tensors). */
  readonly integratedSave: boolean;
  /** Also write the network-only file. */
  readonly saveNetworkParams: boolean;
  /** Also write the trainable-only file. */
  readonly saveTrainableParams: boolean;
  /** Save in the background (the step waits only for a snapshot copy). */
  readonly asyncSave: boolean;
  /** The network saved instead of the step context's, if any. */
  readonly savedNetwork: Network | undefined;
  /** The append-info items (the default list when not given). */
  readonly appendInfo: readonly AppendInfoItem[];
  /** A copy of the encryption key, if any. */
  readonly encKey: Uint8Array | undefined;
  /** The cipher. */
  readonly encMode: EncMode;
  /** Save a breakpoint checkpoint on exceptions. */
  readonly exceptionSave: boolean;
  /** The global batch size stored in checkpoints, if any. */
  readonly globalBatchSize: number | undefined;
  /** The file format. */
  readonly format: CheckpointFormat;

  /**
   * Validates and resolves the settings.
   *
   * @param options The settings; every one is optional.
   * @throws {TypeError} When an option has the wrong type, or is unknown.
   * @throws {RangeError} When an option has a wrong value, two options
   * conflict, or every save trigger is 0.
   */
  constructor(options: CheckpointConfigOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Cannot configure checkpoints: options must be an object, received ${
          describe(options)
        }`,
      );
    }
    checkKnownKeys(options, new Set<string>(CONFIG_KEYS), SNAKE_NAMES);
    const o = options as Record<string, unknown>;
    const opt = (key: string, check: (v: unknown, k: string) => unknown) =>
      o[key] === undefined ? undefined : check(o[key], key);
    const count = (v: unknown, k: string) => checkCount(v, k, true);
    const time = (v: unknown, k: string) => checkCount(v, k, false);

    [this.saveCheckpointSteps, this.saveCheckpointSeconds] = resolvePair(
      opt("saveCheckpointSteps", count) as number | undefined,
      opt("saveCheckpointSeconds", time) as number | undefined,
      ["saveCheckpointSteps", "saveCheckpointSeconds"],
      1,
    );
    if (this.saveCheckpointSteps === 0 && this.saveCheckpointSeconds === 0) {
      throw new RangeError(
        `Cannot configure checkpoints: options "saveCheckpointSteps" and "saveCheckpointSeconds" are both 0, so nothing would ever be saved`,
      );
    }
    [this.keepCheckpointMax, this.keepCheckpointPerNMinutes] = resolvePair(
      opt("keepCheckpointMax", count) as number | undefined,
      opt("keepCheckpointPerNMinutes", time) as number | undefined,
      ["keepCheckpointMax", "keepCheckpointPerNMinutes"],
      5,
    );

    this.retentionScope =
      (opt("retentionScope", (v, k) => checkChoice(v, k, SCOPES)) ??
        "run") as RetentionScope;

    const bool = (key: string, fallback: boolean) =>
      (opt(key, checkBoolean) as boolean | undefined) ?? fallback;
    this.integratedSave = bool("integratedSave", true);
    this.saveNetworkParams = bool("saveNetworkParams", true);
    this.saveTrainableParams = bool("saveTrainableParams", false);
    this.asyncSave = bool("asyncSave", false);
    this.exceptionSave = bool("exceptionSave", false);

    if (o.savedNetwork !== undefined) {
      networkParameters(o.savedNetwork as Network);
    }
    this.savedNetwork = o.savedNetwork as Network | undefined;

    if (o.appendInfo === undefined) {
      this.appendInfo = DEFAULT_APPEND_INFO;
    } else {
      resolveAppendInfo(o.appendInfo);
      this.appendInfo = Object.freeze([...o.appendInfo as AppendInfoItem[]]);
    }

    this.format = (opt("format", (v, k) => checkChoice(v, k, FORMATS)) ??
      "ckpt") as CheckpointFormat;
    this.encMode = (opt("encMode", (v, k) => checkChoice(v, k, ENC_MODES)) ??
      "AES-GCM") as EncMode;
    if (o.encKey !== undefined) {
      validateCipher(o.encKey, this.encMode, {
        keyName: 'option "encKey"',
        modeName: 'option "encMode"',
      });
    }
    this.encKey = (o.encKey as Uint8Array | undefined)?.slice();
    if (this.encKey !== undefined && this.format === "safetensors") {
      throw new RangeError(
        `Cannot configure checkpoints: option "encKey" needs format "ckpt"; safetensors files are not encrypted, received format "safetensors"`,
      );
    }

    const gbs = opt("globalBatchSize", count) as number | undefined;
    if (gbs === 0) {
      throw new RangeError(
        `Cannot configure checkpoints: option "globalBatchSize" must be a positive integer, received number 0`,
      );
    }
    this.globalBatchSize = gbs;
    Object.freeze(this);
  }
}

/**
 * Resolves a count option and a time option that exclude each other (the
 * two triggers, the two retention rules): both above 0 is a RangeError;
 * setting only the time option turns the count off; otherwise the count
 * defaults to `countDefault` and the time to 0.
 */
function resolvePair(
  count: number | undefined,
  time: number | undefined,
  [countKey, timeKey]: readonly [string, string],
  countDefault: number,
): [number, number] {
  if (count !== undefined && time !== undefined && count > 0 && time > 0) {
    throw new RangeError(
      `Cannot configure checkpoints: options "${countKey}" (${count}) and "${timeKey}" (${time}) conflict; set only one above 0`,
    );
  }
  const t = time ?? 0;
  return [count ?? (t > 0 ? 0 : countDefault), t];
}

/**
 * A function returning the time in milliseconds; only differences between
 * its values are used, so `performance.now` (the default) fits.
 */
export type Clock = () => number;

/** The signals a monitor can save on. */
export type CheckpointSignal = "SIGINT" | "SIGTERM";

/**
 * The options of a {@linkcode CheckpointMonitor}: where and under which name
 * to save, plus the policy settings, given either one by one or as a
 * {@linkcode CheckpointConfig} (not both).
 */
export interface CheckpointMonitorOptions extends CheckpointConfigOptions {
  /**
   * The file-name prefix; the monitor adds `_rank_R`. It may not contain
   * `/`, `\` or `..`.
   *
   * @default {"CKP"}
   */
  readonly prefix?: string;
  /**
   * The root folder; files go to `checkpoint/rank_R/` and friends below it.
   * The process needs read and write permission for it.
   *
   * @default {"./output"}
   */
  readonly directory?: string;
  /**
   * The policy settings as one object. Passing it together with any policy
   * option is a TypeError.
   */
  readonly config?: CheckpointConfig;
  /**
   * This process's rank.
   *
   * @default {Number(Deno.env.get("RANK_ID") ?? 0)}
   */
  readonly rank?: number;
  /**
   * How many ranks save into `directory` (MindSpore's `RANK_SIZE`): the
   * ranks whose slices `integratedSave` assembles. It must be above
   * `rank`. When neither this nor env `RANK_SIZE` is set, rank 0 counts as
   * a run of 1; another rank saving sliced parameters cannot merge, which
   * is an `error` event (its own files are saved all the same).
   *
   * @default {Number(Deno.env.get("RANK_SIZE") ?? 1)}
   */
  readonly rankSize?: number;
  /**
   * Where the files go: every file the monitor reads, writes, lists, locks
   * or removes goes through this store. With `asyncSave` the Worker writes
   * through the store registered for `directory`'s scheme (a store object
   * cannot be sent to a Worker), so an explicit `store` must be that one.
   *
   * @default {storeFor(directory)}
   */
  readonly store?: CheckpointStore;
  /**
   * The clock for the seconds trigger, retention times and durations.
   *
   * @default {performance.now}
   */
  readonly clock?: Clock;
  /**
   * Save at the next step end after these signals arrive, then exit with
   * code 128 + the signal number. `true` means both.
   *
   * @default {false}
   */
  readonly signals?: boolean | readonly CheckpointSignal[];
  /** Called after each committed file. */
  readonly onSaved?: (detail: CheckpointSavedDetail) => void | Promise<void>;
  /** Called after each file removed by retention. */
  readonly onRemoved?: (
    detail: CheckpointRemovedDetail,
  ) => void | Promise<void>;
  /** Called when a save or a removal fails. */
  readonly onError?: (detail: CheckpointErrorDetail) => void | Promise<void>;
}
