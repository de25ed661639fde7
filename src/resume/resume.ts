// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Finding the checkpoint to resume from, MindFormers' way, but trusting
 * nothing that does not verify.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import type { Network } from "../tensor/types.ts";
import type { LoadParamsResult } from "./restore.ts";
import {
  find,
  type FindResumeCheckpointOptions,
  type ResumeCheckpoint,
} from "./_search.ts";
import { checkInteger } from "../core/_validate.ts";

export type {
  FindResumeCheckpointOptions,
  ResumeCheckpoint,
  ResumeContext,
  SkippedCheckpoint,
} from "./_search.ts";

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
export function findResumeCheckpoint(
  directory: string,
  options: FindResumeCheckpointOptions = {},
): Promise<ResumeCheckpoint | null> {
  return find(directory, options, undefined);
}

/** Options of {@linkcode resume}. */
export interface ResumeOptions
  extends Omit<FindResumeCheckpointOptions, "network" | "verify"> {
  /**
   * The network (and optimizer state) to restore: every parameter must be
   * in the checkpoint with its dtype and shape, as `loadParamsInto` with
   * `strict: true` requires.
   */
  readonly network: Network;
  /**
   * Whose files to restore.
   *
   * @default {0}
   */
  readonly rank?: number;
}

/** What {@linkcode resume} restored, and where training goes on. */
export interface ResumeResult extends ResumeCheckpoint {
  /** The network's parameters that got the checkpoint's values. */
  readonly restored: LoadParamsResult;
}

/**
 * Finds the checkpoint to resume from, as {@linkcode findResumeCheckpoint}
 * does, and restores it into `network` in the same pass: each tensor is
 * read from the file straight into the network's own arrays (no full-size
 * intermediate buffer), and the CRC-32 `meta.json` records is computed
 * from those very reads, so the file is read once. When the checksum does
 * not match, the candidate is skipped and the next one is restored over
 * it (every parameter again); other ranks' files of the chosen step are
 * checked as `findResumeCheckpoint` checks them. This is the resume to use;
 * it runs at about the speed of one read of the file.
 *
 * When no candidate verifies, the call throws, and the network may hold
 * values of a candidate that failed its check: initialise it again before
 * training from scratch.
 *
 * @param directory The monitor's `directory` (holding `checkpoint/`).
 * @param options The network, and the options of `findResumeCheckpoint`.
 * @returns The chosen files, the resume context and what was restored, or
 *   `null` for a fresh start (the network is then untouched).
 * @throws {CorruptCheckpointError} When checkpoints exist but none
 *   verifies (the message lists why each was skipped).
 * @throws {EncryptionMismatchError} When the files need a key not given.
 * @throws {DecryptionError} When no candidate decrypts with the key given.
 * @throws {TypeError} When an argument has the wrong type.
 *
 * @example Resume where a monitor stopped, in one call
 * ```ts
 * import { CheckpointMonitor, resume, train } from "@ckpt/monitor";
 * import { equal } from "node:assert/strict";
 *
 * const directory = await Deno.makeTempDir();
 * try {
 *   const w = { dtype: "Float32" as const, shape: [2], data: new Float32Array(2) };
 *   const monitor = new CheckpointMonitor({ directory, saveCheckpointSteps: 5 });
 *   await train({
 *     epochs: 1, stepsPerEpoch: 10, network: { w }, callbacks: [monitor],
 *     step: () => void w.data.fill(w.data[0]! + 1),
 *   });
 *   await monitor.close();
 *
 *   const fresh = { w: { ...w, data: new Float32Array(2) } };
 *   const resumed = await resume(directory, { network: fresh, stepsPerEpoch: 10 });
 *   equal(resumed?.context.initialStep, 10);
 *   equal(fresh.w.data[0], 10);
 * } finally {
 *   await Deno.remove(directory, { recursive: true });
 * }
 * ```
 */
export async function resume(
  directory: string,
  options: ResumeOptions,
): Promise<ResumeResult | null> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot resume: options must be an object with a network, received ${
        describe(options)
      }`,
    );
  }
  const { network, rank = 0, ...rest } = options;
  if (network === undefined) {
    throw new TypeError(`Cannot resume: option "network" is required`);
  }
  checkInteger(rank, 'option "rank"', 0, "Cannot resume");
  const found = await find(directory, { ...rest, network }, { rank, network });
  if (found === null) return null;
  if (found.restored === undefined) {
    throw new RangeError(
      `Cannot resume rank ${rank}: the chosen checkpoint has ${found.files.length} rank file(s)`,
    );
  }
  return found as ResumeResult;
}
