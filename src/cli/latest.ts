// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `latest <dir>`: which checkpoint a resume would pick from
 * `<dir>/checkpoint/rank_N/meta.json`, and why. It follows MindFormers 1.3's
 * rule: take each rank's last checkpoint from its `meta.json` (skipping
 * missing or invalid ones), take the oldest of those, then the newest
 * (epoch, step) no later than it for which every rank has a file. With no
 * valid `meta.json` at all, each rank's newest file by modification time.
 *
 * @module
 */

import { basename, join } from "node:path";
import { InputError, statOrNull } from "./_util.ts";

/** What `latest` found for one rank. */
export interface LatestRank {
  /** The rank number (from the `rank_N` folder name). */
  rank: number;
  /** The rank's folder. */
  dir: string;
  /** The last checkpoint its `meta.json` names, or `null`. */
  last: { file: string; epoch: number; step: number } | null;
  /** Why `meta.json` was not used, when it was not. */
  problem?: string;
}

/** The answer of `latest`. */
export interface LatestResult {
  /** The folder holding the `rank_*` folders. */
  root: string;
  /** Every rank folder, in rank order. */
  ranks: LatestRank[];
  /** The pick: the (epoch, step) and one file per rank; `null` when none fits. */
  pick: { epoch: number; step: number; files: string[] } | null;
  /** How the pick was made, one sentence each. */
  reasons: string[];
}

const FILE_RE = /^(.+)-(\d+)_(\d+)\.(ckpt|safetensors)$/;

interface _File {
  name: string;
  epoch: number;
  step: number;
}

function _cmp(a: { epoch: number; step: number }, b: typeof a): number {
  return a.epoch - b.epoch || a.step - b.step;
}

async function _files(dir: string): Promise<_File[]> {
  const out: _File[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || e.name.endsWith("_breakpoint.ckpt")) continue;
    const m = FILE_RE.exec(e.name);
    if (m) out.push({ name: e.name, epoch: Number(m[2]), step: Number(m[3]) });
  }
  return out;
}

async function _readMeta(dir: string): Promise<LatestRank["last"] | string> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "meta.json"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "no meta.json";
    throw e;
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(text);
  } catch {
    return "meta.json is not valid JSON";
  }
  const { last_epoch: epoch, last_step: step, last_ckpt_file: file } = meta ??
    {};
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(step)) {
    return "meta.json has no integer last_epoch and last_step";
  }
  if (typeof file !== "string" || !FILE_RE.test(file) || file.includes("/")) {
    return `meta.json names no checkpoint file (last_ckpt_file: ${
      JSON.stringify(file)
    })`;
  }
  const info = await statOrNull(join(dir, file));
  if (info === null) return `meta.json names ${file}, which is missing`;
  if (!info.isFile) return `${file} is not a file`;
  return { file, epoch: epoch as number, step: step as number };
}

/**
 * Works out what a resume would pick under `dir` (a training output
 * folder, its `checkpoint` folder, or one `rank_N` folder).
 *
 * @param dir The folder to look in.
 * @returns The ranks found, the pick and the reasons.
 * @throws {InputError} When `dir` is not a folder or holds no rank folders.
 */
export async function latest(dir: string): Promise<LatestResult> {
  const info = await statOrNull(dir);
  if (info === null) {
    throw new InputError(`${JSON.stringify(dir)} does not exist`);
  }
  if (!info.isDirectory) {
    throw new InputError(
      `${JSON.stringify(dir)} is a file; latest takes a training output folder`,
    );
  }
  let root = dir;
  if ((await statOrNull(join(dir, "checkpoint")))?.isDirectory) {
    root = join(dir, "checkpoint");
  }
  const rankDirs: { rank: number; dir: string }[] = [];
  for await (const e of Deno.readDir(root)) {
    const m = /^rank_(\d+)$/.exec(e.name);
    if (e.isDirectory && m) {
      rankDirs.push({ rank: Number(m[1]), dir: join(root, e.name) });
    }
  }
  if (rankDirs.length === 0) {
    const m = /^rank_(\d+)$/.exec(basename(dir));
    if (m) rankDirs.push({ rank: Number(m[1]), dir });
    else {
      throw new InputError(
        `${JSON.stringify(dir)} holds no checkpoint/rank_N folders`,
      );
    }
  }
  rankDirs.sort((a, b) => a.rank - b.rank);

  const ranks: LatestRank[] = [];
  const reasons: string[] = [];
  for (const { rank, dir: d } of rankDirs) {
    const last = await _readMeta(d);
    if (typeof last === "string") {
      ranks.push({ rank, dir: d, last: null, problem: last });
      reasons.push(`rank ${rank} is skipped: ${last}.`);
    } else {
      ranks.push({ rank, dir: d, last });
    }
  }
  const files = await Promise.all(ranks.map((r) => _files(r.dir)));
  const valid = ranks.filter((r) => r.last !== null);

  if (valid.length === 0) {
    reasons.push(
      "No rank has a valid meta.json: each rank takes its newest file by modification time.",
    );
    const picks: string[] = [];
    let first: _File | undefined;
    for (const [i, r] of ranks.entries()) {
      let newest: { f: _File; t: number } | undefined;
      for (const f of files[i]!) {
        const t = (await Deno.stat(join(r.dir, f.name))).mtime?.getTime() ?? 0;
        if (!newest || t > newest.t) newest = { f, t };
      }
      if (!newest) {
        reasons.push(
          `rank ${r.rank} has no checkpoint file: nothing to resume.`,
        );
        return { root, ranks, pick: null, reasons };
      }
      first ??= newest.f;
      if (_cmp(newest.f, first) !== 0) {
        reasons.push(
          `The ranks' newest files disagree (${first.name} vs ${newest.f.name}): nothing to resume.`,
        );
        return { root, ranks, pick: null, reasons };
      }
      picks.push(join(r.dir, newest.f.name));
    }
    return {
      root,
      ranks,
      pick: { epoch: first!.epoch, step: first!.step, files: picks },
      reasons,
    };
  }

  let oldest = valid[0]!;
  for (const r of valid) if (_cmp(r.last!, oldest.last!) < 0) oldest = r;
  const limit = oldest.last!;
  reasons.push(
    valid.length === 1
      ? `rank ${oldest.rank}'s meta.json names ${limit.file} (epoch ${limit.epoch}, step ${limit.step}).`
      : `The oldest last checkpoint over ${valid.length} ranks is epoch ${limit.epoch}, step ${limit.step} (rank ${oldest.rank}: ${limit.file}).`,
  );
  // Newest (epoch, step) <= limit that every rank folder has.
  const groups = new Map<
    string,
    { epoch: number; step: number; by: string[] }
  >();
  files.forEach((list, i) => {
    for (const f of list) {
      if (_cmp(f, limit) > 0) continue;
      const key = `${f.epoch}_${f.step}`;
      const g = groups.get(key) ??
        { epoch: f.epoch, step: f.step, by: new Array<string>(ranks.length) };
      g.by[i] ??= join(ranks[i]!.dir, f.name);
      groups.set(key, g);
    }
  });
  const complete = [...groups.values()]
    .filter((g) => g.by.filter((f) => f !== undefined).length === ranks.length)
    .sort(_cmp);
  const best = complete.at(-1);
  if (best === undefined) {
    reasons.push(
      `No (epoch, step) up to that one has a file in every rank folder: nothing to resume.`,
    );
    return { root, ranks, pick: null, reasons };
  }
  reasons.push(
    _cmp(best, limit) === 0
      ? `Every rank folder has a file for it.`
      : `Not every rank folder has a file for it; the newest one they all have is epoch ${best.epoch}, step ${best.step}.`,
  );
  return {
    root,
    ranks,
    pick: { epoch: best.epoch, step: best.step, files: best.by },
    reasons,
  };
}

/**
 * Renders a {@linkcode LatestResult} as plain text.
 *
 * @param r The result.
 * @returns Lines of text.
 */
export function formatLatest(r: LatestResult): string {
  const lines = [
    `checkpoint folder: ${r.root} (${r.ranks.length} rank${
      r.ranks.length === 1 ? "" : "s"
    })`,
  ];
  for (const rank of r.ranks) {
    lines.push(
      rank.last
        ? `  rank ${rank.rank}: meta.json -> ${rank.last.file} (epoch ${rank.last.epoch}, step ${rank.last.step})`
        : `  rank ${rank.rank}: ${rank.problem}`,
    );
  }
  if (r.pick) {
    lines.push(`resume from: epoch ${r.pick.epoch}, step ${r.pick.step}`);
    for (const f of r.pick.files) lines.push(`  ${f}`);
  } else {
    lines.push("resume from: nothing");
  }
  lines.push("why:");
  for (const why of r.reasons) lines.push(`  ${why}`);
  return lines.join("\n");
}
