/**
 * Where checkpoints go and what they are called, as in MindFormers:
 * `<directory>/checkpoint/rank_R/{P}-{epoch}_{step}.ckpt` with
 * `P = {prefix}_rank_R` (plus a collision suffix when an earlier run's files
 * are there), the network-only and trainable-only files beside it, the
 * `_breakpoint` files, and `meta.json`.
 *
 * @module
 */

import { joinPath as join } from "../store/store.ts";
import { describeValue as describe } from "../core/_describe.ts";
import type { CheckpointFormat } from "./checkpoint.ts";
import type { ParameterSlice } from "../tensor/types.ts";

/**
 * Checks a file-name prefix: a string without `/`, `\`, `..` or NUL, so no
 * name built from it can leave its folder.
 *
 * @param prefix The prefix to check.
 * @returns The prefix.
 * @throws {TypeError} When `prefix` is not a string.
 * @throws {RangeError} When it contains `/`, `\`, `..` or NUL.
 *
 * @example
 * ```ts
 * import { checkPrefix } from "@ckpt/monitor";
 * import { throws } from "node:assert/strict";
 * checkPrefix("llama");
 * throws(() => checkPrefix("../x"), RangeError);
 * ```
 */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string") {
    throw new TypeError(
      `Cannot use option "prefix": expected a string, received ${
        describe(prefix)
      }`,
    );
  }
  for (const bad of ["/", "\\", "..", "\0"]) {
    if (prefix.includes(bad)) {
      throw new RangeError(
        `Cannot use option "prefix" as it contains ${
          JSON.stringify(bad)
        }: received ${JSON.stringify(prefix)}`,
      );
    }
  }
  return prefix;
}

/** Options of {@linkcode resolvePrefix}. */
export interface ResolvePrefixOptions {
  /**
   * Resolve against `_breakpoint.ckpt` files only (the breakpoint prefix)
   * instead of the other checkpoint files.
   *
   * @default {false}
   */
  readonly breakpoint?: boolean;
}

/**
 * Adds MindSpore's collision suffix to a prefix, given the names already in
 * the folder: `P` when no earlier run's checkpoint starts with it, else
 * `P_1`, `P_2`, … one more than the highest found. Like the original, only
 * names ending in `.ckpt` or `.safetensors` count, and `_breakpoint.ckpt`
 * files count only for the breakpoint prefix (and only they do).
 *
 * @param prefix The prefix with its rank, e.g. `CKP_rank_0`.
 * @param names The file names in the folder.
 * @param options Which files to resolve against.
 * @returns The prefix to use.
 *
 * @example
 * ```ts
 * import { resolvePrefix } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * equal(resolvePrefix("CKP_rank_0", []), "CKP_rank_0");
 * equal(resolvePrefix("CKP_rank_0", ["CKP_rank_0-1_5.ckpt"]), "CKP_rank_0_1");
 * equal(resolvePrefix("CKP_rank_0", ["CKP_rank_0-1_5.ckpt", "CKP_rank_0_1-2_1.ckpt"]), "CKP_rank_0_2");
 * ```
 */
export function resolvePrefix(
  prefix: string,
  names: Iterable<string>,
  options: ResolvePrefixOptions = {},
): string {
  const breakpoint = options.breakpoint ?? false;
  let suffix = 0;
  for (const name of names) {
    const isBreakpoint = name.endsWith("_breakpoint.ckpt");
    if (breakpoint !== isBreakpoint) continue;
    if (!name.endsWith(".ckpt") && !name.endsWith(".safetensors")) continue;
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    if (/^[A-Za-z]/.test(rest)) continue;
    if (rest.startsWith("-")) {
      suffix = Math.max(suffix, 1);
      continue;
    }
    const dash = rest.indexOf("-");
    if (dash < 0) continue;
    const n = rest.slice(1, dash);
    if (/^[0-9]+$/.test(n)) suffix = Math.max(suffix, Number(n) + 1);
  }
  return suffix > 0 ? `${prefix}_${suffix}` : prefix;
}

/**
 * The name of a main checkpoint: `{P}-{epoch}_{stepInEpoch}.{ext}`.
 *
 * @param prefix The resolved prefix `P`.
 * @param epoch The epoch, from 1.
 * @param stepInEpoch The step in the epoch, from 1.
 * @param extension The format's extension.
 * @returns The file name.
 *
 * @example
 * ```ts
 * import { checkpointFileName } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * equal(checkpointFileName("CKP_rank_0", 3, 1, "ckpt"), "CKP_rank_0-3_1.ckpt");
 * ```
 */
export function checkpointFileName(
  prefix: string,
  epoch: number,
  stepInEpoch: number,
  extension: CheckpointFormat,
): string {
  return `${prefix}-${epoch}_${stepInEpoch}.${extension}`;
}

/**
 * The step within its epoch, as the original names files:
 * `((step - 1) mod stepsPerEpoch) + 1`.
 *
 * @param step The global step, from 1.
 * @param stepsPerEpoch Steps in one epoch.
 * @returns The step in its epoch, from 1.
 *
 * @example
 * ```ts
 * import { stepInEpoch } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * equal(stepInEpoch(10, 10), 10);
 * equal(stepInEpoch(11, 10), 1);
 * ```
 */
export function stepInEpoch(step: number, stepsPerEpoch: number): number {
  return ((step - 1) % stepsPerEpoch) + 1;
}

/** One committed main checkpoint, as `meta.json` lists it. */
export interface CheckpointMetaFile {
  /** The file name, in the `meta.json` folder. */
  readonly name: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Its checksum, as the format layer computes it. */
  readonly checksum: string;
  /** The epoch in its name. */
  readonly epoch: number;
  /** The step in its name (within the epoch). */
  readonly step: number;
  /** The global step it holds. */
  readonly global_step: number;
  /**
   * How many ranks the run that wrote it had (the monitor's `rankSize`),
   * when that was set: a resume from it needs only `rank_0` …
   * `rank_{rank_size - 1}`, so the extra folders of an earlier run with
   * more ranks do not hold it back.
   */
  readonly rank_size?: number;
  /**
   * Where each sliced parameter of the file lies in its whole tensor, by
   * name; absent when the file holds no slice.
   */
  readonly slices?: Readonly<Record<string, ParameterSlice>>;
  /**
   * For a file of `checkpoint/integrated/`: the rank files it was
   * assembled from (index = rank), with their checksums.
   */
  readonly sources?: readonly CheckpointMetaSource[];
  /**
   * For a file of `checkpoint/integrated/`: when it was committed, in
   * milliseconds since the Unix epoch (for `keepCheckpointPerNMinutes`,
   * as several processes write that folder).
   */
  readonly time?: number;
}

/** A rank file an integrated checkpoint was assembled from. */
export interface CheckpointMetaSource {
  /** Its name, in its `rank_R` folder. */
  readonly name: string;
  /** Its checksum, as its `meta.json` records it. */
  readonly checksum: string;
}

/**
 * The content of `meta.json`: MindFormers' three keys (`last_epoch`,
 * `last_step`, `last_ckpt_file`), which its resume tooling reads, and what
 * resume and verification need besides.
 */
export interface CheckpointMeta {
  /** The epoch in the newest checkpoint's name. */
  readonly last_epoch: number;
  /** The step in the newest checkpoint's name (within the epoch). */
  readonly last_step: number;
  /** The newest checkpoint's file name. */
  readonly last_ckpt_file: string;
  /** The global step of the newest checkpoint. */
  readonly global_step: number;
  /** The newest checkpoint's `step_num` (the global step plus any resume offset). */
  readonly step_num: number;
  /** The file format. */
  readonly format: CheckpointFormat;
  /** The cipher, or `null` for plain files. */
  readonly enc_mode: string | null;
  /** The resolved prefix `P`. */
  readonly prefix: string;
  /** The rank. */
  readonly rank: number;
  /** Every committed main checkpoint that is kept, oldest first. */
  readonly files: readonly CheckpointMetaFile[];
}

/**
 * The folders and names one monitor uses, resolved once: the collision
 * suffix is computed from the folder's content at construction.
 *
 * @example
 * ```ts
 * import { CheckpointLayout } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 * const layout = new CheckpointLayout("./output", { rank: 1, names: [] });
 * equal(layout.prefix, "CKP_rank_1");
 * equal(layout.mainFile(2, 7), "output/checkpoint/rank_1/CKP_rank_1-2_7.ckpt");
 * equal(layout.networkFile, "output/checkpoint_network/rank_1/CKP_rank_1-network.ckpt");
 * ```
 */
export class CheckpointLayout {
  /** The root folder, as given. */
  readonly directory: string;
  /** `<directory>/checkpoint/rank_R`: main checkpoints and `meta.json`. */
  readonly checkpointDir: string;
  /** `<directory>/checkpoint_network/rank_R`. */
  readonly networkDir: string;
  /** `<directory>/checkpoint_trainable/rank_R`. */
  readonly trainableDir: string;
  /** `{prefix}_rank_R`, before the collision suffix (breakpoints start from it). */
  readonly basePrefix: string;
  /** The resolved prefix `P` of main, network and trainable files. */
  readonly prefix: string;
  /** The format's extension. */
  readonly extension: CheckpointFormat;
  /** `<checkpointDir>/meta.json`. */
  readonly metaFile: string;
  /** The network-only file, overwritten at each save. */
  readonly networkFile: string;
  /** The trainable-only file, overwritten at each save. */
  readonly trainableFile: string;
  /**
   * `<directory>/checkpoint/integrated`: whole tensors assembled from every
   * rank's slices (`integratedSave`), and their `meta.json`.
   */
  readonly integratedDir: string;
  /**
   * The prefix of integrated files: the user's prefix with this run's
   * collision suffix and no rank (`CKP`, `CKP_1`, …).
   */
  readonly integratedPrefix: string;
  #userPrefix: string;
  #suffix: string;

  /**
   * Resolves the layout.
   *
   * @param directory The root folder.
   * @param options The prefix, rank, format, and the names already in the
   * checkpoint folder.
   */
  constructor(directory: string, options: CheckpointLayoutOptions = {}) {
    const rank = options.rank ?? 0;
    this.directory = directory;
    this.extension = options.format ?? "ckpt";
    this.checkpointDir = join(directory, "checkpoint", `rank_${rank}`);
    this.networkDir = join(directory, "checkpoint_network", `rank_${rank}`);
    this.trainableDir = join(directory, "checkpoint_trainable", `rank_${rank}`);
    this.#userPrefix = checkPrefix(options.prefix ?? "CKP");
    this.basePrefix = `${this.#userPrefix}_rank_${rank}`;
    this.prefix = resolvePrefix(this.basePrefix, options.names ?? []);
    this.#suffix = this.prefix.slice(this.basePrefix.length);
    this.integratedDir = join(directory, "checkpoint", "integrated");
    this.integratedPrefix = this.#userPrefix + this.#suffix;
    this.metaFile = join(this.checkpointDir, "meta.json");
    this.networkFile = join(
      this.networkDir,
      `${this.prefix}-network.${this.extension}`,
    );
    this.trainableFile = join(
      this.trainableDir,
      `${this.prefix}-trainable_params.${this.extension}`,
    );
  }

  /**
   * The path of a main checkpoint.
   *
   * @param epoch The epoch, from 1.
   * @param step The step in the epoch, from 1.
   * @returns The path.
   *
   * @example
   * ```ts
   * import { CheckpointLayout } from "@ckpt/monitor";
   * import { equal } from "node:assert/strict";
   * const layout = new CheckpointLayout("out", { names: ["CKP_rank_0-1_1.ckpt"] });
   * equal(layout.mainFile(1, 1), "out/checkpoint/rank_0/CKP_rank_0_1-1_1.ckpt");
   * ```
   */
  mainFile(epoch: number, step: number): string {
    return join(
      this.checkpointDir,
      checkpointFileName(this.prefix, epoch, step, this.extension),
    );
  }

  /**
   * The prefix another rank of the same run writes under: `{prefix}_rank_R`
   * with this layout's collision suffix.
   *
   * @param rank The other rank.
   * @returns Its prefix.
   *
   * @example
   * ```ts
   * import { CheckpointLayout } from "@ckpt/monitor";
   * import { equal } from "node:assert/strict";
   * const layout = new CheckpointLayout("out", { rank: 0, names: ["CKP_rank_0-1_1.ckpt"] });
   * equal(layout.prefixOfRank(2), "CKP_rank_2_1");
   * ```
   */
  prefixOfRank(rank: number): string {
    return `${this.#userPrefix}_rank_${rank}${this.#suffix}`;
  }

  /**
   * The path of an integrated checkpoint,
   * `integrated/{integratedPrefix}-{epoch}_{step}.{ext}`.
   *
   * @param epoch The epoch, from 1.
   * @param step The step in the epoch, from 1.
   * @returns The path.
   *
   * @example
   * ```ts
   * import { CheckpointLayout } from "@ckpt/monitor";
   * import { equal } from "node:assert/strict";
   * const layout = new CheckpointLayout("out", { rank: 1, names: [] });
   * equal(layout.integratedFile(2, 3), "out/checkpoint/integrated/CKP-2_3.ckpt");
   * ```
   */
  integratedFile(epoch: number, step: number): string {
    return join(
      this.integratedDir,
      checkpointFileName(this.integratedPrefix, epoch, step, this.extension),
    );
  }

  /**
   * The path of a breakpoint checkpoint, `{Pe}-{E}_{S}_breakpoint.ckpt`,
   * where `Pe` is the base prefix suffixed against the breakpoint files
   * already in the folder (always `.ckpt`, as the original).
   *
   * @param epoch The epoch, from 1.
   * @param step The step in the epoch, from 1.
   * @param names The file names in the checkpoint folder now.
   * @returns The path.
   *
   * @example
   * ```ts
   * import { CheckpointLayout } from "@ckpt/monitor";
   * import { equal } from "node:assert/strict";
   * const layout = new CheckpointLayout("out", { names: [] });
   * equal(layout.breakpointFile(2, 3, []), "out/checkpoint/rank_0/CKP_rank_0-2_3_breakpoint.ckpt");
   * ```
   */
  breakpointFile(epoch: number, step: number, names: Iterable<string>): string {
    const p = resolvePrefix(this.basePrefix, names, { breakpoint: true });
    return join(this.checkpointDir, `${p}-${epoch}_${step}_breakpoint.ckpt`);
  }
}

/** Options of {@linkcode CheckpointLayout}. */
export interface CheckpointLayoutOptions {
  /**
   * The file-name prefix, before `_rank_R`.
   *
   * @default {"CKP"}
   */
  readonly prefix?: string;
  /**
   * The rank.
   *
   * @default {0}
   */
  readonly rank?: number;
  /**
   * The format's extension.
   *
   * @default {"ckpt"}
   */
  readonly format?: CheckpointFormat;
  /**
   * The file names already in the checkpoint folder, for the collision
   * suffix.
   *
   * @default {[]}
   */
  readonly names?: Iterable<string>;
}
