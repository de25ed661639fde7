// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The crash-kill harness pointed at object storage: runs
 * `_s3_crash_child.ts` (a job saving to `s3://…` at every step) again and
 * again, kills it with SIGKILL at a random (seeded) moment, and after each
 * kill checks, against the real server:
 *
 * 1. the child resumed with exactly the values saved at the step it resumed
 *    at, never before a step already found durable (no bad resume);
 * 2. no object is visible half-written: every checkpoint object in the run's
 *    folders verifies (size, CRC-32, structure), and `meta.json` parses;
 * 3. `findResumeCheckpoint` (full verification) finds a checkpoint, skips
 *    nothing, and its file holds the step it claims;
 * 4. the incomplete multipart uploads a kill leaves are aborted by the next
 *    run's start (counted once that run has saved; a last run at the end
 *    checks the uploads of the last kill).
 *
 * `runS3RankKills` does the same for three rank processes saving slices of
 * one tensor, killed each at its own random moment after its first commit
 * of the round (resume refuses rank folders with a gap, so a rank killed
 * before its monitor made its folder is left out), and then resumes and
 * merges the slices from the bucket.
 */

import { fileURLToPath } from "node:url";
import {
  findResumeCheckpoint,
  loadCheckpoint,
  mergeSlicedCheckpoints,
  type Tensor,
  verifyCheckpoint,
} from "../mod.ts";
import {
  S3_ENV_VARIABLES,
  s3OptionsFromEnv,
  S3Store,
} from "../src/store/s3/mod.ts";
import { S3Client } from "../src/store/s3/_client.ts";
import { S3Objects } from "../src/store/s3/_head.ts";
import { listIncompleteUploads } from "../src/store/s3/_listing.ts";
import { resolveS3Options } from "../src/store/s3/_options.ts";
import { checkResume } from "./_crash_harness.ts";
import { COLS, ROWS_PER_RANK } from "./_s3_crash_child.ts";

const CHILD = fileURLToPath(new URL("./_s3_crash_child.ts", import.meta.url));

/** Options of {@linkcode runS3Kills} and {@linkcode runS3RankKills}. */
export interface S3KillOptions {
  /** `s3://bucket/prefix`, empty. */
  directory: string;
  /** How many kills (for ranks: rounds, each killing every rank). */
  kills: number;
  /** Seed of the kill times. */
  seed?: number;
  /** The longest wait between the child being ready and the kill, ms. */
  maxDelayMs?: number;
  /** Elements of the weight tensor (4 bytes each); 6 MiB by default, two 5 MiB-parts uploads. */
  elements?: number;
  /** Lease of the rank folder's lock claim, ms. */
  leaseMs?: number;
  /** Progress output. */
  log?: (line: string) => void;
}

/** What the harness found. */
export interface S3KillReport {
  kills: number;
  failures: string[];
  /** Children whose own resume restored values other than the step's. */
  badResumes: number;
  /** Kills after which an incomplete multipart upload was left. */
  killsDuringUpload: number;
  /** Incomplete uploads a later run aborted. */
  uploadsCleaned: number;
  /** Kills before any checkpoint was committed. */
  killsBeforeFirstSave: number;
  /** Checkpoint objects verified after the kills. */
  objectsVerified: number;
  /** The last step a resume found. */
  lastStep: number;
}

/** The store, an S3 client for what the store does not show, and the child's flags. */
export function s3Harness(leaseMs = 1500): {
  store: S3Store;
  objects: S3Objects;
  childFlags: string[];
} {
  const env = s3OptionsFromEnv();
  if (env.credentials === undefined || env.endpoint === undefined) {
    throw new Error(
      "set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
  }
  const options = {
    ...env,
    credentials: env.credentials,
    lockLeaseMs: leaseMs,
    lockClockSkewMs: 0,
  };
  const store = new S3Store(options);
  const objects = new S3Objects(
    new S3Client(resolveS3Options(options).client),
  );
  const childFlags = [
    "run",
    "--no-check",
    "--quiet",
    "--no-prompt",
    `--allow-net=${new URL(env.endpoint).host}`,
    `--allow-env=${S3_ENV_VARIABLES.join(",")}`,
  ];
  return { store, objects, childFlags };
}

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

/** A child's stdout, line by line. */
function lines(stream: ReadableStream<Uint8Array<ArrayBuffer>>): {
  next: () => Promise<string | null>;
} {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    next: async () => {
      while (!buffered.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) return null;
        buffered += value;
      }
      const at = buffered.indexOf("\n");
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      return line;
    },
  };
}

interface Hello {
  pid: number;
  resumedAt: number;
  resumeOk: boolean;
  file: string | null;
}

/** One running child: its hello, and a count of the saves it reports. */
interface Running {
  /** Resolves once the hello line was read (or the output ended). */
  ready: Promise<void>;
  hello: Hello | null;
  saves: () => number;
  /** Resolves at the first `saved` line. */
  firstSave: Promise<void>;
  done: Promise<{ code: number; stderr: string }>;
}

function start(flags: string[], args: string[], read?: string): Running {
  const child = new Deno.Command("deno", {
    args: [
      ...flags,
      ...(read === undefined
        ? []
        : [`--allow-read=${read}`, `--allow-write=${read}`]),
      CHILD,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const out = lines(child.stdout);
  let saves = 0;
  let saved: () => void = () => {};
  const running: Running = {
    ready: Promise.resolve(),
    hello: null,
    saves: () => saves,
    firstSave: new Promise<void>((ok) => saved = ok),
    done: (async () => {
      const status = await child.status;
      return { code: status.code, stderr: await stderr };
    })(),
  };
  // Reads every line until the child ends (a kill closes the pipe).
  let helloRead: () => void = () => {};
  running.ready = new Promise<void>((ok) => helloRead = ok);
  const reading = (async () => {
    try {
      const first = await out.next();
      running.hello = first === null ? null : JSON.parse(first) as Hello;
    } finally {
      helloRead();
    }
    for (let l = await out.next(); l !== null; l = await out.next()) {
      if (JSON.parse(l).saved !== undefined) {
        saves++;
        saved();
      }
    }
  })();
  running.done = Promise.all([running.done, reading.catch(() => {})])
    .then(([d]) => d);
  return running;
}

async function kill(pid: number): Promise<boolean> {
  const out = await new Deno.Command("kill", {
    args: ["-KILL", String(pid)],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

/** Every checkpoint object under `folder` verifies; `meta.json` parses. */
async function checkFolder(
  store: S3Store,
  folder: string,
  fail: (what: string) => void,
): Promise<number> {
  let verified = 0;
  for (const e of (await store.list(folder)) ?? []) {
    if (e.kind !== "file") continue;
    const path = `${folder}/${e.name}`;
    if (e.name === "meta.json") {
      try {
        JSON.parse(
          new TextDecoder().decode(await store.readFile(path, 1 << 20)),
        );
      } catch (error) {
        fail(`${path} is not valid JSON: ${(error as Error).message}`);
      }
    } else if (e.name.endsWith(".ckpt")) {
      const r = await verifyCheckpoint(path, { store });
      verified++;
      if (!r.ok) {
        fail(`${path} is visible but does not verify: ${r.kind}: ${r.reason}`);
      }
    }
  }
  return verified;
}

/** Tracks incomplete uploads from one kill to the next run. */
class Uploads {
  #pending = new Map<string, string>();
  constructor(
    readonly objects: S3Objects,
    readonly folders: string[],
    readonly report: S3KillReport,
  ) {}

  async #now(): Promise<Map<string, string>> {
    const now = new Map<string, string>();
    for (const f of this.folders) {
      for (const u of await listIncompleteUploads(this.objects, f)) {
        now.set(u.uploadId, u.path);
      }
    }
    return now;
  }

  /**
   * After a kill: uploads left by an earlier kill and gone now count as
   * cleaned; one still there after a run that saved is a failure.
   */
  async afterKill(
    ranSaves: boolean,
    fail: (what: string) => void,
  ): Promise<void> {
    const now = await this.#now();
    for (const [id, path] of this.#pending) {
      if (!now.has(id)) this.report.uploadsCleaned++;
      else if (ranSaves) {
        fail(`the incomplete upload of ${path} survived a run that saved`);
      }
    }
    const fresh = [...now.keys()].filter((id) => !this.#pending.has(id));
    if (fresh.length > 0) this.report.killsDuringUpload++;
    this.#pending = now;
  }
}

/**
 * Kills a single-rank job saving to the bucket `kills` times and checks the
 * invariants after each (see the module notes).
 */
export async function runS3Kills(
  options: S3KillOptions,
): Promise<S3KillReport> {
  const { directory, kills } = options;
  const random = rng(options.seed ?? 1);
  const maxDelay = options.maxDelayMs ?? 1500;
  const elements = options.elements ?? 1_572_864;
  const lease = options.leaseMs ?? 1500;
  const log = options.log ?? (() => {});
  const { store, objects, childFlags } = s3Harness(lease);
  const main = `${directory}/checkpoint/rank_0`;
  const net = `${directory}/checkpoint_network/rank_0`;
  const report: S3KillReport = {
    kills: 0,
    failures: [],
    badResumes: 0,
    killsDuringUpload: 0,
    uploadsCleaned: 0,
    killsBeforeFirstSave: 0,
    objectsVerified: 0,
    lastStep: 0,
  };
  const uploads = new Uploads(objects, [main, net], report);
  let durable = 0;
  const args = [directory, String(elements), String(lease)];

  for (let i = 0; i <= kills; i++) {
    const last = i === kills; // the run after the last kill: saves once, then killed
    const fail = (what: string) => {
      report.failures.push(`${last ? "last run" : `kill ${i + 1}`}: ${what}`);
      log(`FAIL ${last ? "last run" : `kill ${i + 1}`}: ${what}`);
    };
    const child = start(childFlags, args);
    await Promise.race([child.ready, child.done]);
    const hello = child.hello;
    if (hello === null) {
      const { code, stderr } = await child.done;
      fail(`the child did not start (exit ${code}): ${stderr.slice(0, 2000)}`);
      continue;
    }
    if (!hello.resumeOk) {
      report.badResumes++;
      fail(
        `the child's resume at step ${hello.resumedAt} restored other values (${hello.file})`,
      );
    }
    if (hello.resumedAt < durable) {
      report.badResumes++;
      fail(
        `resumed at step ${hello.resumedAt}, before durable step ${durable}`,
      );
    }
    if (last) {
      await Promise.race([child.firstSave, child.done]);
    } else {
      await new Promise((r) => setTimeout(r, random() * maxDelay));
    }
    const landed = await kill(hello.pid);
    const { code, stderr } = await child.done;
    if (!last) report.kills++;
    if (!landed || code === 0) {
      fail(
        `the kill did not land (kill ok: ${landed}, exit ${code}): ${
          stderr.slice(0, 500)
        }`,
      );
    }

    // 4. Uploads: the previous kill's are gone once this run saved.
    await uploads.afterKill(child.saves() > 0, fail);
    // 2. Nothing visible half-written.
    report.objectsVerified += await checkFolder(store, main, fail);
    report.objectsVerified += await checkFolder(store, net, fail);

    // 3. Resume from the bucket finds a checkpoint that holds its step.
    const step = await checkResume(directory, durable, fail, {
      store,
      allValues: true,
    });
    if (step === "threw") continue;
    if (step === "none") {
      if (durable > 0) fail(`no checkpoint found after step ${durable}`);
      else if (!last) report.killsBeforeFirstSave++;
      continue;
    }
    durable = step;
    report.lastStep = step;
    await pruneEarlierRuns(store, main, net);
    if ((i + 1) % 10 === 0 || i + 1 >= kills) {
      log(
        `${Math.min(i + 1, kills)} kills${
          last ? " + the last run" : ""
        }, ${report.failures.length} failures, step ${step}, ${report.killsDuringUpload} kills left an upload, ${report.uploadsCleaned} cleaned`,
      );
    }
  }
  return report;
}

/**
 * Files of earlier runs accumulate (another prefix each run, as in
 * MindFormers); remove the main files meta.json does not list and every
 * network-only file (verified above; resume never reads them), to bound
 * the server's memory.
 */
async function pruneEarlierRuns(
  store: S3Store,
  main: string,
  ...others: string[]
): Promise<void> {
  const meta = await store.readFile(`${main}/meta.json`, 1 << 20).catch(() =>
    null
  );
  if (meta === null) return; // found by name: keep everything
  const listed = new Set<string>(
    JSON.parse(new TextDecoder().decode(meta)).files.map((
      f: { name: string },
    ) => f.name),
  );
  for (const e of (await store.list(main)) ?? []) {
    if (e.name.endsWith(".ckpt") && !listed.has(e.name)) {
      await store.remove(`${main}/${e.name}`);
    }
  }
  for (const folder of others) {
    for (const e of (await store.list(folder)) ?? []) {
      if (e.name.endsWith(".ckpt")) await store.remove(`${folder}/${e.name}`);
    }
  }
}

/** What {@linkcode runS3RankKills} found, beyond the single-rank counts. */
export interface S3RankKillReport extends S3KillReport {
  /** The step the final resume found, every rank's file verified. */
  resumedStep: number;
  /** Integrated files the ranks' merges left in the bucket. */
  integratedFiles: number;
  /** Whether merging the resumed step's slices from the bucket gave the whole tensor. */
  mergeOk: boolean;
}

/** The whole `m` at `step`: row r is step·1000 + r. */
function wholeAt(step: number, ranks: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < ranks * ROWS_PER_RANK; r++) {
    for (let c = 0; c < COLS; c++) out.push(step * 1000 + r);
  }
  return out;
}

/**
 * Rounds of three rank processes saving slices to the bucket, each killed
 * at its own random moment; after each round every object verifies and
 * every rank resumes the same step with the values saved there; at the end
 * the resumed step's slices are merged from the bucket and compared with
 * the whole tensor built here.
 */
export async function runS3RankKills(
  options: S3KillOptions & { ranks?: number },
): Promise<S3RankKillReport> {
  const { directory } = options;
  const ranks = options.ranks ?? 3;
  const random = rng(options.seed ?? 1);
  const maxDelay = options.maxDelayMs ?? 1500;
  const elements = options.elements ?? 1_572_864;
  const lease = options.leaseMs ?? 1500;
  const log = options.log ?? (() => {});
  const { store, objects, childFlags } = s3Harness(lease);
  const folders = Array.from({ length: ranks }, (_, r) => [
    `${directory}/checkpoint/rank_${r}`,
    `${directory}/checkpoint_network/rank_${r}`,
  ]).flat();
  const integratedDir = `${directory}/checkpoint/integrated`;
  const report: S3RankKillReport = {
    kills: 0,
    failures: [],
    badResumes: 0,
    killsDuringUpload: 0,
    uploadsCleaned: 0,
    killsBeforeFirstSave: 0,
    objectsVerified: 0,
    lastStep: 0,
    resumedStep: 0,
    integratedFiles: 0,
    mergeOk: false,
  };
  const uploads = new Uploads(objects, folders, report);
  // A merge killed mid-upload leaves an upload in integrated/, aborted only
  // by the next merge (under the merge lock), not by a run's start: counted,
  // not required gone.
  const merges = new Uploads(objects, [integratedDir], report);
  let durable = 0;
  const scratch = await Deno.makeTempDir({ prefix: "ckpt_s3_ranks_" });
  try {
    for (let round = 0; round <= options.kills; round++) {
      const last = round === options.kills;
      const fail = (what: string) => {
        const where = last ? "last round" : `round ${round + 1}`;
        report.failures.push(`${where}: ${what}`);
        log(`FAIL ${where}: ${what}`);
      };
      const barrier = `${scratch}/barrier_${round}`;
      await Deno.mkdir(barrier);
      const children = Array.from({ length: ranks }, (_, r) =>
        start(
          childFlags,
          [
            directory,
            String(elements),
            String(lease),
            String(r),
            String(ranks),
            barrier,
          ],
          scratch,
        ));
      await Promise.all(children.map((c) => Promise.race([c.ready, c.done])));
      const steps = new Set<number>();
      for (const [r, c] of children.entries()) {
        if (c.hello === null) {
          const { code, stderr } = await c.done;
          fail(
            `rank ${r} did not start (exit ${code}): ${stderr.slice(0, 2000)}`,
          );
          continue;
        }
        steps.add(c.hello.resumedAt);
        if (!c.hello.resumeOk || c.hello.resumedAt < durable) {
          report.badResumes++;
          fail(
            `rank ${r} resumed at step ${c.hello.resumedAt} (durable ${durable}) with ${
              c.hello.resumeOk ? "the right" : "other"
            } values`,
          );
        }
      }
      if (steps.size > 1) {
        fail(`the ranks resumed different steps: ${[...steps]}`);
      }
      // Each rank dies at its own moment (the others then wait at the
      // barrier until their own kill); the last round saves once first.
      await Promise.all(children.map(async (c) => {
        if (c.hello === null) return;
        // After the rank's first commit: a rank killed before it saved
        // (with or without its folder) is a rank with no checkpoint, and
        // resume refuses a run where others have one (the same on a local
        // disk; see the report).
        await Promise.race([c.firstSave, c.done]);
        if (!last) {
          await new Promise((ok) => setTimeout(ok, random() * maxDelay));
        }
        const landed = await kill(c.hello.pid);
        const { code } = await c.done;
        if (!last) report.kills++;
        if (!landed || code === 0) fail(`a kill did not land (exit ${code})`);
      }));
      await uploads.afterKill(children.every((c) => c.saves() > 0), fail);
      await merges.afterKill(false, fail);
      for (const f of [...folders, integratedDir]) {
        report.objectsVerified += await checkFolder(store, f, fail);
      }
      let found;
      try {
        found = await findResumeCheckpoint(directory, {
          verify: "full",
          store,
        });
      } catch (e) {
        fail(`findResumeCheckpoint threw: ${(e as Error).message}`);
        continue;
      }
      if (found === null) {
        if (durable > 0) fail(`no checkpoint found after step ${durable}`);
        else if (!last) report.killsBeforeFirstSave++;
        continue;
      }
      if (found.skipped.length > 0) {
        fail(
          `resume skipped ${
            JSON.stringify(found.skipped.map((s) => `${s.file}: ${s.reason}`))
          }`,
        );
      }
      const step = found.context.stepNum;
      if (step < durable) {
        fail(`resume went back to step ${step} from ${durable}`);
      }
      durable = step;
      report.lastStep = step;
      if (last) {
        // Resume and the integrated merge from the bucket.
        report.resumedStep = step;
        const merged = `${directory}/merged/CKP-${step}.ckpt`;
        // The layouts are given: a file of an earlier run is not in the
        // meta.json the newest run wrote.
        await mergeSlicedCheckpoints(found.files, merged, {
          store,
          slices: found.files.map((_, r) => ({
            m: {
              globalShape: [ranks * ROWS_PER_RANK, COLS],
              offset: [r * ROWS_PER_RANK, 0],
            },
          })),
        });
        const whole = (await loadCheckpoint(merged, { store })).get(
          "m",
        ) as Tensor<"Float32">;
        report.mergeOk = whole !== undefined &&
          [...whole.data].join() === wholeAt(step, ranks).join();
        if (!report.mergeOk) {
          fail(
            `the merge of step ${step} from the bucket is not the whole tensor: ${whole?.data}`,
          );
        }
        if (found.integrated !== undefined) {
          const integrated = (await loadCheckpoint(found.integrated, { store }))
            .get("m") as Tensor<"Float32">;
          if ([...integrated.data].join() !== wholeAt(step, ranks).join()) {
            fail(
              `${found.integrated} does not hold the whole tensor of step ${step}`,
            );
          }
        }
      }
      log(
        `round ${round + 1}${
          last ? " (last: saved once, then killed)" : ""
        }: resumed step ${step}, ${report.failures.length} failures, ${report.killsDuringUpload} rounds left an upload, ${report.uploadsCleaned} cleaned`,
      );
    }
    report.integratedFiles = ((await store.list(integratedDir)) ?? [])
      .filter((e) => e.name.endsWith(".ckpt")).length;
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  return report;
}
