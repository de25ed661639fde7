// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Finding the checkpoint to resume from, MindFormers' way, but trusting
 * nothing that does not verify.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import {
  type CheckpointEntry,
  type LoadCheckpointOptions,
  openCheckpoint,
} from "../checkpoint/checkpoint.ts";
import {
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
} from "../core/errors.ts";
import { checkRecorded } from "../checkpoint/_recorded.ts";
import { readMeta } from "../checkpoint/_meta.ts";
import { checkPath } from "../store/_paths.ts";
import { storeFor } from "../store/resolve.ts";
import {
  type CheckpointStore,
  isNotFound,
  joinPath as join,
} from "../store/store.ts";
import {
  type Network,
  networkParameters,
  type Parameter,
  type Tensor,
} from "../tensor/types.ts";
import {
  verifyCheckpoint,
  type VerifyFailureKind,
} from "../checkpoint/verify.ts";
import {
  type Candidate,
  explainEmpty,
  explainNothing,
  gather,
  type Gathered,
  order,
  type Ordered,
  type Skip,
  type Step,
} from "./_candidates.ts";

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
  /**
   * `true` when the chosen files are `_breakpoint.ckpt` files (written by
   * `exceptionSave` when the loop threw, after the last regular save).
   */
  readonly breakpoint?: boolean;
  /** How the candidates were listed: from `meta.json`, or by file time. */
  readonly source: "meta.json" | "mtime";
  /** Where training resumes. */
  readonly context: ResumeContext;
  /** Newer candidates passed over, and why. */
  readonly skipped: readonly SkippedCheckpoint[];
  /** Problems that did not stop the search (a malformed `meta.json`, …). */
  readonly warnings: readonly string[];
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
 * Breakpoints count: a `_breakpoint.ckpt` file (which `meta.json` does not
 * list) is a candidate when it was written after that rank's `meta.json`
 * was last updated (so after every file it lists; an older breakpoint
 * belongs to a run a later run has saved past), ordered by its (epoch,
 * step) and before a regular file of the same step. It is checked by
 * reading every entry, as nothing records its checksum.
 *
 * A `meta.json` that is missing or malformed (reported in `warnings`)
 * leaves that rank's files to be found by name and each checked by reading
 * every entry, so a damaged newest file is skipped for the next; a file
 * `meta.json` lists but the disk lacks, or whose size or checksum
 * disagrees, is skipped; files `meta.json` does not list (foreign files,
 * an earlier run's) are never chosen when it exists. A file removed while
 * it is checked (a running monitor's retention) is skipped as `missing`.
 * A candidate whose resume context cannot be read (no `step_num` nor
 * `global_step`) is skipped too.
 *
 * Rank folders and checkpoint files that are symbolic links are followed,
 * as the monitor writes through them. `null` means a fresh start: no rank
 * folder holds anything named like a checkpoint. Files named like
 * checkpoints that cannot be (not regular files, other names) are reported
 * in `warnings`, or, when nothing else is there, thrown as the reason; a
 * rank folder given instead of the monitor's directory is an error saying
 * so.
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
 *   verifies for every rank (the message, "Cannot resume from <folder>",
 *   lists why each was skipped), or the rank folders are not `rank_0` …
 *   `rank_{n−1}` folders.
 * @throws {EncryptionMismatchError} When every candidate is encrypted and
 *   no `decKey` was given (the message names the newest file and its
 *   cipher), or every one is plain and a key was given.
 * @throws {DecryptionError} When every candidate fails to decrypt with the
 *   key given.
 * @throws {Deno.errors.PermissionDenied} When read permission for
 *   `directory` is missing (the message names the `--allow-read` flag).
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
  const searched = await search(store, directory, {
    verify,
    load,
    expected,
    newGbs,
    perEpoch,
  });
  if (searched === null) return null;
  const { gathered, ordered, skipped, found } = searched;
  const warnings = [...ordered.warnings];
  if (found === null) throw explainNothing(gathered, skipped, warnings);
  const { step, files, context } = found;
  const root = gathered.root;
  const count = gathered.ranks.length;
  const integrated = await findIntegrated(
    root,
    step.files,
    verify,
    load,
    warnings,
  );
  if (files.length < count) {
    const n = files.length;
    warnings.push(
      `${
        n + 1 < count ? `rank_${n} … rank_${count - 1} are` : `rank_${n} is`
      } not part of the run that wrote this checkpoint (its meta.json records ${n} ranks): ignored`,
    );
  }
  return {
    root,
    files,
    ...(integrated !== undefined && { integrated }),
    epoch: step.epoch,
    step: step.step,
    ...(step.breakpoint && { breakpoint: true }),
    source: ordered.source,
    context,
    skipped: skipped.map(({ rank, file, kind, reason }) => ({
      rank,
      file,
      kind,
      reason,
    })),
    warnings,
  };
}

/** One pass of the search: what was listed, in order, and what verified. */
interface Searched {
  readonly gathered: Gathered;
  readonly ordered: Ordered;
  readonly skipped: Skip[];
  readonly found: Awaited<ReturnType<typeof firstThatVerifies>>;
}

/**
 * Gathers, orders and checks the candidates; `null` for a fresh start. A
 * running monitor's retention may remove every candidate listed when the
 * folder was read: then the folder is read again, as long as it lists other
 * candidates each time (a monitor saving on), up to 50 times.
 */
async function search(
  store: CheckpointStore,
  directory: string,
  checks: CheckOptions,
): Promise<Searched | null> {
  let previous = "";
  for (let attempt = 1;; attempt++) {
    const gathered = await gather(store, directory);
    const ordered = order(gathered);
    if (!ordered.anything) {
      const why = explainEmpty(gathered);
      if (why !== null) throw why;
      return null;
    }
    const skipped: Skip[] = [];
    const found = await firstThatVerifies(
      gathered.root,
      ordered.steps,
      checks,
      skipped,
    );
    const vanished = skipped.length > 0 &&
      skipped.every((s) => s.kind === "missing");
    const listed = ordered.steps.map((s) => s.files.map((f) => f.name).join())
      .join(";");
    if (found !== null || !vanished || listed === previous || attempt === 50) {
      return { gathered, ordered, skipped, found };
    }
    previous = listed;
  }
}

/** How each candidate is checked, and what the resume context needs. */
interface CheckOptions {
  readonly verify: "checksum" | "full";
  readonly load: LoadCheckpointOptions;
  readonly expected: readonly Parameter[] | undefined;
  readonly newGbs: number | undefined;
  readonly perEpoch: number | undefined;
}

/**
 * The first step, in order, whose every rank file verifies and whose
 * resume context can be read; every one passed over is added to
 * `skipped`, with the reason.
 */
async function firstThatVerifies(
  root: string,
  steps: readonly Step[],
  options: CheckOptions,
  skipped: Skip[],
): Promise<
  { step: Step; files: string[]; context: ResumeContext } | null
> {
  const { verify, load, expected } = options;
  next: for (const step of steps) {
    const files: string[] = [];
    for (const [rank, c] of step.files.entries()) {
      const file = join(root, `rank_${rank}`, c.name);
      files.push(file);
      const problem = await check(file, c, verify, load, expected);
      if (problem !== null) {
        skipped.push({ rank, file, ...problem });
        continue next;
      }
    }
    const context = await resumeContext(files[0]!, step.files[0]!, options)
      .catch((error: unknown) => failure(error));
    if ("kind" in context) {
      skipped.push({ rank: 0, file: files[0]!, ...context });
      continue;
    }
    return { step, files, context };
  }
  return null;
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
    { ...entry, breakpoint: false, mtime: 0, globalStep: entry.global_step },
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

/** Why a candidate fails, from what its check threw; rethrows the rest. */
function failure(error: unknown): Omit<Skip, "rank" | "file"> {
  if (error instanceof CorruptCheckpointError) {
    return { kind: "corrupt", reason: error.reason, error };
  }
  if (error instanceof DecryptionError) {
    return { kind: "decryption", reason: error.message, error };
  }
  if (error instanceof EncryptionMismatchError) {
    return { kind: "encryption", reason: error.message, error };
  }
  // Removed while being checked (retention of a running monitor).
  if (isNotFound(error)) {
    return {
      kind: "missing",
      reason: "the file disappeared while being read",
      error,
    };
  }
  throw error;
}

/** Checks one candidate; returns why it fails, or `null`. */
async function check(
  file: string,
  c: Candidate,
  verify: "checksum" | "full",
  load: LoadCheckpointOptions,
  expected: readonly Parameter[] | undefined,
): Promise<Omit<Skip, "rank" | "file"> | null> {
  try {
    if (verify === "full" || c.checksum === undefined) {
      // Nothing recorded (a breakpoint, no meta.json): every entry is read.
      const r = await verifyCheckpoint(file, {
        ...load,
        meta: false,
        expected: {
          ...(c.bytes !== undefined && { bytes: c.bytes }),
          ...(c.checksum !== undefined && { checksum: c.checksum }),
        },
      });
      if (!r.ok) {
        return r.error === undefined
          ? { kind: r.kind, reason: r.reason }
          : { kind: r.kind, reason: r.reason, error: r.error };
      }
    } else {
      // Size and checksum (which covers every byte); the headers are parsed below.
      const mismatch = await checkRecorded(storeFor(file, load.store), file, {
        bytes: c.bytes ?? -1,
        checksum: c.checksum,
      });
      if (mismatch !== null) return mismatch;
    }
    await using reader = await openCheckpoint(file, load);
    return expected === undefined
      ? null
      : otherModel(reader.entries, expected, c.slices);
  } catch (error) {
    return failure(error);
  }
}

/**
 * Why a file's entries are not the network's parameters (the checkpoint of
 * another model), or `null` when every parameter fits.
 */
function otherModel(
  entries: readonly CheckpointEntry[],
  expected: readonly Parameter[],
  slices: Candidate["slices"],
): Omit<Skip, "rank" | "file"> | null {
  const have = new Map(entries.map((e) => [e.name, e]));
  const shape = (s: readonly number[]) => `[${s.join(", ")}]`;
  for (const p of expected) {
    const e = have.get(p.name);
    if (e === undefined) {
      return {
        kind: "model",
        reason: `it lacks parameter ${
          JSON.stringify(p.name)
        }: the checkpoint of another model?`,
      };
    }
    // A sliced parameter fits a file holding its whole tensor, or a slice
    // of the same whole tensor (saved with another rank count).
    const recorded = slices !== undefined && Object.hasOwn(slices, p.name)
      ? slices[p.name]!.globalShape
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
  return null;
}

/** Reads the resume context from the chosen file. */
async function resumeContext(
  file: string,
  c: Candidate,
  { load, newGbs, perEpoch }: CheckOptions,
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
