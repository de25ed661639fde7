/**
 * What to keep: the original's two retention rules as a pure policy over
 * the checkpoints one monitor committed. It returns a decision with reasons
 * and never touches the disk.
 *
 * @module
 */

/** A main checkpoint a monitor committed. */
export interface CommittedCheckpoint {
  /** The file (a path or a name; only compared, never opened). */
  readonly file: string;
  /** The clock reading at its commit, in milliseconds. */
  readonly time: number;
}

/** Options of {@linkcode planRetention}. */
export interface RetentionOptions {
  /**
   * Keep at most this many checkpoints; 0 turns the rule off.
   *
   * @default {0}
   */
  readonly keepCheckpointMax?: number;
  /**
   * Keep one checkpoint per this many minutes; used only when
   * `keepCheckpointMax` is 0; 0 turns the rule off.
   *
   * @default {0}
   */
  readonly keepCheckpointPerNMinutes?: number;
  /**
   * The clock reading of the previous save (or of the monitor's
   * construction, before the first), in milliseconds.
   *
   * @default {-Infinity}
   */
  readonly previousSaveTime?: number;
}

/** A checkpoint to delete, and why. */
export interface RetentionRemoval {
  /** The checkpoint. */
  readonly checkpoint: CommittedCheckpoint;
  /** The rule that removes it, in words. */
  readonly reason: string;
}

/** What {@linkcode planRetention} decided. */
export interface RetentionDecision {
  /** The checkpoints to keep, oldest first. */
  readonly keep: readonly CommittedCheckpoint[];
  /** The checkpoints to delete, oldest first. */
  readonly remove: readonly RetentionRemoval[];
}

/**
 * Decides which of a monitor's committed main checkpoints to delete after a
 * new one was committed. The input holds only files this monitor committed
 * (its prefix, its run), in commit order with the new one last, so
 * breakpoint files, other prefixes, earlier runs and foreign files are
 * never candidates. The new checkpoint is always kept.
 *
 * - `keepCheckpointMax = K`: the oldest go until K remain.
 * - `keepCheckpointPerNMinutes = M` (the original's rule): if the previous
 *   save was less than M minutes before the new one, then among the older
 *   checkpoints committed less than M minutes before the new one, only the
 *   oldest (strictly older than the new one) is kept. Checkpoints older than
 *   M minutes are never deleted.
 *
 * @param checkpoints The committed checkpoints, oldest first, the new one last.
 * @param options The rules.
 * @returns What to keep and what to delete, with reasons.
 *
 * @example Keep the newest 2
 * ```ts
 * import { planRetention } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 * const files = [1, 2, 3].map((i) => ({ file: `CKP_rank_0-1_${i}.ckpt`, time: i }));
 * const plan = planRetention(files, { keepCheckpointMax: 2 });
 * deepEqual(plan.remove.map((r) => r.checkpoint.file), ["CKP_rank_0-1_1.ckpt"]);
 * ```
 */
export function planRetention(
  checkpoints: readonly CommittedCheckpoint[],
  options: RetentionOptions = {},
): RetentionDecision {
  const keepMax = options.keepCheckpointMax ?? 0;
  const perN = options.keepCheckpointPerNMinutes ?? 0;
  const newest = checkpoints[checkpoints.length - 1];
  const remove: RetentionRemoval[] = [];
  if (newest === undefined) return { keep: [], remove };
  if (keepMax > 0) {
    const excess = checkpoints.length - keepMax;
    for (let i = 0; i < excess; i++) {
      remove.push({
        checkpoint: checkpoints[i]!,
        reason:
          `keepCheckpointMax ${keepMax}: ${keepMax} newer checkpoints are kept`,
      });
    }
  } else if (perN > 0) {
    const now = newest.time;
    const windowMs = perN * 60_000;
    if (now - (options.previousSaveTime ?? -Infinity) < windowMs) {
      const window = checkpoints.slice(0, -1).filter((c) =>
        now - c.time < windowMs
      );
      let kept: CommittedCheckpoint | undefined;
      for (const c of window) {
        if (c.time < now && (kept === undefined || c.time < kept.time)) {
          kept = c;
        }
      }
      for (const c of window) {
        if (c === kept) continue;
        remove.push({
          checkpoint: c,
          reason: kept === undefined
            ? `keepCheckpointPerNMinutes ${perN}: no checkpoint of the last ${perN} minutes is older than the new one`
            : `keepCheckpointPerNMinutes ${perN}: ${kept.file} is kept for the last ${perN} minutes`,
        });
      }
    }
  }
  const gone = new Set(remove.map((r) => r.checkpoint));
  return { keep: checkpoints.filter((c) => !gone.has(c)), remove };
}
