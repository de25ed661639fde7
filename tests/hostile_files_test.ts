// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { equal, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_hostile_child.ts", import.meta.url));

interface Attempt {
  subject: string;
  fn: string;
  outcome: string;
  detail: string;
  ms: number;
}

/**
 * Runs `_hostile_child.ts` (default rejection handling, folder-only
 * permissions) and returns its lines; a child still running after 60 s is
 * killed and the test fails naming the attempt that never finished.
 */
async function runChild(dir: string): Promise<Attempt[]> {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--no-check",
      "--quiet",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      "--allow-run=mkfifo,ln",
      CHILD,
      dir,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const last = lines.at(-1);
  ok(
    out.success && last === "done",
    `the child ended with ${out.code} after: ${last}\n${
      new TextDecoder().decode(out.stderr)
    }`,
  );
  return lines.slice(0, -1).map((l) => JSON.parse(l) as Attempt);
}

Deno.test("FIFOs, links to /dev/zero and an oversized meta.json are refused at once by every reader, the CLI and a monitor", async () => {
  await withTempDir(async (dir) => {
    const attempts = await runChild(dir);
    equal(attempts.length, 16, attempts.map((a) => a.fn).join(", "));
    for (const a of attempts) {
      const what = `${a.subject} / ${a.fn}: ${a.outcome} ${a.detail}`;
      ok(a.ms < 5000, `${what} took ${a.ms} ms`);
      switch (a.fn) {
        case "findResumeCheckpoint":
          // The real checkpoint, with the reason the thing was passed over
          // (without meta.json, the newest by time: the later run's).
          equal(
            a.outcome,
            a.subject.endsWith("no meta.json")
              ? "found:later_rank_0-1_1.ckpt"
              : "found:CKP_rank_0-1_2.ckpt",
            what,
          );
          ok(
            /not a regular file|17825792 bytes, more than the 16777216/.test(
              a.detail,
            ),
            what,
          );
          break;
        case "CheckpointMonitor save":
          equal(a.outcome, "saved", what);
          break;
        case "loadCheckpoint":
        case "openCheckpoint":
          equal(a.outcome, "CorruptCheckpointError", what);
          ok(/it is not a regular file/.test(a.detail), what);
          break;
        case "verifyCheckpoint":
          equal(a.outcome, "verify:not-a-file", what);
          break;
        case "cli verify":
        case "cli inspect":
          equal(a.outcome, "exit:1", what);
          ok(/it is not a regular file/.test(a.detail), what);
          break;
        case "cli latest":
          equal(a.outcome, "exit:0", what);
          ok(/rank 0: .*later_rank_0-1_1\.ckpt/.test(a.detail), what);
          ok(/CKP_rank_0-1_9\.ckpt: it is not a regular file/.test(a.detail));
          break;
        default:
          ok(false, `unexpected attempt ${what}`);
      }
    }
  });
});
