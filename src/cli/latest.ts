// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `latest <dir>`: which checkpoint a resume would pick from
 * `<dir>/checkpoint/rank_N/meta.json`, and why. It asks
 * {@linkcode findResumeCheckpoint}, so the answer is the one a resume gets:
 * MindFormers' rule, with every candidate's size and checksum checked
 * against `meta.json` and a candidate that fails skipped, with the reason.
 *
 * @module
 */

import { CorruptCheckpointError } from "../core/errors.ts";
import {
  findResumeCheckpoint,
  type ResumeContext,
  type SkippedCheckpoint,
} from "../resume/resume.ts";
import type { CliDecrypt } from "./_input.ts";
import { InputError, statOrNull } from "./_util.ts";

/** The answer of `latest`. */
export interface LatestResult {
  /** The folder holding the `rank_*` folders. */
  root: string;
  /** How many rank folders there are. */
  ranks: number;
  /** How the candidates were listed: from `meta.json`, or by file time. */
  source: "meta.json" | "mtime";
  /**
   * The pick: the (epoch, step), whether it is a breakpoint, and the file of
   * each rank (index = rank).
   */
  pick: { epoch: number; step: number; breakpoint: boolean; files: string[] };
  /** Where training resumes, read from rank 0's file. */
  context: ResumeContext;
  /** Newer candidates passed over, and why. */
  skipped: SkippedCheckpoint[];
  /** Problems that did not stop the search (a malformed `meta.json`, …). */
  warnings: string[];
}

/**
 * Works out what a resume would pick under `dir` (a training output
 * folder, or its `checkpoint` folder).
 *
 * @param dir The folder to look in.
 * @param decrypt The key (and cipher) of encrypted checkpoints.
 * @returns The pick, the resume context, and what was skipped and why.
 * @throws {InputError} When `dir` is not a folder or holds no checkpoint.
 * @throws {CorruptCheckpointError} When checkpoints exist but none
 *   verifies for every rank (the message, on one line, says why).
 */
export async function latest(
  dir: string,
  decrypt: CliDecrypt = {},
): Promise<LatestResult> {
  const info = await statOrNull(dir);
  if (info === null) {
    throw new InputError(`${JSON.stringify(dir)} does not exist`);
  }
  if (info.kind !== "directory") {
    throw new InputError(
      `${JSON.stringify(dir)} is a file; latest takes a training output folder`,
    );
  }
  let found;
  try {
    found = await findResumeCheckpoint(dir, decrypt);
  } catch (e) {
    if (e instanceof CorruptCheckpointError) {
      // One line: the reasons, separated by "; ".
      const one = new CorruptCheckpointError(e.path, _oneLine(e.reason), {
        cause: e,
      });
      one.message = _oneLine(e.message);
      throw one;
    }
    throw e;
  }
  if (found === null) {
    throw new InputError(
      `${
        JSON.stringify(dir)
      } holds no checkpoint/rank_N folders with a checkpoint: nothing to resume`,
    );
  }
  return {
    root: found.root,
    ranks: found.files.length,
    source: found.source,
    pick: {
      epoch: found.epoch,
      step: found.step,
      breakpoint: found.breakpoint === true,
      files: [...found.files],
    },
    context: found.context,
    skipped: [...found.skipped],
    warnings: [...found.warnings],
  };
}

/**
 * Renders a {@linkcode LatestResult} as plain text.
 *
 * @param r The result.
 * @returns Lines of text.
 */
export function formatLatest(r: LatestResult): string {
  const c = r.context;
  const lines = [
    `checkpoint folder: ${r.root} (${r.ranks} rank${r.ranks === 1 ? "" : "s"})`,
    `resume from: epoch ${r.pick.epoch}, step ${r.pick.step}${
      r.pick.breakpoint
        ? " (a breakpoint, saved when the loop threw after the last regular save)"
        : ""
    }`,
  ];
  for (const [rank, f] of r.pick.files.entries()) {
    lines.push(`  rank ${rank}: ${f}`);
  }
  const opt = (x: number | null) => x === null ? "-" : String(x);
  lines.push(
    `resume context: initialStep ${c.initialStep}, initialEpoch ${c.initialEpoch} (epoch_num ${c.epochNum}, step_num ${c.stepNum}, global_step ${
      opt(c.globalStep)
    }, loss_scale ${opt(c.lossScale)}, global_batch_size ${
      opt(c.globalBatchSize)
    }, step scale ${c.stepScale})`,
    "why:",
    r.source === "meta.json"
      ? "  the newest (epoch, step) every rank has, no newer than the oldest rank's last in meta.json (or a breakpoint written after it), whose files verify"
      : "  no meta.json: the newest file (by time) every rank has that verifies",
  );
  for (const s of r.skipped) {
    lines.push(`  skipped rank ${s.rank} ${s.file} (${s.kind}): ${s.reason}`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join("\n");
}

/** `"head:\n  a\n  b"` as `"head: a; b"`. */
function _oneLine(text: string): string {
  const [head, ...rest] = text.split("\n").map((l) => l.trim());
  return rest.length === 0 ? head! : `${head} ${rest.join("; ")}`;
}
