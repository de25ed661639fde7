// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The crash-kill harness: runs `_crash_child.ts` (a job saving a checkpoint
 * at every step) again and again, kills it with SIGKILL at a random moment,
 * and after each kill checks the recovery invariants:
 *
 * 1. `findResumeCheckpoint` returns a checkpoint (once one was ever
 *    committed), skipping nothing: every file `meta.json` lists verifies;
 * 2. that checkpoint loads, and holds the step it claims;
 * 3. no final name holds a partial file: every checkpoint file in the
 *    folders (main and network-only) verifies;
 * 4. progress never goes back past a checkpoint that was durable;
 * 5. the temporary files a kill leaves are gone once the next run starts.
 */

import { fileURLToPath } from "node:url";
import { spawnChild } from "./_helpers.ts";
import {
  findResumeCheckpoint,
  isTempFileName,
  loadCheckpoint,
  removeTempFiles,
  type Tensor,
  verifyCheckpoint,
} from "../mod.ts";
import type { CheckpointStore } from "../src/store/store.ts";

/** Options of {@linkcode runKills}. */
export interface KillOptions {
  /** How many kills. */
  kills: number;
  /** The folder to train in (must exist, empty). */
  directory: string;
  /** Seed of the kill times. */
  seed?: number;
  /** The longest wait between the child being ready and the kill, ms. */
  maxDelayMs?: number;
  /** Elements of the child's weight tensor (4 bytes each). */
  elements?: number;
  /** The child saves in the background (`asyncSave: true`). */
  asyncSave?: boolean;
  /** Progress output. */
  log?: (line: string) => void;
}

/** What {@linkcode runKills} found. */
export interface KillReport {
  kills: number;
  failures: string[];
  /** Kills after which a temporary file was left (a kill during a write). */
  killsDuringWrite: number;
  /** Kills before any checkpoint was committed. */
  killsBeforeFirstSave: number;
  /** The last step a resume found. */
  lastStep: number;
  /** Temporary files the next run removed. */
  tempFilesCleaned: number;
}

const CHILD = fileURLToPath(new URL("./_crash_child.ts", import.meta.url));

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function names(folder: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(folder)) out.push(e.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

/** Reads the child's first stdout line (its JSON hello). */
async function firstLine(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
): Promise<{ line: string; rest: Promise<void> }> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const rest = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  return { line: text.split("\n")[0]!, rest };
}

/**
 * Runs the kills and checks the invariants after each.
 *
 * @param options What to run.
 * @returns Counts and the failures found (each a sentence).
 */
export async function runKills(options: KillOptions): Promise<KillReport> {
  const { directory, kills } = options;
  const random = rng(options.seed ?? 1);
  const maxDelay = options.maxDelayMs ?? 300;
  const log = options.log ?? (() => {});
  const main = `${directory}/checkpoint/rank_0`;
  const net = `${directory}/checkpoint_network/rank_0`;
  const report: KillReport = {
    kills: 0,
    failures: [],
    killsDuringWrite: 0,
    killsBeforeFirstSave: 0,
    lastStep: 0,
    tempFilesCleaned: 0,
  };
  let leftovers: string[] = [];
  let durable = 0;

  for (let i = 0; i < kills; i++) {
    const fail = (what: string) => {
      report.failures.push(`kill ${i + 1}: ${what}`);
      log(`FAIL kill ${i + 1}: ${what}`);
    };
    const child = spawnChild(CHILD, directory, [
      directory,
      String(options.elements ?? 65536),
      ...(options.asyncSave === true ? ["--async"] : []),
    ]);
    const stderr = new Response(child.stderr).text();
    const { line, rest } = await firstLine(child.stdout);
    let hello: { pid: number; cleaned: string[]; resumedAt: number };
    try {
      hello = JSON.parse(line);
    } catch {
      const status = await child.status;
      fail(
        `the child did not start (exit ${status.code}): ${
          (await stderr).slice(0, 2000)
        }`,
      );
      continue;
    }
    // 5. The previous kill's temporary files are gone.
    report.tempFilesCleaned += hello.cleaned.length;
    for (const t of leftovers) {
      try {
        await Deno.lstat(t);
        fail(`temporary file ${t} survived the next run's start`);
      } catch { /* removed, as it must be */ }
    }
    if (hello.resumedAt < durable) {
      fail(
        `resumed at step ${hello.resumedAt}, before durable step ${durable}`,
      );
    }

    await new Promise((r) => setTimeout(r, random() * maxDelay));
    const killed = await new Deno.Command("kill", {
      args: ["-KILL", String(hello.pid)],
      stdout: "null",
      stderr: "piped",
    }).output();
    const status = await child.status;
    await rest;
    const err = await stderr;
    report.kills++;
    if (!killed.success || status.success) {
      fail(
        `the kill did not land (kill ok: ${killed.success}, child exit ${status.code}): ${
          err.slice(0, 500)
        }`,
      );
    }

    // 3. No final name holds a partial file.
    leftovers = [];
    for (const folder of [main, net]) {
      for (const name of await names(folder)) {
        const path = `${folder}/${name}`;
        if (isTempFileName(name)) {
          leftovers.push(path);
          continue;
        }
        if (name === "meta.json") {
          try {
            JSON.parse(await Deno.readTextFile(path));
          } catch (e) {
            fail(`meta.json is not valid JSON: ${(e as Error).message}`);
          }
          continue;
        }
        const r = await verifyCheckpoint(path);
        if (!r.ok) fail(`${name} does not verify: ${r.kind}: ${r.reason}`);
      }
    }
    if (leftovers.length > 0) report.killsDuringWrite++;

    // 1, 2, 4. Resume finds a checkpoint that verifies and holds its step.
    const step = await checkResume(directory, durable, fail, {
      allValues: false,
    });
    if (step === "threw") continue;
    if (step === "none") {
      if (durable > 0) fail(`no checkpoint found after step ${durable}`);
      else report.killsBeforeFirstSave++;
      continue;
    }
    durable = step;
    report.lastStep = step;

    // Files of earlier runs accumulate (another prefix each run, as in
    // MindFormers); remove those meta.json does not list, to bound the disk.
    // (A kill between the first commit and the first meta.json leaves no
    // meta.json: resume then found the file by name; keep everything.)
    const text = await Deno.readTextFile(`${main}/meta.json`).catch(() => null);
    if (text !== null) {
      const listed = new Set<string>(
        JSON.parse(text).files.map((f: { name: string }) => f.name),
      );
      for (const name of await names(main)) {
        if (/\.ckpt$/.test(name) && !listed.has(name)) {
          await Deno.remove(`${main}/${name}`);
        }
      }
    }
    if ((i + 1) % 10 === 0 || i + 1 === kills) {
      log(
        `${
          i + 1
        } kills, ${report.failures.length} failures, step ${step}, ${report.killsDuringWrite} kills left a temporary file`,
      );
    }
  }
  // The run after the last kill cleans up too.
  const cleaned = [
    ...await removeTempFiles(main),
    ...await removeTempFiles(net),
  ];
  report.tempFilesCleaned += cleaned.length;
  return report;
}

/**
 * Resume after a kill, checked: `findResumeCheckpoint` with full
 * verification must not throw, skip or warn, must not go back before
 * `durable`, and its file must hold its step in `w` (every value, or the
 * first and last) and `global_step`. Each breach goes to `fail`.
 *
 * @returns The step resumed from; `"none"` when nothing was found;
 * `"threw"` when the search threw.
 */
export async function checkResume(
  directory: string,
  durable: number,
  fail: (why: string) => void,
  options: { store?: CheckpointStore; allValues: boolean },
): Promise<number | "none" | "threw"> {
  const store = options.store;
  let found;
  try {
    found = await findResumeCheckpoint(directory, {
      verify: "full",
      ...(store && { store }),
    });
  } catch (e) {
    fail(`findResumeCheckpoint threw: ${(e as Error).message}`);
    return "threw";
  }
  if (found === null) return "none";
  if (found.skipped.length > 0 || found.warnings.length > 0) {
    fail(
      `resume skipped ${
        JSON.stringify(found.skipped.map((s) => `${s.file}: ${s.reason}`))
      } warnings ${JSON.stringify(found.warnings)}`,
    );
  }
  const step = found.context.stepNum;
  if (step < durable) {
    fail(`resume went back to step ${step} from durable step ${durable}`);
  }
  const loaded = await loadCheckpoint(found.files[0]!, store && { store });
  const w = loaded.get("w") as Tensor<"Float32"> | undefined;
  const gs = loaded.get("global_step") as Tensor<"Int32"> | undefined;
  const holds = w !== undefined &&
    (options.allValues
      ? w.data.every((v) => v === step)
      : w.data[0] === step && w.data[w.data.length - 1] === step);
  if (!holds || gs === undefined || gs.data[0] !== step) {
    fail(`${found.files[0]} does not hold step ${step}`);
  }
  return step;
}
