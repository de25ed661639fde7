// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok } from "node:assert/strict";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import {
  findResumeCheckpoint,
  loadCheckpoint,
  type ResumeCheckpoint,
  type Tensor,
  verifyCheckpoint,
} from "../mod.ts";
import { spawnChild, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_crash_child.ts", import.meta.url));
const RANKS = 3;

/**
 * Starts one process per rank in the shared folder (each resuming from the
 * file chosen for it, as MindFormers' rank 0 chooses for all), in lockstep
 * (a barrier between steps, as data-parallel ranks are), saving at every
 * step and keeping 2, lets them run for `runMs`, then SIGKILLs every one at
 * once.
 */
async function round(
  directory: string,
  found: ResumeCheckpoint | null,
  runMs: number,
): Promise<void> {
  const children = Array.from({ length: RANKS }, (_, rank) => {
    const child = spawnChild(CHILD, directory, [
      directory,
      "4096",
      String(rank),
      found?.files[rank] ?? "-",
      String(found?.context.initialStep ?? 0),
      String(RANKS),
    ]);
    return child;
  });
  const pids = await Promise.all(children.map(async (c) => {
    const reader = c.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(await new Response(c.stderr).text());
      text += value;
    }
    void (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    return JSON.parse(text.split("\n")[0]!).pid as number;
  }));
  await new Promise((r) => setTimeout(r, runMs));
  // One kill for all ranks, as when a node goes down.
  const out = await new Deno.Command("kill", {
    args: ["-KILL", ...pids.map(String)],
  }).output();
  ok(out.success);
  for (const c of children) {
    equal((await c.status).success, false);
    await c.stderr.cancel();
  }
}

Deno.test({
  name:
    "several rank processes saving into one folder, killed with SIGKILL: resume takes the newest step every rank committed, and every rank's file verifies and holds it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTempDir(async (directory) => {
      let found: ResumeCheckpoint | null = null;
      let previous = 0;
      for (let r = 0; r < 4; r++) {
        await round(directory, found, 500);
        await Deno.remove(`${directory}/barrier`, { recursive: true })
          .catch(() => {});
        found = await findResumeCheckpoint(directory, { verify: "full" })
          .catch(async (e) => {
            const seen: string[] = [];
            for (let k = 0; k < RANKS; k++) {
              const dir = `${directory}/checkpoint/rank_${k}`;
              const meta = await Deno.readTextFile(`${dir}/meta.json`)
                .then((t) =>
                  JSON.parse(t).files.map((f: { name: string }) => f.name)
                )
                .catch(() => "none");
              const files = [...Deno.readDirSync(dir)].map((f) => f.name);
              seen.push(`rank ${k}: meta ${meta}; files ${files.sort()}`);
            }
            throw new Error(`round ${r}: ${seen.join(" | ")}`, { cause: e });
          });
        ok(found, `round ${r}: nothing to resume from`);
        equal(found.files.length, RANKS);
        deepEqual(found.skipped, []);
        const step = found.context.stepNum;
        ok(
          step >= previous,
          `round ${r}: went back from ${previous} to ${step}`,
        );
        previous = step;
        // Each rank's file: its own folder and prefix, the same epoch and step.
        for (const [rank, file] of found.files.entries()) {
          ok(file.includes(`/rank_${rank}/CKP_rank_${rank}`), file);
          ok(basename(file).endsWith(`-${found.epoch}_${found.step}.ckpt`));
          ok((await verifyCheckpoint(file)).ok);
          const w = (await loadCheckpoint(file)).get("w") as Tensor<"Float32">;
          equal(w.data[0], step, `${file} holds step ${step}`);
        }
        // The newest rank-wise common step is the minimum of the ranks' last.
        let min = Infinity;
        for (let rank = 0; rank < RANKS; rank++) {
          const meta = JSON.parse(
            await Deno.readTextFile(
              `${directory}/checkpoint/rank_${rank}/meta.json`,
            ),
          );
          min = Math.min(min, meta.global_step);
        }
        ok(step <= min, `step ${step} is past a rank's last ${min}`);
      }
      ok(previous > 0);
    });
  },
});
