// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok } from "node:assert/strict";
import { type KillOptions, runKills } from "./_crash_harness.ts";
import { withTempDir } from "./_helpers.ts";

/** A test that kills the harness's job `kills` times and checks every resume. */
function killTest(
  name: string,
  options: Omit<KillOptions, "directory" | "log">,
): void {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      await withTempDir(async (directory) => {
        const report = await runKills({
          ...options,
          directory,
          log: (line) => console.log(`    ${line}`),
        });
        console.log(`    ${JSON.stringify(report)}`);
        deepEqual(report.failures, []);
        equal(report.kills, options.kills);
        ok(report.lastStep > 0, "some checkpoint was committed");
      });
    },
  });
}

killTest(
  "SIGKILL at random moments: resume always finds a checkpoint that verifies and holds its step, no final name holds a partial file, temporary files are cleaned by the next run",
  { kills: 25, seed: 20261129, maxDelayMs: 250 },
);

killTest(
  "SIGKILL at random moments with asyncSave (the save Worker, its arena reservation and its writes killed with the process): the same invariants hold",
  {
    kills: 12,
    seed: 20261206,
    maxDelayMs: 400,
    elements: 1 << 20,
    asyncSave: true,
  },
);
