// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: a monitor's disk work outside the saves themselves, all through
// its store: preparing the run (folders, the rank folder's lock, leftovers
// of crashed writers, the collision suffix, earlier runs' files), and
// making sure a save's folders exist.

import {
  basenamePath,
  type CheckpointStore,
  dirnamePath,
  isNotFound,
  isPermissionError,
  joinPath,
  type StoreLock,
} from "../store/store.ts";
import type { CheckpointFormat } from "../checkpoint/checkpoint.ts";
import { CheckpointLayout } from "../checkpoint/layout.ts";
import type { LedgerEntry } from "./_commit.ts";

/**
 * The lock file of a rank folder, held by the one monitor writing there:
 * `checkpoint/.rank_R.lock`, beside the folder (so that the folder holds
 * only checkpoints, and deleting it does not free the lock).
 */
export function lockPath(rankFolder: string): string {
  return joinPath(dirnamePath(rankFolder), `.${basenamePath(rankFolder)}.lock`);
}

/** What a run needs to know before it saves. */
export interface PrepareRequest {
  readonly store: CheckpointStore;
  readonly directory: string;
  readonly prefix: string;
  readonly rank: number;
  readonly format: CheckpointFormat;
  /** Who takes the lock, for the error a second writer sees. */
  readonly owner: string;
  /** Which of the network and trainable folders the run writes. */
  readonly extraFolders: {
    readonly network: boolean;
    readonly trainable: boolean;
  };
  /** Whether earlier runs' main files are retention candidates. */
  readonly acrossRuns: boolean;
  /** The clock reading now (earlier files' times are mapped onto it). */
  readonly now: number;
}

/** A prepared run. */
export interface PreparedRun {
  readonly layout: CheckpointLayout;
  readonly lock: StoreLock;
  /** Earlier runs' main files, oldest first (with `acrossRuns`). */
  readonly earlier: LedgerEntry[];
}

/**
 * Prepares a run: checks `directory` is a folder, creates the rank folder,
 * takes its lock (a second writer is refused with the holder's name),
 * removes what crashed writers of this prefix left (their writer is gone:
 * the lock says no other monitor writes here) and what a merge killed
 * mid-upload left in `integrated/` (only when no merge is running), and
 * resolves the collision suffix against every folder the run writes.
 */
export async function prepareRun(r: PrepareRequest): Promise<PreparedRun> {
  const { store } = r;
  const base = new CheckpointLayout(r.directory, {
    prefix: r.prefix,
    rank: r.rank,
    format: r.format,
  });
  await store.ensureDir(r.directory);
  await store.ensureDir(base.checkpointDir);
  const lock = await lockRankFolder(store, base.checkpointDir, r.owner);
  try {
    // Every folder of the first save exists before it, so that a background
    // save can start (and copy) at the step end's call.
    if (r.extraFolders.network) await store.ensureDir(base.networkDir);
    if (r.extraFolders.trainable) await store.ensureDir(base.trainableDir);
    const folders = [base.checkpointDir, base.networkDir, base.trainableDir];
    const names: string[] = [];
    for (const dir of folders) {
      names.push(...await listNames(store, dir));
      await store.removeIncomplete(dir, {
        prefixes: [base.basePrefix, "meta.json"],
      });
    }
    // Integrated files carry the prefix without the rank: count them as
    // this rank's so that one suffix serves every folder of the run.
    const userPrefix = base.basePrefix.slice(0, -`_rank_${r.rank}`.length);
    const integrated = await store.list(base.integratedDir);
    for (const { name } of integrated ?? []) {
      if (name.startsWith(userPrefix)) {
        names.push(base.basePrefix + name.slice(userPrefix.length));
      }
    }
    if (integrated !== null) {
      await removeMergeLeftovers(store, base.integratedDir);
    }
    const layout = new CheckpointLayout(r.directory, {
      prefix: r.prefix,
      rank: r.rank,
      format: r.format,
      names,
    });
    const earlier = r.acrossRuns ? await earlierRuns(store, layout, r.now) : [];
    return { layout, lock, earlier };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/**
 * Removes the incomplete writes (S3 multipart uploads, local temporary
 * files) a merge killed mid-upload left in `integrated/`, which otherwise
 * only the next merge removes. Only under the merge's lock, taken without
 * waiting: when a merge holds it (its upload is live) nothing is touched
 * and start-up goes on at once; the lock is held only for the cleanup and
 * released on every path (a holder killed meanwhile leaves a claim whose
 * lease runs out, as a killed merge does).
 */
export async function removeMergeLeftovers(
  store: CheckpointStore,
  integratedDir: string,
): Promise<void> {
  let lock: StoreLock | null;
  try {
    lock = await store.lock(joinPath(integratedDir, ".lock"), { wait: false });
  } catch (error) {
    // The folder went meanwhile (nothing to clean), or this run may not
    // write there: the next merge cleans up, as before.
    if (isNotFound(error) || isPermissionError(error)) return;
    throw error;
  }
  if (lock === null) return;
  try {
    await store.removeIncomplete(integratedDir);
  } finally {
    await lock.release();
  }
}

/**
 * Takes the rank folder's lock for the monitor's lifetime, or throws naming
 * the writer that holds it.
 */
export async function lockRankFolder(
  store: CheckpointStore,
  folder: string,
  owner: string,
): Promise<StoreLock> {
  const path = lockPath(folder);
  const lock = await store.lock(path, { wait: false, owner });
  if (lock !== null) return lock;
  let holder = "another writer";
  try {
    const text = new TextDecoder().decode(await store.readFile(path, 4096))
      .trim();
    if (text !== "") holder = text;
  } catch { /* the holder is named when its record can be read */ }
  throw new Error(
    `Cannot save checkpoints to "${folder}": ${holder} is writing there (it holds ${path}); two writers on one rank folder would replace and delete each other's files. Stop the other run, or give this one another directory or rank`,
  );
}

/**
 * Makes sure the folders of a save exist (a folder deleted mid-run is
 * created again); returns whether the lock's folder went with them (the
 * lock with it), so that the lock can be taken again.
 */
export async function ensureFolders(
  store: CheckpointStore,
  folders: Iterable<string>,
  rankFolder: string,
): Promise<boolean> {
  const lockFolder = dirnamePath(lockPath(rankFolder));
  const lost = (await store.stat(lockFolder))?.kind !== "directory";
  for (const dir of new Set(folders)) await store.ensureDir(dir);
  return lost;
}

/** Every name in a folder, whatever it is (a link or a folder counts). */
export async function listNames(
  store: CheckpointStore,
  dir: string,
): Promise<string[]> {
  return (await store.list(dir) ?? []).map((e) => e.name);
}

/** Earlier runs' main files of this prefix family, oldest run first. */
async function earlierRuns(
  store: CheckpointStore,
  layout: CheckpointLayout,
  now: number,
): Promise<LedgerEntry[]> {
  const suffixOf = (prefix: string): number => {
    const rest = prefix.slice(layout.basePrefix.length);
    return rest === "" ? 0 : Number(rest.slice(1));
  };
  const ours = suffixOf(layout.prefix);
  const escaped = layout.basePrefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(
    `^${escaped}(?:_([0-9]+))?-([0-9]+)_([0-9]+)\\.(?:ckpt|safetensors)$`,
  );
  const found: { entry: LedgerEntry; key: number[] }[] = [];
  for (const name of await listNames(store, layout.checkpointDir)) {
    const m = pattern.exec(name);
    if (m === null) continue;
    const suffix = m[1] === undefined ? 0 : Number(m[1]);
    if (suffix >= ours) continue;
    const file = joinPath(layout.checkpointDir, name);
    const info = await store.stat(file);
    if (info === null || info.kind !== "file") continue;
    const age = info.mtimeMs === null ? Infinity : Date.now() - info.mtimeMs;
    found.push({
      entry: { file, time: now - age },
      key: [suffix, Number(m[2]), Number(m[3])],
    });
  }
  found.sort((a, b) =>
    a.key[0]! - b.key[0]! || a.key[1]! - b.key[1]! || a.key[2]! - b.key[2]!
  );
  return found.map((f) => f.entry);
}
