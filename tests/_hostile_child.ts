// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child of `hostile_files_test.ts`, run with Deno's default handling of
 * unhandled rejections and read/write permission for one folder: a monitor
 * saves two checkpoints, then things that are not regular files (a FIFO
 * without a writer, a link to `/dev/zero`) and an oversized sparse
 * `meta.json` take the places a reader opens. Every reading function is
 * tried on each; one JSON line per attempt says what came out and how long
 * it took, `done` last. A reader that opens a FIFO blocks forever, one that
 * reads `/dev/zero` never ends: the parent kills the child after a while and
 * names the last attempt printed.
 *
 * Usage: deno run --allow-read=<dir> --allow-write=<dir> --allow-run=mkfifo,ln _hostile_child.ts <dir>
 */
import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadCheckpoint,
  openCheckpoint,
  type Parameter,
  verifyCheckpoint,
} from "../mod.ts";
import { main } from "../cli.ts";

const dir = Deno.args[0]!;
const folder = `${dir}/checkpoint/rank_0`;

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
}

/** Runs `fn`, prints what came out: a value's summary or an error's name. */
async function attempt(
  subject: string,
  fn: string,
  run: () => Promise<unknown>,
): Promise<void> {
  const t0 = performance.now();
  let outcome: string;
  let detail = "";
  try {
    const r = await run();
    if (r !== null && typeof r === "object" && "exit" in r) {
      const c = r as { exit: number; text: string };
      outcome = `exit:${c.exit}`;
      detail = c.text;
    } else if (r !== null && typeof r === "object" && "ok" in r) {
      const v = r as { ok: boolean; kind?: string; reason?: string };
      outcome = v.ok ? "ok" : `verify:${v.kind}`;
      detail = v.reason ?? "";
    } else if (r !== null && typeof r === "object" && "files" in r) {
      const f = r as { files: string[]; warnings: string[] };
      outcome = `found:${f.files.map((p) => p.split("/").pop()).join(",")}`;
      detail = f.warnings.join(" | ");
    } else outcome = typeof r === "string" ? r : r === null ? "null" : "loaded";
  } catch (error) {
    outcome = (error as Error).name;
    detail = (error as Error).message;
  }
  const ms = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ subject, fn, outcome, detail, ms }));
}

/** Runs the CLI's `main` on one path, capturing its exit code and text. */
async function cli(
  command: string,
  path: string,
): Promise<{ exit: number; text: string }> {
  let text = "";
  const exit = await main([command, path], {
    stdout: (t) => void (text += t),
    stderr: (t) => void (text += t),
    isTerminal: false,
  });
  return { exit, text: text.trim() };
}

const network: Parameter<"Float32">[] = [
  { name: "w", dtype: "Float32", shape: [64], data: new Float32Array(64) },
];
const monitor = new CheckpointMonitor({
  directory: dir,
  saveCheckpointSteps: 1,
  saveNetworkParams: false,
});
for (const step of [1, 2]) {
  network[0]!.data.fill(step);
  await monitor.onStepEnd({ step, epoch: 1, stepsPerEpoch: 10, network });
}
await monitor.onTrainEnd();

const meta = `${folder}/meta.json`;
const saved = await Deno.readTextFile(meta);

/** Resume from the folder, its meta.json replaced or removed. */
async function tryFolder(subject: string): Promise<void> {
  await attempt(
    subject,
    "findResumeCheckpoint",
    () => findResumeCheckpoint(dir),
  );
}

// meta.json as a FIFO with no writer, a link to /dev/zero, 17 MiB of holes.
await Deno.remove(meta);
await sh("mkfifo", meta);
await tryFolder("meta.json FIFO");
// A later run's monitor over that folder: it must not block on meta.json.
await attempt("meta.json FIFO", "CheckpointMonitor save", async () => {
  const later = new CheckpointMonitor({
    directory: dir,
    saveCheckpointSteps: 1,
    saveNetworkParams: false,
    prefix: "later",
  });
  await later.onStepEnd({ step: 1, epoch: 1, stepsPerEpoch: 10, network });
  await later.onTrainEnd();
  return "saved";
});
await Deno.remove(meta);
await sh("ln", "-s", "/dev/zero", meta);
await tryFolder("meta.json -> /dev/zero");
await Deno.remove(meta);
await Deno.writeTextFile(meta, saved);
await Deno.truncate(meta, 17 * 1024 * 1024);
await tryFolder("meta.json 17 MiB");
await Deno.remove(meta);
await Deno.writeTextFile(meta, saved);

// Newer "checkpoints" that are a FIFO and a link to /dev/zero.
const fifo = `${folder}/CKP_rank_0-1_9.ckpt`;
const zero = `${folder}/CKP_rank_0-1_8.ckpt`;
await sh("mkfifo", fifo);
await sh("ln", "-s", "/dev/zero", zero);
for (
  const [subject, path] of [["FIFO .ckpt", fifo], ["/dev/zero .ckpt", zero]]
) {
  await attempt(subject!, "loadCheckpoint", () => loadCheckpoint(path!));
  await attempt(subject!, "openCheckpoint", async () => {
    const reader = await openCheckpoint(path!);
    await reader.close();
    return "opened";
  });
  await attempt(subject!, "verifyCheckpoint", () => verifyCheckpoint(path!));
  for (const command of ["verify", "inspect"]) {
    await attempt(subject!, `cli ${command}`, () => cli(command, path!));
  }
}
// Without meta.json, files are found by name: both are candidates.
await Deno.remove(meta);
await tryFolder("FIFO and /dev/zero .ckpt, no meta.json");
await attempt(
  "FIFO and /dev/zero .ckpt, no meta.json",
  "cli latest",
  () => cli("latest", dir),
);
console.log("done");
