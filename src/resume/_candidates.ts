// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the steps of findResumeCheckpoint before any file is verified.
// `gather` lists what is in the rank folders (the only I/O here), `order`
// turns that into the steps to try, newest first (pure), and
// `explainNothing` says why nothing verified (pure).

import { CorruptCheckpointError } from "../core/errors.ts";
import { type MetaRead, readMeta } from "../checkpoint/_meta.ts";
import { isTempFileName } from "../store/temp_files.ts";
import {
  type CheckpointStore,
  isNotFound,
  joinPath as join,
} from "../store/store.ts";
import type { ParameterSlice } from "../tensor/types.ts";
import type { VerifyFailureKind } from "../checkpoint/verify.ts";

/** One candidate file of one rank. */
export interface Candidate {
  readonly name: string;
  readonly epoch: number;
  readonly step: number;
  /** A `_breakpoint.ckpt` file (written on an exception, not in meta.json). */
  readonly breakpoint: boolean;
  /** Last modification (ms), 0 when unknown. */
  readonly mtime: number;
  readonly bytes?: number;
  readonly checksum?: string;
  readonly globalStep?: number;
  /** The slice layout `meta.json` records for it. */
  readonly slices?: Readonly<Record<string, ParameterSlice>>;
  /** The number of ranks of the run that wrote it, when recorded. */
  readonly rankSize?: number;
}

/** What one rank folder holds. */
export interface RankScan {
  readonly folder: string;
  /** Its `meta.json`, read and checked. */
  readonly meta: MetaRead;
  /** When `meta.json` was last written (ms), or `null`. */
  readonly metaMtime: number | null;
  /** Every regular file named like a checkpoint, main or breakpoint. */
  readonly onDisk: readonly Candidate[];
  /** Files named `*.ckpt` / `*.safetensors` that cannot be candidates, and why. */
  readonly strays: readonly Stray[];
  /**
   * The folder does not exist while a higher rank's does (the rank was
   * killed before it made its folder): a rank with no checkpoint.
   */
  readonly absent?: boolean;
}

/** A file named like a checkpoint that cannot be one. */
export interface Stray {
  readonly name: string;
  readonly why: string;
}

/** What {@linkcode gather} found. */
export interface Gathered {
  /** The folder holding `rank_*`. */
  readonly root: string;
  /** One per rank folder, index = rank. */
  readonly ranks: readonly RankScan[];
  /**
   * Without rank folders: checkpoint-named files right in the folder given
   * (a rank folder passed instead of the monitor's `directory`).
   */
  readonly loose: readonly string[];
}

/** A step to try: one file per rank of the run that wrote it. */
export interface Step {
  readonly epoch: number;
  readonly step: number;
  readonly breakpoint: boolean;
  /** Index = rank. */
  readonly files: readonly Candidate[];
}

/** What {@linkcode order} makes of a {@linkcode Gathered}. */
export interface Ordered {
  /** The steps to try, newest first. */
  readonly steps: readonly Step[];
  /** How the candidates were listed. */
  readonly source: "meta.json" | "mtime";
  readonly warnings: readonly string[];
  /** Whether any rank has a candidate or a `meta.json` at all. */
  readonly anything: boolean;
}

/** A candidate that was passed over (see `SkippedCheckpoint`). */
export interface Skip {
  readonly rank: number;
  readonly file: string;
  readonly kind: VerifyFailureKind | "model";
  readonly reason: string;
  /** The error behind it, when there was one. */
  readonly error?: unknown;
}

/** The most rank folders resume looks at (a bound on a stray `rank_N`). */
const MAX_RANKS = 65536;
const NAME = /^(.+)-([0-9]+)_([0-9]+)(_breakpoint)?\.(ckpt|safetensors)$/;
const CHECKPOINT_EXT = /\.(ckpt|safetensors)$/;

/**
 * A {@linkcode CorruptCheckpointError} about the folder resumed from, not a
 * file: "Cannot resume from …". Catch it as `CorruptCheckpointError`.
 */
export class ResumeError extends CorruptCheckpointError {
  constructor(root: string, reason: string) {
    super(root, reason);
    this.message = `Cannot resume from "${root}": ${reason}`;
  }
}

function keyOf(c: Pick<Candidate, "epoch" | "step" | "breakpoint">): string {
  return `${c.epoch}_${c.step}${c.breakpoint ? "_breakpoint" : ""}`;
}

/**
 * Lists `rank_N` of `root`: how many (the highest N plus one, 0 without
 * any), and which of `rank_0` … below the highest do not exist. A missing
 * one is a rank killed before it made its folder (a local `mkdir`, an S3
 * folder marker): resume treats it as a rank folder with no checkpoint.
 */
async function rankFolders(
  store: CheckpointStore,
  root: string,
): Promise<{ count: number; absent: ReadonlySet<number> }> {
  const ranks = new Set<number>();
  for (const e of await store.list(root) ?? []) {
    const m = /^rank_([0-9]+)$/.exec(e.name);
    if (m === null) continue;
    if (e.kind !== "directory") {
      throw new ResumeError(
        root,
        `${e.name} is not a folder (a link to nothing, or a file): every rank_N must be a folder`,
      );
    }
    ranks.add(Number(m[1]));
  }
  const count = ranks.size === 0 ? 0 : Math.max(...ranks) + 1;
  if (count > MAX_RANKS) {
    throw new ResumeError(
      root,
      `found rank_${count - 1}: rank folders must be rank_0 to rank_${
        MAX_RANKS - 1
      }`,
    );
  }
  const absent = new Set<number>();
  for (let r = 0; r < count; r++) if (!ranks.has(r)) absent.add(r);
  return { count, absent };
}

/** The mtime of `path`, `null` when it is gone. */
async function mtimeOf(
  store: CheckpointStore,
  path: string,
): Promise<number | null> {
  try {
    const info = await store.stat(path);
    return info === null ? null : info.mtimeMs ?? 0;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** The checkpoint-named files of a folder, and the ones that cannot be. */
async function scan(
  store: CheckpointStore,
  folder: string,
): Promise<{ onDisk: Candidate[]; strays: Stray[] }> {
  const onDisk: Candidate[] = [];
  const strays: Stray[] = [];
  for (const e of await store.list(folder) ?? []) {
    if (isTempFileName(e.name) || !CHECKPOINT_EXT.test(e.name)) continue;
    const m = NAME.exec(e.name);
    if (m === null) {
      if (e.kind === "file") {
        strays.push({
          name: e.name,
          why: "it is not named {prefix}-{epoch}_{step}.{ckpt|safetensors}",
        });
      }
      continue;
    }
    if (e.kind !== "file") {
      strays.push({
        name: e.name,
        why: `it is not a regular file (${
          e.kind === "directory" ? "a folder" : "a link to nothing, a FIFO, …"
        })`,
      });
      continue;
    }
    const mtime = await mtimeOf(store, join(folder, e.name));
    if (mtime === null) continue; // Removed since the listing.
    onDisk.push({
      name: e.name,
      epoch: Number(m[2]),
      step: Number(m[3]),
      breakpoint: m[4] !== undefined,
      mtime,
    });
  }
  return { onDisk, strays };
}

/**
 * Lists what the rank folders under `directory` (or `directory/checkpoint`)
 * hold: each rank's `meta.json` and its checkpoint-named files. Rank folders
 * and files that are symbolic links are followed (the monitor writes
 * through them).
 *
 * A `rank_N` missing below the highest is a rank with no checkpoint, the
 * same as a rank folder that holds none.
 *
 * @throws {ResumeError} When a `rank_N` is not a folder.
 */
export async function gather(
  store: CheckpointStore,
  directory: string,
): Promise<Gathered> {
  let root = join(directory, "checkpoint");
  let { count, absent } = await rankFolders(store, root);
  if (count === 0) {
    const here = await rankFolders(store, directory);
    if (here.count > 0) {
      root = directory;
      ({ count, absent } = here);
    }
  }
  if (count === 0) {
    // A rank folder given instead of the monitor's directory?
    const loose: string[] = [];
    for (const dir of [directory, root]) {
      const { onDisk } = await scan(store, dir);
      for (const c of onDisk) loose.push(join(dir, c.name));
    }
    return { root, ranks: [], loose };
  }
  const ranks: RankScan[] = [];
  for (let rank = 0; rank < count; rank++) {
    const folder = join(root, `rank_${rank}`);
    if (absent.has(rank)) {
      const meta: MetaRead = { kind: "missing" };
      ranks.push({
        folder,
        meta,
        metaMtime: null,
        onDisk: [],
        strays: [],
        absent: true,
      });
      continue;
    }
    const metaPath = join(folder, "meta.json");
    const meta = await readMeta(metaPath, store);
    const metaMtime = meta.kind === "ok"
      ? await mtimeOf(store, metaPath)
      : null;
    ranks.push({ folder, meta, metaMtime, ...await scan(store, folder) });
  }
  return { root, ranks, loose: [] };
}

/** The candidates of one rank, by key. */
function candidatesOf(
  scan: RankScan,
  rank: number,
  warnings: string[],
): Map<string, Candidate> {
  const byKey = new Map<string, Candidate>();
  const { meta } = scan;
  const mains = scan.onDisk.filter((c) => !c.breakpoint);
  if (meta.kind === "ok") {
    const m = meta.meta;
    if (m.files !== null) {
      const mtimes = new Map(scan.onDisk.map((c) => [c.name, c.mtime]));
      for (const f of m.files) {
        const c: Candidate = {
          name: f.name,
          epoch: f.epoch,
          step: f.step,
          breakpoint: false,
          mtime: mtimes.get(f.name) ?? 0,
          bytes: f.bytes,
          checksum: f.checksum,
          globalStep: f.global_step,
          ...(f.slices && { slices: f.slices }),
          ...(f.rank_size !== undefined && { rankSize: f.rank_size }),
        };
        byKey.set(keyOf(c), c);
      }
    } else {
      // MindFormers' own meta.json: the files of its prefix up to the last.
      const prefix = m.last_ckpt_file.slice(
        0,
        m.last_ckpt_file.lastIndexOf("-"),
      );
      for (const c of mains) {
        if (c.name.startsWith(`${prefix}-`) && !afterLast(c, meta)) {
          byKey.set(keyOf(c), c);
        }
      }
    }
  } else {
    if (meta.kind === "invalid") {
      warnings.push(
        `${
          join(scan.folder, "meta.json")
        } is malformed (${meta.reason}); rank ${rank}'s files are found by name and checked by structure only`,
      );
    }
    // Newest by time last, so a later run's file wins a shared key.
    for (const c of [...mains].sort((a, b) => a.mtime - b.mtime)) {
      byKey.set(keyOf(c), c);
    }
  }
  // Breakpoints are not listed in meta.json: one counts when it was written
  // after meta.json's last update (after every file it lists; an older one
  // belongs to a run that a later run has saved past).
  const since = meta.kind === "ok" ? scan.metaMtime ?? 0 : -Infinity;
  for (const c of scan.onDisk) {
    if (c.breakpoint && c.mtime >= since) byKey.set(keyOf(c), c);
  }
  return byKey;
}

/** Whether a candidate is newer than the last file of an ok `meta.json`. */
function afterLast(c: Candidate, meta: MetaRead): boolean {
  if (meta.kind !== "ok") return false;
  const m = meta.meta;
  return c.epoch > m.last_epoch ||
    (c.epoch === m.last_epoch && c.step > m.last_step);
}

/**
 * The steps to try, newest first, by MindFormers' rule: the (epoch, step)
 * every rank of its run has (all rank folders, or the first `rank_size`
 * when `meta.json` records it), by (epoch, step), or, with no `meta.json`
 * anywhere, by rank 0's file time. A breakpoint comes before a main file
 * of the same step. Pure.
 */
export function order(g: Gathered): Ordered {
  const count = g.ranks.length;
  const warnings: string[] = strayLines(g).map((s) => `${s}; not considered`);
  const perRank = g.ranks.map((r, rank) => candidatesOf(r, rank, warnings));
  const anyMeta = g.ranks.some((r) => r.meta.kind !== "missing");
  const ranksOf = (c: Candidate) => c.rankSize ?? count;
  const complete = (c: Candidate) => {
    const n = ranksOf(c);
    if (n > count) return false;
    for (let rank = 0; rank < n; rank++) {
      if (!perRank[rank]!.has(keyOf(c))) return false;
    }
    return true;
  };
  if (
    count > 1 && anyMeta && ![...perRank[0]?.values() ?? []].some(complete)
  ) {
    // A resumed run's meta.json lists only its own files: when some ranks
    // saved in the new run and others died before their first save, the
    // step they all resumed from is listed by none of the new ones. Add
    // each rank's files from earlier runs (not newer than its meta.json's
    // last), checked by a full read as their checksums are not recorded.
    for (const [rank, scan] of g.ranks.entries()) {
      if (scan.meta.kind !== "ok") continue;
      const byKey = perRank[rank]!;
      let added = false;
      const older = scan.onDisk.filter((c) => !c.breakpoint)
        .sort((a, b) => b.mtime - a.mtime);
      for (const c of older) {
        if (byKey.has(keyOf(c)) || afterLast(c, scan.meta)) continue;
        byKey.set(keyOf(c), c);
        added = true;
      }
      if (added) {
        warnings.push(
          `rank ${rank}: no step is listed by every rank's meta.json; files meta.json no longer lists (an earlier run's) were considered, checked by structure only`,
        );
      }
    }
  }
  const byTime = !anyMeta;
  const heads = [...perRank[0]?.values() ?? []].filter(complete).sort((a, b) =>
    (byTime ? b.mtime - a.mtime : 0) || b.epoch - a.epoch ||
    b.step - a.step || Number(b.breakpoint) - Number(a.breakpoint)
  );
  const steps = heads.map((head): Step => ({
    epoch: head.epoch,
    step: head.step,
    breakpoint: head.breakpoint,
    files: perRank.slice(0, ranksOf(head)).map((m) => m.get(keyOf(head))!),
  }));
  if (steps.length === 0 && count > 0) {
    const empty = perRank.flatMap((m, r) =>
      m.size === 0
        ? [`rank_${r}${g.ranks[r]!.absent === true ? " (no folder)" : ""}`]
        : []
    );
    if (perRank.some((m) => m.size > 0)) {
      warnings.push(
        empty.length > 0
          ? `${empty.join(", ")} ${
            empty.length === 1 ? "has" : "have"
          } no checkpoint, while other ranks do`
          : `no (epoch, step) has a checkpoint in all ${count} rank folders`,
      );
    }
  }
  return {
    steps,
    source: g.ranks.some((r) => r.meta.kind === "ok") ? "meta.json" : "mtime",
    warnings,
    anything: anyMeta || perRank.some((m) => m.size > 0),
  };
}

/**
 * Why no step verified, as the error to throw: the error itself when every
 * candidate failed alike for want of a key (or with a wrong one), so that
 * the class says what to do; else a {@linkcode ResumeError} listing every
 * reason. Pure.
 */
export function explainNothing(
  g: Gathered,
  skipped: readonly Skip[],
  warnings: readonly string[],
): Error {
  for (const kind of ["encryption", "decryption"] as const) {
    if (skipped.length > 0 && skipped.every((s) => s.kind === kind)) {
      const error = skipped[0]!.error;
      if (error instanceof Error) return error;
    }
  }
  const lines = [
    ...warnings,
    ...skipped.map((s) => `${s.file}: ${s.reason}`),
  ];
  if (lines.length === 0) lines.push("no rank folder holds a checkpoint");
  return new ResumeError(
    g.root,
    `no checkpoint to resume from verifies:\n  ${lines.join("\n  ")}`,
  );
}

/**
 * Why there is no candidate although something looks like a checkpoint:
 * the message for a folder that must not be taken for a fresh start, or
 * `null` when there is truly nothing (a fresh start). Pure.
 */
export function explainEmpty(g: Gathered): Error | null {
  if (g.loose.length > 0) {
    return new ResumeError(
      g.root,
      `no rank_N folder here, but checkpoints are: ${
        g.loose.slice(0, 3).join(", ")
      }${
        g.loose.length > 3 ? ", …" : ""
      }; pass the monitor's directory (the folder holding checkpoint/rank_N), not a rank folder`,
    );
  }
  const strays = strayLines(g);
  if (strays.length > 0) {
    return new ResumeError(
      g.root,
      `the rank folders hold files named like checkpoints, but none the monitor could have written:\n  ${
        strays.join("\n  ")
      }`,
    );
  }
  return null;
}

/** `<file>: <why>` for every stray of every rank. */
function strayLines(g: Gathered): string[] {
  return g.ranks.flatMap((r) =>
    r.strays.map((s) => `${join(r.folder, s.name)}: ${s.why}`)
  );
}
