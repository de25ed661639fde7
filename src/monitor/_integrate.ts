// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: a monitor's `integratedSave` across ranks. Once every rank has
// committed a step (its `meta.json` lists the file), one process assembles
// the whole tensors into `checkpoint/integrated/`.

import { type MergeInput, mergeSlices } from "../resume/_merge.ts";
import type { EncMode } from "../crypto/cipher.ts";
import type { MergeSlicedResult } from "../resume/merge.ts";
import {
  type CommittedCheckpoint,
  planRetention,
  type RetentionRemoval,
} from "./retention.ts";
import { readMeta } from "../checkpoint/_meta.ts";
import {
  basenamePath,
  type CheckpointStore,
  joinPath,
} from "../store/store.ts";
import { writeMeta } from "./_commit.ts";
import type {
  CheckpointLayout,
  CheckpointMeta,
  CheckpointMetaFile,
  CheckpointMetaSource,
} from "../checkpoint/layout.ts";

/** The step to integrate and the settings that apply. */
export interface IntegrateRequest {
  readonly store: CheckpointStore;
  readonly layout: CheckpointLayout;
  readonly rankSize: number;
  readonly epoch: number;
  readonly stepInEpoch: number;
  readonly step: number;
  readonly keepCheckpointMax: number;
  readonly keepCheckpointPerNMinutes: number;
  readonly encKey?: Uint8Array;
  readonly encMode: EncMode;
}

/** What an integration did: the merged file, and what retention removes. */
export interface IntegrateOutcome {
  readonly result: MergeSlicedResult;
  /** Files to delete now that `meta.json` no longer lists them. */
  readonly remove: readonly RetentionRemoval[];
}

/** `integrated/meta.json`: a rank folder's, for all ranks at once. */
interface IntegratedMeta extends Omit<CheckpointMeta, "rank" | "step_num"> {
  /** How many ranks each file was assembled from. */
  readonly ranks: number;
}

interface Kept extends CommittedCheckpoint {
  readonly meta: CheckpointMetaFile;
}

function sameSources(
  a: readonly CheckpointMetaSource[] | undefined,
  b: readonly CheckpointMetaSource[],
): boolean {
  return a !== undefined && a.length === b.length &&
    a.every((s, i) => s.name === b[i]!.name && s.checksum === b[i]!.checksum);
}

/**
 * Integrates step (`epoch`, `stepInEpoch`) if every rank `0..rankSize-1` of
 * this run (the same collision suffix) lists it in its `meta.json`, and no
 * process has integrated it yet. Processes take turns through an exclusive
 * `flock` on `integrated/.lock`, which the kernel releases when a process
 * dies, so a crash never leaves the folder locked. Under the lock:
 * leftovers of a crashed merge are removed, the rank files are merged into
 * `integrated/{P}-{E}_{S}.{ext}`, then `integrated/meta.json` is replaced,
 * listing it (with the rank files it came from) and what retention keeps.
 *
 * @returns What was written, or `null` when the step is not ready (a rank
 * has not committed it) or was integrated already.
 */
export async function integrateStep(
  request: IntegrateRequest,
): Promise<IntegrateOutcome | null> {
  const { store, layout, epoch, stepInEpoch, step } = request;
  const root = joinPath(layout.directory, "checkpoint");
  const inputs: MergeInput[] = [];
  const sources: CheckpointMetaSource[] = [];
  for (let rank = 0; rank < request.rankSize; rank++) {
    const folder = joinPath(root, `rank_${rank}`);
    const read = await readMeta(joinPath(folder, "meta.json"), store);
    if (read.kind !== "ok") return null;
    // Another run's meta.json (another collision suffix) may list the same
    // step: its files must not be mixed with this run's.
    if (read.meta.prefix !== layout.prefixOfRank(rank)) return null;
    const entry = read.meta.files?.find((f) =>
      f.epoch === epoch && f.step === stepInEpoch && f.global_step === step
    );
    if (entry === undefined) return null;
    inputs.push({
      file: joinPath(folder, entry.name),
      slices: entry.slices ?? {},
      recorded: { bytes: entry.bytes, checksum: entry.checksum },
    });
    sources.push({ name: entry.name, checksum: entry.checksum });
  }

  const dir = layout.integratedDir;
  await store.ensureDir(dir);
  const lock = await store.lock(joinPath(dir, ".lock"));
  try {
    const target = layout.integratedFile(epoch, stepInEpoch);
    const name = basenamePath(target);
    const metaPath = joinPath(dir, "meta.json");
    const read = await readMeta(metaPath, store);
    // Only this run's files: an earlier run's stay, as in the rank folders.
    const prior = read.kind === "ok"
      ? (read.meta.files ?? []).filter((f) => {
        const p = `${layout.integratedPrefix}-`;
        return f.name.startsWith(p) &&
          /^[0-9]+_[0-9]+\.[a-z]+$/.test(f.name.slice(p.length));
      })
      : [];
    if (sameSources(prior.find((f) => f.name === name)?.sources, sources)) {
      return null;
    }
    // No other process writes here while the lock is held.
    await store.removeIncomplete(dir);
    const { encKey, encMode } = request;
    const cipher = encKey === undefined ? {} : { encKey, encMode };
    const result = await mergeSlices(inputs, target, {
      read: {
        store,
        ...(encKey === undefined ? {} : { decKey: encKey, decMode: encMode }),
      },
      write: { store, format: layout.extension, ...cipher },
    });

    const time = Date.now();
    const committed: Kept[] = prior
      .filter((f) => f.name !== name)
      .map((f) => ({
        file: joinPath(dir, f.name),
        time: f.time ?? 0,
        meta: f,
      }));
    const previousSaveTime = committed.at(-1)?.time ?? -Infinity;
    committed.push({
      file: target,
      time,
      meta: {
        name,
        bytes: result.bytes,
        checksum: result.checksum,
        epoch,
        step: stepInEpoch,
        global_step: step,
        sources,
        time,
      },
    });
    // Merges may finish out of step order: retention goes by step.
    committed.sort((a, b) => a.meta.global_step - b.meta.global_step);
    const decision = planRetention(committed, {
      keepCheckpointMax: request.keepCheckpointMax,
      keepCheckpointPerNMinutes: request.keepCheckpointPerNMinutes,
      previousSaveTime,
    });
    const newest = (decision.keep.at(-1) as Kept).meta;
    const meta: IntegratedMeta = {
      last_epoch: newest.epoch,
      last_step: newest.step,
      last_ckpt_file: newest.name,
      global_step: newest.global_step,
      format: layout.extension,
      enc_mode: encKey === undefined ? null : encMode,
      prefix: layout.integratedPrefix,
      ranks: request.rankSize,
      files: decision.keep.map((c) => (c as Kept).meta),
    };
    await writeMeta(store, metaPath, meta);
    return { result, remove: decision.remove };
  } finally {
    await lock?.release();
  }
}
