// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the commit of a main checkpoint. One function writes every
// `meta.json` (a rank folder's and the integrated folder's); a ledger keeps
// the files a run committed and decides, with the pure retention policy,
// what `meta.json` lists and what goes.

import { basenamePath, type CheckpointStore } from "../store/store.ts";
import type {
  CheckpointMeta,
  CheckpointMetaFile,
} from "../checkpoint/layout.ts";
import type { SaveResult } from "../checkpoint/checkpoint.ts";
import {
  type CommittedCheckpoint,
  planRetention,
  type RetentionRemoval,
} from "./retention.ts";
import type { SavePlan } from "./_plan.ts";

/**
 * Replaces a `meta.json` atomically (pretty-printed, mode 0600): the one
 * place that writes one.
 */
export async function writeMeta(
  store: CheckpointStore,
  path: string,
  meta: object,
): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(meta, null, 2) + "\n");
  await store.write(path, (sink) => sink.write(bytes), { fileMode: 0o600 });
}

/** A committed main checkpoint; `meta` is absent for an earlier run's file. */
export interface LedgerEntry extends CommittedCheckpoint {
  readonly meta?: CheckpointMetaFile;
}

/** What does not change from one commit to the next. */
export interface LedgerSettings {
  readonly keepCheckpointMax: number;
  readonly keepCheckpointPerNMinutes: number;
  readonly rankSize: number | undefined;
  readonly rank: number;
  readonly prefix: string;
  readonly format: CheckpointMeta["format"];
  readonly encMode: string | null;
}

/** What one commit decided: the new `meta.json` and the files to remove. */
export interface CommitDecision {
  readonly meta: CheckpointMeta;
  readonly remove: readonly RetentionRemoval[];
  /** Makes the decision the ledger's state, once `meta.json` is written. */
  accept(): void;
}

/** The main checkpoints a run committed (and, by choice, earlier runs'). */
export class Ledger {
  #settings: LedgerSettings;
  #entries: LedgerEntry[];
  #previousSaveTime: number;

  /**
   * @param earlier Files of earlier runs that retention may remove too
   * (`retentionScope: "prefix"`), oldest first; never listed in `meta.json`.
   */
  constructor(
    settings: LedgerSettings,
    startTime: number,
    earlier: readonly LedgerEntry[] = [],
  ) {
    this.#settings = settings;
    this.#entries = [...earlier];
    this.#previousSaveTime = startTime;
  }

  /** This run's kept files, oldest first. */
  get files(): string[] {
    return this.#entries.filter((e) => e.meta !== undefined).map((e) => e.file);
  }

  /** Decides the commit of a main file written for `plan` at `now`. */
  commit(plan: SavePlan, result: SaveResult, now: number): CommitDecision {
    const s = this.#settings;
    const name = basenamePath(result.path);
    const slices = plan.files[0]?.slices;
    const entry: LedgerEntry = {
      file: result.path,
      time: now,
      meta: {
        name,
        bytes: result.bytes,
        checksum: result.checksum,
        epoch: plan.epoch,
        step: plan.stepInEpoch,
        global_step: plan.step,
        ...(s.rankSize !== undefined && { rank_size: s.rankSize }),
        ...(slices && { slices }),
      },
    };
    // Committed on disk: a candidate for retention even when the
    // `meta.json` update below fails.
    this.#entries.push(entry);
    const decision = planRetention(this.#entries, {
      keepCheckpointMax: s.keepCheckpointMax,
      keepCheckpointPerNMinutes: s.keepCheckpointPerNMinutes,
      previousSaveTime: this.#previousSaveTime,
    });
    const keep = decision.keep as LedgerEntry[];
    const meta: CheckpointMeta = {
      last_epoch: plan.epoch,
      last_step: plan.stepInEpoch,
      last_ckpt_file: name,
      global_step: plan.step,
      step_num: plan.stepNum,
      format: s.format,
      enc_mode: s.encMode,
      prefix: s.prefix,
      rank: s.rank,
      files: keep.flatMap((c) => c.meta === undefined ? [] : [c.meta]),
    };
    return {
      meta,
      remove: decision.remove,
      accept: () => {
        this.#entries = keep;
        this.#previousSaveTime = now;
      },
    };
  }
}
