// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the search behind findResumeCheckpoint and resume: gather,
// order, first that verifies (or restores), explain; and the public types
// of its result, re-exported by resume.ts.

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
import { checkRecorded, statFile } from "../checkpoint/_recorded.ts";
import { restoreVerified } from "./_restore_verified.ts";
import { CheckpointMismatchError, type LoadParamsResult } from "./restore.ts";
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
import { formatShape, sameShape } from "../tensor/_shape.ts";
import { checkInteger } from "../core/_validate.ts";

/** Options of `findResumeCheckpoint`. */
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
   * as `verifyCheckpoint` does.
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
  /** Global steps completed: pass it as `initialStep` to `train`. */
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

/** What `findResumeCheckpoint` chose. */
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
  return value === undefined ? undefined : checkInteger(
    value,
    `option "${option}"`,
    1,
    "Cannot find resume checkpoint",
  );
}

function scalar(value: Tensor | string | undefined): number | null {
  if (value === undefined || typeof value === "string") return null;
  const x = value.data[0];
  if (x === undefined) return null;
  return Number(x);
}

/** The search: `restore` set by `resume`, unset by `findResumeCheckpoint`. */
export async function find(
  directory: string,
  options: FindResumeCheckpointOptions,
  restore: CheckOptions["restore"],
): Promise<(ResumeCheckpoint & { restored?: LoadParamsResult }) | null> {
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
    ...(restore !== undefined && { restore }),
  });
  if (searched === null) return null;
  const { gathered, ordered, skipped, found } = searched;
  const warnings = [...ordered.warnings];
  if (found === null) throw explainNothing(gathered, skipped, warnings);
  const { step, files, context, restored } = found;
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
    ...(restored !== undefined && { restored }),
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
  /** With `resume`: the rank whose file is restored, and into what. */
  readonly restore?: { readonly rank: number; readonly network: Network };
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
  {
    step: Step;
    files: string[];
    context: ResumeContext;
    restored?: LoadParamsResult;
  } | null
> {
  const { verify, load, expected, restore } = options;
  next: for (const step of steps) {
    const files: string[] = [];
    let restored: LoadParamsResult | undefined;
    for (const [rank, c] of step.files.entries()) {
      const file = join(root, `rank_${rank}`, c.name);
      files.push(file);
      const own = restore !== undefined && rank === restore.rank;
      const problem = own
        ? await restoreCandidate(file, c, load, restore.network)
        : await check(file, c, verify, load, expected);
      if (problem !== null && "result" in problem) {
        restored = problem.result;
        continue;
      }
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
    return { step, files, context, ...(restored && { restored }) };
  }
  return null;
}

/**
 * Restores the own rank's candidate in one pass (see
 * `restoreVerified`); returns what it restored, or why it does not count.
 */
async function restoreCandidate(
  file: string,
  c: Candidate,
  load: LoadCheckpointOptions,
  network: Network,
): Promise<Omit<Skip, "rank" | "file"> | { result: LoadParamsResult }> {
  try {
    const size = await statFile(storeFor(file, load.store), file);
    if (typeof size === "object") return size;
    if (c.bytes !== undefined && size !== c.bytes) {
      return {
        kind: "size",
        reason: `it has ${size} bytes, meta.json records ${c.bytes}`,
      };
    }
    const r = await restoreVerified(file, c, load, network);
    return r.ok ? { result: r.result } : { kind: r.kind, reason: r.reason };
  } catch (error) {
    if (error instanceof CheckpointMismatchError) {
      return { kind: "model", reason: error.message };
    }
    return failure(error);
  }
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
    const fits = sameShape(e.shape, p.shape) ||
      (p.slice !== undefined &&
        [e.shape, recorded].some((s) =>
          s !== undefined && sameShape(s, p.slice!.globalShape)
        ));
    if (e.dtype !== p.dtype || !fits) {
      return {
        kind: "model",
        reason: `parameter ${JSON.stringify(p.name)} is ${e.dtype} ${
          formatShape(e.shape)
        } in it, ${p.dtype} ${
          formatShape(p.shape)
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
