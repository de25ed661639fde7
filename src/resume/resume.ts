// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Finding the checkpoint to resume from, MindFormers' way, but trusting
 * nothing that does not verify.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import {
  type LoadCheckpointOptions,
  openCheckpoint,
} from "../checkpoint/checkpoint.ts";
import {
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
} from "../core/errors.ts";
import { checkRecorded } from "../checkpoint/_recorded.ts";
import { isTempFileName } from "../store/temp_files.ts";
import { type ParsedMeta, readMeta } from "../checkpoint/_meta.ts";
import { checkPath } from "../store/_paths.ts";
import { storeFor } from "../store/resolve.ts";
import { type CheckpointStore, joinPath as join } from "../store/store.ts";
import {
  type Network,
  networkParameters,
  type ParameterSlice,
  type Tensor,
} from "../tensor/types.ts";
import {
  verifyCheckpoint,
  type VerifyFailureKind,
} from "../checkpoint/verify.ts";

/** Options of {@linkcode findResumeCheckpoint}. */
export interface FindResumeCheckpointOptions extends LoadCheckpointOptions {
  /**
   * The global batch size of the new run. When the checkpoint records a
   * different `global_batch_size`, progress is rescaled as MindFormers
   * does: `scale = saved / new`, `initialStep = floor(step_num × scale)`.
   *
   * @default {undefined}
   */
  readonly globalBatchSize?: number;
  /**
   * Steps in one epoch of the new run, to compute `initialEpoch` (epochs
   * completed). Without it, `initialEpoch` is `epoch_num − 1` unless the
   * checkpoint was taken at the end of its epoch, which can only be known
   * from `meta.json`; prefer passing `initialStep` alone to `train`.
   *
   * @default {undefined}
   */
  readonly stepsPerEpoch?: number;
  /**
   * The network (and optimizer state) the checkpoint is for: a candidate
   * lacking one of its parameters, or holding it with another dtype or
   * shape, is skipped as the checkpoint of another model. A parameter with
   * a `slice` fits a file holding its whole tensor, or (per `meta.json`) a
   * slice of the same whole tensor, so that a run with another number of
   * ranks finds the step whose integrated file it loads.
   *
   * @default {undefined}
   */
  readonly network?: Network;
  /**
   * `"checksum"`: check each candidate's size and checksum against
   * `meta.json` and parse its headers (the checksum covers every byte).
   * `"full"`: also read every entry (for encrypted files, every GCM tag),
   * as {@linkcode verifyCheckpoint} does.
   *
   * @default {"checksum"}
   */
  readonly verify?: "checksum" | "full";
}

/** A candidate checkpoint that was passed over, and why. */
export interface SkippedCheckpoint {
  /** The rank whose file it is. */
  readonly rank: number;
  /** The file. */
  readonly file: string;
  /** Which check failed (`"model"` for the checkpoint of another model). */
  readonly kind: VerifyFailureKind | "model";
  /** What is wrong, in words. */
  readonly reason: string;
}

/** Where training resumes, as MindFormers computes it from the checkpoint. */
export interface ResumeContext {
  /** Global steps completed: pass it as `initialStep` to {@linkcode train}. */
  readonly initialStep: number;
  /** Epochs completed (see `stepsPerEpoch` of the options). */
  readonly initialEpoch: number;
  /** The checkpoint's `epoch_num` (the epoch in progress when it was saved). */
  readonly epochNum: number;
  /** The checkpoint's `step_num` (before rescaling). */
  readonly stepNum: number;
  /** The optimizer's `global_step` to restore, rescaled, or `null` if absent. */
  readonly globalStep: number | null;
  /** The loss scale recorded, or `null` if absent. */
  readonly lossScale: number | null;
  /** The global batch size recorded, or `null` if absent. */
  readonly globalBatchSize: number | null;
  /** `saved global batch size / new`, 1 when either is unknown. */
  readonly stepScale: number;
}

/** What {@linkcode findResumeCheckpoint} chose. */
export interface ResumeCheckpoint {
  /** The folder holding `rank_*` (`<directory>/checkpoint`). */
  readonly root: string;
  /**
   * The file to load, per rank (index = rank): one per rank folder, or, when
   * `meta.json` records the run's `rank_size`, one for each of its ranks.
   */
  readonly files: readonly string[];
  /**
   * The whole-tensor file `integratedSave` assembled from exactly these
   * rank files (`checkpoint/integrated/`), when there is one and it
   * verifies: load it to resume with another number of ranks (a network
   * parameter's `slice` is then read out of the whole tensor).
   */
  readonly integrated?: string;
  /** The epoch in the chosen files' names. */
  readonly epoch: number;
  /** The step (within the epoch) in the chosen files' names. */
  readonly step: number;
  /** How the candidates were listed: from `meta.json`, or by file time. */
  readonly source: "meta.json" | "mtime";
  /** Where training resumes. */
  readonly context: ResumeContext;
  /** Newer candidates passed over, and why. */
  readonly skipped: readonly SkippedCheckpoint[];
  /** Problems that did not stop the search (a malformed `meta.json`, …). */
  readonly warnings: readonly string[];
}

/** A candidate file of one rank. */
interface Candidate {
  readonly name: string;
  readonly epoch: number;
  readonly step: number;
  readonly mtime: number;
  readonly bytes?: number;
  readonly checksum?: string;
  readonly globalStep?: number;
  /** The slice layout `meta.json` records for it. */
  readonly slices?: Readonly<Record<string, ParameterSlice>>;
  /** The number of ranks of the run that wrote it, when recorded. */
  readonly rankSize?: number;
}

const NAME = /^(.+)-([0-9]+)_([0-9]+)\.(ckpt|safetensors)$/;

function key(c: { epoch: number; step: number }): string {
  return `${c.epoch}_${c.step}`;
}

/** The checkpoint files of a folder, parsed from their names (no breakpoints). */
async function scan(
  store: CheckpointStore,
  folder: string,
): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for (const e of await store.list(folder) ?? []) {
    if (e.kind !== "file" || isTempFileName(e.name)) continue;
    const m = NAME.exec(e.name);
    if (m === null || e.name.endsWith("_breakpoint.ckpt")) continue;
    let mtime = 0;
    try {
      const info = await store.stat(join(folder, e.name));
      if (info === null) continue; // Removed since the listing.
      mtime = info.mtimeMs ?? 0;
    } catch {
      continue;
    }
    out.push({
      name: e.name,
      epoch: Number(m[2]),
      step: Number(m[3]),
      mtime,
    });
  }
  return out;
}

function positive(value: unknown, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot find resume checkpoint: option "${option}" must be a number, received ${
        describe(value)
      }`,
    );
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot find resume checkpoint: option "${option}" must be a positive integer, received ${value}`,
    );
  }
  return value;
}

function scalar(value: Tensor | string | undefined): number | null {
  if (value === undefined || typeof value === "string") return null;
  const x = value.data[0];
  if (x === undefined) return null;
  return Number(x);
}

/** Lists the `rank_N` folders of `root`, checking they are 0..n−1. */
async function rankFolders(
  store: CheckpointStore,
  root: string,
): Promise<number> {
  const ranks: number[] = [];
  for (const e of await store.list(root) ?? []) {
    const m = /^rank_([0-9]+)$/.exec(e.name);
    if (m !== null && e.kind === "directory") ranks.push(Number(m[1]));
  }
  ranks.sort((a, b) => a - b);
  for (const [i, r] of ranks.entries()) {
    if (r !== i) {
      throw new CorruptCheckpointError(
        root,
        `rank folders must be rank_0 to rank_${
          ranks.length - 1
        }, found rank_${r} without rank_${i}`,
      );
    }
  }
  return ranks.length;
}

/**
 * Finds the checkpoint to resume from, by MindFormers' rule over
 * `<directory>/checkpoint/rank_N/meta.json`: the newest (epoch, step) for
 * which every rank has a checkpoint, no newer than the oldest rank's last
 * one (without any `meta.json`: the newest by file time present for every
 * rank). Unlike the original, nothing is trusted unverified: every
 * candidate's size and checksum are compared with those `meta.json`
 * records and its headers are parsed; a candidate that fails (or, given
 * `network`, belongs to another model) is skipped, with the reason, in
 * favour of the next newest that verifies.
 *
 * When the monitor knew its `rankSize`, `meta.json` records it with each
 * file, and a step needs only that many rank folders: after a run with
 * fewer ranks than the one before (resumed from the integrated file), the
 * earlier run's extra `rank_*` folders are ignored for its steps, with a
 * warning.
 *
 * A `meta.json` that is malformed is reported in `warnings` and that rank's
 * files are then found by name and checked by structure only; a file
 * `meta.json` lists but the disk lacks, or whose size or checksum
 * disagrees, is skipped; files `meta.json` does not list (foreign files,
 * an earlier run's) are never chosen when it exists.
 *
 * When `integratedSave` assembled the chosen step's sliced parameters into
 * `checkpoint/integrated/`, the result also names that file (`integrated`),
 * once it verifies like a candidate; a run with another number of ranks
 * loads its slices from it with {@linkcode loadParamsInto}.
 *
 * @param directory The monitor's `directory` (holding `checkpoint/`), or
 *   the folder holding the `rank_*` folders.
 * @param options Options.
 * @returns The files per rank and the resume context, or `null` when there
 *   is no checkpoint at all (a fresh start).
 * @throws {CorruptCheckpointError} When checkpoints exist but none
 *   verifies for every rank (the message lists why each was skipped), or
 *   the rank folders are not `rank_0` … `rank_{n−1}`.
 * @throws {TypeError} When an argument has the wrong type.
 * @throws {RangeError} When an option is out of range.
 *
 * @example Resume where a monitor stopped
 * ```ts
 * import { CheckpointMonitor, findResumeCheckpoint, train } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 *
 * const directory = await Deno.makeTempDir();
 * try {
 *   const w = { dtype: "Float32" as const, shape: [1], data: new Float32Array(1) };
 *   const monitor = new CheckpointMonitor({ directory, saveCheckpointSteps: 4 });
 *   await train({ epochs: 1, stepsPerEpoch: 10, network: { w }, step: () => {}, callbacks: [monitor] });
 *   await monitor.close();
 *
 *   const found = await findResumeCheckpoint(directory, { stepsPerEpoch: 10 });
 *   equal(found?.files[0]?.endsWith("CKP_rank_0-1_10.ckpt"), true);
 *   equal(found?.context.initialStep, 10);
 *   equal(found?.context.initialEpoch, 1);
 * } finally {
 *   await Deno.remove(directory, { recursive: true });
 * }
 * ```
 */
export async function findResumeCheckpoint(
  directory: string,
  options: FindResumeCheckpointOptions = {},
): Promise<ResumeCheckpoint | null> {
  checkPath(directory, "find resume checkpoint");
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot find resume checkpoint: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  const {
    globalBatchSize,
    stepsPerEpoch,
    network,
    verify = "checksum",
    ...load
  } = options;
  const newGbs = positive(globalBatchSize, "globalBatchSize");
  const perEpoch = positive(stepsPerEpoch, "stepsPerEpoch");
  if (verify !== "checksum" && verify !== "full") {
    throw new RangeError(
      `Cannot find resume checkpoint: option "verify" must be "checksum" or "full", received ${
        describe(verify)
      }`,
    );
  }
  const expected = network === undefined
    ? undefined
    : networkParameters(network);

  const store = storeFor(directory, load.store);
  store.checkAccess(directory, "read");
  let root = join(directory, "checkpoint");
  let count = await rankFolders(store, root);
  if (count === 0) {
    count = await rankFolders(store, directory);
    if (count > 0) root = directory;
  }
  if (count === 0) return null;

  const warnings: string[] = [];
  const skipped: SkippedCheckpoint[] = [];
  const perRank: Map<string, Candidate>[] = [];
  const metas: (ParsedMeta | null)[] = [];
  let anyMeta = false;
  for (let rank = 0; rank < count; rank++) {
    const folder = join(root, `rank_${rank}`);
    const metaPath = join(folder, "meta.json");
    const read = await readMeta(metaPath, store);
    const byKey = new Map<string, Candidate>();
    if (read.kind === "ok") {
      anyMeta = true;
      const meta = read.meta;
      metas.push(meta);
      if (meta.files !== null) {
        for (const f of meta.files) {
          byKey.set(key(f), {
            name: f.name,
            epoch: f.epoch,
            step: f.step,
            mtime: 0,
            bytes: f.bytes,
            checksum: f.checksum,
            globalStep: f.global_step,
            ...(f.slices && { slices: f.slices }),
            ...(f.rank_size !== undefined && { rankSize: f.rank_size }),
          });
        }
      } else {
        // MindFormers' own meta.json: the files of its prefix up to the last.
        const dash = meta.last_ckpt_file.lastIndexOf("-");
        const prefix = meta.last_ckpt_file.slice(0, dash);
        for (const c of await scan(store, folder)) {
          if (!c.name.startsWith(`${prefix}-`)) continue;
          if (
            c.epoch > meta.last_epoch ||
            (c.epoch === meta.last_epoch && c.step > meta.last_step)
          ) continue;
          byKey.set(key(c), c);
        }
      }
    } else {
      metas.push(null);
      if (read.kind === "invalid") {
        anyMeta = true;
        warnings.push(
          `${metaPath} is malformed (${read.reason}); rank ${rank}'s files are found by name and checked by structure only`,
        );
      }
      // Newest by time first, so a later run's file wins a shared key.
      const found = (await scan(store, folder)).sort((a, b) =>
        a.mtime - b.mtime
      );
      for (const c of found) byKey.set(key(c), c);
    }
    perRank.push(byKey);
  }

  // Keys present for every rank of the run that wrote them (all rank
  // folders, or the first `rank_size` when meta.json records it), newest
  // first: by (epoch, step), or, with no meta.json anywhere, by rank 0's
  // file time as MindFormers does.
  const ranksOf = (c: Candidate) => c.rankSize ?? count;
  const complete = (c: Candidate) => {
    const n = ranksOf(c);
    if (n > count) return false;
    for (let rank = 0; rank < n; rank++) {
      if (!perRank[rank]!.has(key(c))) return false;
    }
    return true;
  };
  const byTime = !anyMeta;
  if (count > 1 && anyMeta && ![...perRank[0]!.values()].some(complete)) {
    // A resumed run's meta.json lists only its own files: when some ranks
    // saved in the new run and others died before their first save, the
    // step they all resumed from is listed by none of the new ones. Add
    // each rank's files from earlier runs (not newer than its meta.json's
    // last), checked by a full read as their checksums are not recorded.
    for (let rank = 0; rank < count; rank++) {
      const meta = metas[rank];
      if (meta === null || meta === undefined) continue;
      const byKey = perRank[rank]!;
      let added = false;
      const older = (await scan(store, join(root, `rank_${rank}`)))
        .sort((a, b) => b.mtime - a.mtime);
      for (const c of older) {
        if (byKey.has(key(c))) continue;
        if (
          c.epoch > meta.last_epoch ||
          (c.epoch === meta.last_epoch && c.step > meta.last_step)
        ) continue;
        byKey.set(key(c), c);
        added = true;
      }
      if (added) {
        warnings.push(
          `rank ${rank}: no step is listed by every rank's meta.json; files meta.json no longer lists (an earlier run's) were considered, checked by structure only`,
        );
      }
    }
  }
  const shared = [...perRank[0]!.values()]
    .filter(complete)
    .sort((a, b) =>
      byTime
        ? b.mtime - a.mtime || b.epoch - a.epoch || b.step - a.step
        : b.epoch - a.epoch || b.step - a.step
    );
  const anyCandidate = perRank.some((m) => m.size > 0);
  if (!anyCandidate && !anyMeta) return null;

  for (const head of shared) {
    const ranks = ranksOf(head);
    const files: string[] = [];
    let good = true;
    for (let rank = 0; rank < ranks && good; rank++) {
      const c = perRank[rank]!.get(key(head))!;
      const file = join(root, `rank_${rank}`, c.name);
      files.push(file);
      const problem = await check(file, c, verify, load, expected);
      if (problem !== null) {
        skipped.push({ rank, file, ...problem });
        good = false;
      }
    }
    if (!good) continue;
    const context = await resumeContext(
      files[0]!,
      perRank[0]!.get(key(head))!,
      load,
      newGbs,
      perEpoch,
    );
    const integrated = await findIntegrated(
      root,
      perRank.slice(0, ranks).map((m) => m.get(key(head))!),
      verify,
      load,
      warnings,
    );
    if (ranks < count) {
      warnings.push(
        `${
          ranks + 1 < count
            ? `rank_${ranks} … rank_${count - 1} are`
            : `rank_${ranks} is`
        } not part of the run that wrote this checkpoint (its meta.json records ${ranks} ranks): ignored`,
      );
    }
    return {
      root,
      files,
      ...(integrated !== undefined && { integrated }),
      epoch: head.epoch,
      step: head.step,
      source: metas.some((m) => m !== null) ? "meta.json" : "mtime",
      context,
      skipped,
      warnings,
    };
  }

  const lines = skipped.map((s) => `${s.file}: ${s.reason}`);
  if (shared.length === 0) {
    const empty = perRank.flatMap((m, r) => m.size === 0 ? [`rank_${r}`] : []);
    lines.push(
      empty.length > 0
        ? `${empty.join(", ")} ${
          empty.length === 1 ? "has" : "have"
        } no checkpoint, while other ranks do`
        : `no (epoch, step) has a checkpoint in all ${count} rank folders`,
    );
  }
  throw new CorruptCheckpointError(
    root,
    `no checkpoint to resume from verifies:\n  ${
      [...warnings, ...lines].join("\n  ")
    }`,
  );
}

/**
 * The integrated file assembled from exactly the chosen rank files (same
 * names, same checksums where recorded), checked like a candidate. One
 * that is listed but fails is a warning: the rank files are the ones that
 * count.
 */
async function findIntegrated(
  root: string,
  chosen: readonly Candidate[],
  verify: "checksum" | "full",
  load: LoadCheckpointOptions,
  warnings: string[],
): Promise<string | undefined> {
  const folder = join(root, "integrated");
  const metaPath = join(folder, "meta.json");
  const read = await readMeta(metaPath, storeFor(metaPath, load.store));
  if (read.kind === "missing") return undefined;
  if (read.kind === "invalid") {
    warnings.push(
      `${metaPath} is malformed (${read.reason}); no integrated file is used`,
    );
    return undefined;
  }
  const entry = read.meta.files?.find((f) =>
    f.sources !== undefined && f.sources.length === chosen.length &&
    f.sources.every((s, rank) =>
      s.name === chosen[rank]!.name &&
      (chosen[rank]!.checksum === undefined ||
        s.checksum === chosen[rank]!.checksum)
    )
  );
  if (entry === undefined) return undefined;
  const file = join(folder, entry.name);
  const problem = await check(
    file,
    { ...entry, mtime: 0, globalStep: entry.global_step },
    verify,
    load,
    undefined,
  );
  if (problem !== null) {
    warnings.push(
      `${file} (the integrated file of this step) does not verify: ${problem.reason}; resume from the rank files`,
    );
    return undefined;
  }
  return file;
}

/** Checks one candidate; returns why it fails, or `null`. */
async function check(
  file: string,
  c: Candidate,
  verify: "checksum" | "full",
  load: LoadCheckpointOptions,
  expected: ReturnType<typeof networkParameters> | undefined,
): Promise<Pick<SkippedCheckpoint, "kind" | "reason"> | null> {
  if (verify === "full" || c.checksum === undefined) {
    const r = await verifyCheckpoint(file, {
      ...load,
      meta: false,
      expected: {
        ...(c.bytes !== undefined && { bytes: c.bytes }),
        ...(c.checksum !== undefined && { checksum: c.checksum }),
      },
    });
    if (!r.ok) return { kind: r.kind, reason: r.reason };
  } else {
    // Size and checksum (which covers every byte); the headers are parsed below.
    const mismatch = await checkRecorded(storeFor(file, load.store), file, {
      bytes: c.bytes ?? -1,
      checksum: c.checksum,
    });
    if (mismatch !== null) return mismatch;
  }
  try {
    await using reader = await openCheckpoint(file, load);
    if (expected !== undefined) {
      const have = new Map(reader.entries.map((e) => [e.name, e]));
      for (const p of expected) {
        const e = have.get(p.name);
        const shape = (s: readonly number[]) => `[${s.join(", ")}]`;
        if (e === undefined) {
          return {
            kind: "model",
            reason: `it lacks parameter ${
              JSON.stringify(p.name)
            }: the checkpoint of another model?`,
          };
        }
        // A sliced parameter fits a file holding its whole tensor, or a
        // slice of the same whole tensor (saved with another rank count).
        const recorded =
          c.slices !== undefined && Object.hasOwn(c.slices, p.name)
            ? c.slices[p.name]!.globalShape
            : undefined;
        const fits = shape(e.shape) === shape(p.shape) ||
          (p.slice !== undefined &&
            [e.shape, recorded].some((s) =>
              s !== undefined && shape(s) === shape(p.slice!.globalShape)
            ));
        if (e.dtype !== p.dtype || !fits) {
          return {
            kind: "model",
            reason: `parameter ${JSON.stringify(p.name)} is ${e.dtype} ${
              shape(e.shape)
            } in it, ${p.dtype} ${
              shape(p.shape)
            } in the network: the checkpoint of another model?`,
          };
        }
      }
    }
  } catch (error) {
    if (error instanceof CorruptCheckpointError) {
      return { kind: "corrupt", reason: error.reason };
    }
    if (error instanceof DecryptionError) {
      return { kind: "decryption", reason: error.message };
    }
    if (error instanceof EncryptionMismatchError) {
      return { kind: "encryption", reason: error.message };
    }
    throw error;
  }
  return null;
}

/** Reads the resume context from the chosen file. */
async function resumeContext(
  file: string,
  c: Candidate,
  load: LoadCheckpointOptions,
  newGbs: number | undefined,
  perEpoch: number | undefined,
): Promise<ResumeContext> {
  await using reader = await openCheckpoint(file, load);
  const names = new Set(reader.entries.map((e) => e.name));
  const get = async (name: string): Promise<number | null> =>
    names.has(name) ? scalar(await reader.read(name)) : null;
  const epochNum = (await get("epoch_num")) ?? c.epoch;
  const savedGlobalStep = (await get("global_step")) ?? c.globalStep ?? null;
  const stepNum = (await get("step_num")) ?? c.globalStep ?? savedGlobalStep;
  if (stepNum === null) {
    throw new CorruptCheckpointError(
      file,
      "it records neither step_num nor global_step, and meta.json does not list it: cannot tell where to resume",
    );
  }
  const lossScale = await get("loss_scale");
  const savedGbs = await get("global_batch_size");
  const stepScale = savedGbs !== null && newGbs !== undefined
    ? savedGbs / newGbs
    : 1;
  const initialStep = Math.floor(stepNum * stepScale);
  let initialEpoch: number;
  if (perEpoch !== undefined) initialEpoch = Math.floor(initialStep / perEpoch);
  else if (stepScale !== 1) initialEpoch = Math.floor(epochNum * stepScale);
  else {
    // The step in the file name is the last of its epoch when the global
    // step lands on an epoch boundary; meta.json's global step tells.
    const g = c.globalStep;
    const atEnd = g !== undefined && c.epoch > 1 &&
      g % ((g - c.step) / (c.epoch - 1)) === 0;
    initialEpoch = atEnd ? epochNum : epochNum - 1;
  }
  return {
    initialStep,
    initialEpoch,
    epochNum,
    stepNum,
    globalStep: savedGlobalStep === null
      ? null
      : Math.floor(savedGlobalStep * stepScale),
    lossScale,
    globalBatchSize: savedGbs,
    stepScale,
  };
}
