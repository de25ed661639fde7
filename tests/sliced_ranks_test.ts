// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CorruptCheckpointError,
  findResumeCheckpoint,
  loadCheckpoint,
  type Parameter,
  type Tensor,
  verifyCheckpoint,
} from "../mod.ts";
import { biasAt, COLS, ROWS, weightAt } from "./_slice_child.ts";
import { spawnChild, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_slice_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The whole weight and bias at a step, built here, not by the library. */
function whole(step: number): { weight: number[]; bias: number[] } {
  const weight: number[] = [];
  for (let i = 0; i < ROWS; i++) {
    for (let j = 0; j < COLS; j++) weight.push(weightAt(step, i, j));
  }
  const bias = Array.from({ length: COLS }, (_, j) => biasAt(step, j));
  return { weight, bias };
}

interface RankRun {
  readonly ranks: number;
  readonly last: number;
  readonly integrated: boolean;
  /** The file each rank resumes from, and the step. */
  readonly resume?: {
    readonly files: readonly string[];
    readonly step: number;
  };
  /** A rank that hangs before saving this step, to be SIGKILLed. */
  readonly hang?: { readonly rank: number; readonly step: number };
  readonly asyncSave?: boolean;
}

interface RankOutcome {
  readonly resumedAt: number;
  readonly integrated: string[];
  readonly errors: string[];
}

/** Reads a child's stdout line by line. */
function lines(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) return "";
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
}

/**
 * Runs one process per rank, all saving into `directory` at once; waits
 * for them to finish (SIGKILLing the hanging rank once the others are
 * done). Returns each finished rank's report (`null` for the killed one).
 */
async function runRanks(
  directory: string,
  run: RankRun,
): Promise<(RankOutcome | null)[]> {
  const children = Array.from({ length: run.ranks }, (_, rank) => {
    const child = spawnChild(CHILD, directory, [
      directory,
      String(rank),
      String(run.ranks),
      String(run.last),
      run.integrated ? "1" : "0",
      run.resume?.files[rank] ?? "-",
      String(run.resume?.step ?? 0),
      String(run.hang?.rank === rank ? run.hang.step : 0),
      run.asyncSave ? "1" : "0",
    ], ROOT);
    const next = lines(child.stdout);
    const stderr = new Response(child.stderr).text();
    return { child, next, stderr };
  });
  const pids = await Promise.all(children.map(async ({ next, stderr }) => {
    const line = await next();
    if (line === "") throw new Error(await stderr);
    return JSON.parse(line).pid as number;
  }));
  const out: (RankOutcome | null)[] = [];
  for (const [rank, { child, next, stderr }] of children.entries()) {
    if (run.hang?.rank === rank) {
      out.push(null);
      continue;
    }
    const status = await child.status;
    const text = await stderr;
    ok(status.success, `rank ${rank} failed: ${text}`);
    out.push(JSON.parse(await next()));
  }
  if (run.hang !== undefined) {
    const kill = await new Deno.Command("kill", {
      args: ["-KILL", String(pids[run.hang.rank])],
    }).output();
    ok(kill.success);
    const { child, stderr } = children[run.hang.rank]!;
    equal((await child.status).success, false);
    await stderr;
  }
  return out;
}

/** The names of the integrated files the ranks reported writing, sorted. */
function integratedNames(outcomes: (RankOutcome | null)[]): string[] {
  return outcomes.flatMap((o) => o?.integrated ?? []).map((f) => basename(f))
    .sort();
}

async function readJson(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

/** A test in a fresh folder, with subprocesses (whose pipes outlive it). */
function rankTest(name: string, fn: (directory: string) => Promise<void>) {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => withTempDir(fn),
  });
}

/** Checks that no integrated folder was made. */
async function noIntegratedFolder(directory: string): Promise<void> {
  await rejects(
    Deno.stat(join(directory, "checkpoint", "integrated")),
    Deno.errors.NotFound,
  );
}

/**
 * Checks one file of a rank (its `meta.json` entry): it holds the rank's
 * two rows of the weight at `step`, and the entry records where they lie.
 */
async function checkRankSlice(
  directory: string,
  rank: number,
  entry: { name: string; slices?: unknown },
  step: number,
): Promise<void> {
  deepEqual(entry.slices, {
    "dense.weight": { globalShape: [ROWS, COLS], offset: [rank * 2, 0] },
  });
  const m = await loadCheckpoint(
    join(directory, "checkpoint", `rank_${rank}`, entry.name),
  );
  const w = m.get("dense.weight") as Tensor<"Float32">;
  deepEqual(w.shape, [2, COLS]);
  deepEqual(
    Array.from(w.data),
    whole(step).weight.slice(rank * 2 * COLS, (rank + 1) * 2 * COLS),
  );
}

rankTest(
  "sliced parameters over 3 rank processes, integratedSave on: checkpoint/integrated/ holds the whole matrices; resume takes each rank's own slice, then 2 ranks resume their slices from the integrated file",
  async (directory) => {
    const integratedDir = join(directory, "checkpoint", "integrated");
    const first = await runRanks(directory, {
      ranks: 3,
      last: 4,
      integrated: true,
    });
    deepEqual(first.map((o) => o?.errors), [[], [], []]);
    // Each step assembled once, by whichever rank committed it last.
    deepEqual(integratedNames(first), [
      "CKP-1_1.ckpt",
      "CKP-1_2.ckpt",
      "CKP-1_3.ckpt",
      "CKP-1_4.ckpt",
    ]);
    for (let step = 1; step <= 4; step++) {
      const file = join(integratedDir, `CKP-1_${step}.ckpt`);
      const check = await verifyCheckpoint(file);
      ok(check.ok && check.checkedAgainst === "meta.json", file);
      const m = await loadCheckpoint(file);
      const w = m.get("dense.weight") as Tensor<"Float32">;
      const b = m.get("dense.bias") as Tensor<"Float32">;
      deepEqual(w.shape, [ROWS, COLS]);
      deepEqual(Array.from(w.data), whole(step).weight);
      deepEqual(Array.from(b.data), whole(step).bias);
      deepEqual(
        Array.from((m.get("global_step") as Tensor<"Int32">).data),
        [step],
      );
    }
    const meta = await readJson(join(integratedDir, "meta.json"));
    equal(meta.last_ckpt_file, "CKP-1_4.ckpt");
    equal(meta.files.length, 4);
    // Each rank's own file keeps its slice, and meta.json says where.
    for (let rank = 0; rank < 3; rank++) {
      const folder = join(directory, "checkpoint", `rank_${rank}`);
      const meta = await readJson(join(folder, "meta.json"));
      await checkRankSlice(directory, rank, meta.files.at(-1), 4);
    }

    // Resume with 3 ranks: each from its own file (the child checks the
    // values it loaded); asyncSave this time.
    const found = await findResumeCheckpoint(directory, { verify: "full" });
    ok(found !== null);
    equal(found.context.initialStep, 4);
    equal(found.integrated, join(integratedDir, "CKP-1_4.ckpt"));
    const second = await runRanks(directory, {
      ranks: 3,
      last: 6,
      integrated: true,
      asyncSave: true,
      resume: { files: found.files, step: 4 },
    });
    deepEqual(second.map((o) => [o?.resumedAt, o?.errors]), [
      [4, []],
      [4, []],
      [4, []],
    ]);
    // A new run: the collision suffix, as in the rank folders.
    deepEqual(integratedNames(second), ["CKP_1-1_5.ckpt", "CKP_1-1_6.ckpt"]);

    // Resume with 2 ranks where 3 saved: each reads its 3 rows out of the
    // integrated file of the newest step.
    // Given the 2-rank network, the 3-rank files still fit: they hold
    // slices of the same whole tensors.
    const twoRankNetwork = (globalRows: number): Parameter[] => [
      {
        name: "dense.weight",
        dtype: "Float32",
        shape: [3, COLS],
        data: new Float32Array(3 * COLS),
        slice: { globalShape: [globalRows, COLS], offset: [3, 0] },
      },
      {
        name: "dense.bias",
        dtype: "Float32",
        shape: [COLS],
        data: new Float32Array(COLS),
      },
    ];
    const again = await findResumeCheckpoint(directory, {
      network: twoRankNetwork(ROWS),
    });
    ok(again !== null);
    deepEqual(again.skipped, []);
    await rejects(
      findResumeCheckpoint(directory, { network: twoRankNetwork(8) }),
      /another model/,
    );
    equal(again.context.initialStep, 6);
    equal(again.integrated, join(integratedDir, "CKP_1-1_6.ckpt"));
    const third = await runRanks(directory, {
      ranks: 2,
      last: 8,
      integrated: true,
      resume: { files: [again.integrated!, again.integrated!], step: 6 },
    });
    deepEqual(third.map((o) => [o?.resumedAt, o?.errors]), [[6, []], [
      6,
      [],
    ]]);
    deepEqual(integratedNames(third), ["CKP_2-1_7.ckpt", "CKP_2-1_8.ckpt"]);
    const m = await loadCheckpoint(join(integratedDir, "CKP_2-1_8.ckpt"));
    deepEqual(
      Array.from((m.get("dense.weight") as Tensor<"Float32">).data),
      whole(8).weight,
    );
    // The next resume takes the 2-rank run's newest step: its meta.json
    // records 2 ranks, so the 3-rank run's rank_2 folder does not hold it
    // back.
    const fourth = await findResumeCheckpoint(directory, { verify: "full" });
    ok(fourth !== null);
    deepEqual(fourth.files.map((f) => basename(f)), [
      "CKP_rank_0_2-1_8.ckpt",
      "CKP_rank_1_2-1_8.ckpt",
    ]);
    equal(fourth.integrated, join(integratedDir, "CKP_2-1_8.ckpt"));
    equal(fourth.context.initialStep, 8);
    ok(
      fourth.warnings.some((w) =>
        w.startsWith("rank_2 is not part of the run")
      ),
      fourth.warnings.join("; "),
    );
  },
);

rankTest(
  "sliced parameters over 3 rank processes, integratedSave off: no integrated folder; each rank's file holds its slice and meta.json records the layout",
  async (directory) => {
    const outcomes = await runRanks(directory, {
      ranks: 3,
      last: 2,
      integrated: false,
    });
    deepEqual(outcomes.map((o) => o?.errors), [[], [], []]);
    deepEqual(integratedNames(outcomes), []);
    await noIntegratedFolder(directory);
    for (let rank = 0; rank < 3; rank++) {
      const folder = join(directory, "checkpoint", `rank_${rank}`);
      const meta = await readJson(join(folder, "meta.json"));
      for (const [i, entry] of meta.files.entries()) {
        await checkRankSlice(directory, rank, entry, i + 1);
      }
    }
    const found = await findResumeCheckpoint(directory);
    equal(found?.context.initialStep, 2);
    equal(found?.integrated, undefined);
  },
);

rankTest(
  "a rank SIGKILLed before committing its first save: no integrated file, the other ranks' files intact, and resume says which rank has nothing",
  async (directory) => {
    const outcomes = await runRanks(directory, {
      ranks: 3,
      last: 3,
      integrated: true,
      hang: { rank: 2, step: 1 },
    });
    deepEqual(outcomes.map((o) => o?.errors), [[], [], undefined]);
    deepEqual(integratedNames(outcomes), []);
    await noIntegratedFolder(directory);
    for (const rank of [0, 1]) {
      const folder = join(directory, "checkpoint", `rank_${rank}`);
      const meta = await readJson(join(folder, "meta.json"));
      equal(meta.files.length, 3);
      for (const entry of meta.files) {
        const check = await verifyCheckpoint(join(folder, entry.name));
        ok(check.ok, entry.name);
      }
    }
    await rejects(
      findResumeCheckpoint(directory),
      (e: Error) =>
        e instanceof CorruptCheckpointError &&
        /rank_2 has no checkpoint, while other ranks do/.test(e.message),
    );
  },
);
