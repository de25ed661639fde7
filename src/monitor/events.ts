/**
 * What a {@linkcode CheckpointMonitor} reports: the details carried by its
 * `saved`, `removed` and `error` events and passed to its hooks.
 *
 * @module
 */

/**
 * Which file a save wrote; `"integrated"` is the whole-tensor file of
 * `checkpoint/integrated/` assembled from every rank's slices.
 */
export type CheckpointKind =
  | "main"
  | "network"
  | "trainable"
  | "breakpoint"
  | "integrated";

/**
 * A committed checkpoint file: the detail of a `saved` event and the
 * argument of the `onSaved` hook.
 *
 * @example
 * ```ts
 * import type { CheckpointSavedDetail } from "@ckpt/monitor";
 * const d: CheckpointSavedDetail = {
 *   file: "output/checkpoint/rank_0/CKP_rank_0-1_1.ckpt",
 *   kind: "main",
 *   bytes: 1024,
 *   checksum: "0",
 *   durationMs: 3.2,
 *   step: 1,
 *   epoch: 1,
 * };
 * ```
 */
export interface CheckpointSavedDetail {
  /** The file's path. */
  readonly file: string;
  /** Which file it is. */
  readonly kind: CheckpointKind;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Its checksum, as the format layer computes it. */
  readonly checksum: string;
  /** How long the save took, in milliseconds of the monitor's clock. */
  readonly durationMs: number;
  /** The global step it holds. */
  readonly step: number;
  /** The epoch it holds. */
  readonly epoch: number;
  /**
   * With `asyncSave`: milliseconds the save waited for the previous
   * background save (back-pressure): for its bytes to be written before
   * the copy could reuse their memory, and for its end before this one
   * could start.
   */
  readonly waitedMs?: number;
}

/**
 * A checkpoint deleted by retention: the detail of a `removed` event and the
 * argument of the `onRemoved` hook.
 *
 * @example
 * ```ts
 * import type { CheckpointRemovedDetail } from "@ckpt/monitor";
 * const d: CheckpointRemovedDetail = {
 *   file: "output/checkpoint/rank_0/CKP_rank_0-1_1.ckpt",
 *   reason: "keepCheckpointMax 5: 5 newer checkpoints are kept",
 * };
 * ```
 */
export interface CheckpointRemovedDetail {
  /** The file's path. */
  readonly file: string;
  /** Which retention rule removed it, in words. */
  readonly reason: string;
}

/**
 * A failed save or removal: the detail of an `error` event and the argument
 * of the `onError` hook. A failed save also rejects the call that made it.
 *
 * @example
 * ```ts
 * import type { CheckpointErrorDetail } from "@ckpt/monitor";
 * const d: CheckpointErrorDetail = { error: new Error("disk full"), file: "x.ckpt" };
 * ```
 */
export interface CheckpointErrorDetail {
  /** What went wrong. */
  readonly error: unknown;
  /** The file being written or removed. */
  readonly file: string;
}

/** The events of a {@linkcode CheckpointMonitor}, by type. */
export interface CheckpointMonitorEventMap {
  /**
   * A file was committed; for a main file, after `meta.json` names it.
   */
  saved: CustomEvent<CheckpointSavedDetail>;
  /** Retention removed a file. */
  removed: CustomEvent<CheckpointRemovedDetail>;
  /** A save or a removal failed. */
  error: CustomEvent<CheckpointErrorDetail>;
}
