// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `deno task crash:kill [KILLS] [SEED] [MAX_DELAY_MS] [ELEMENTS] [async]`: the large
 * run of the crash-kill harness (tests/_crash_harness.ts). Kills a job
 * saving a checkpoint at every step with SIGKILL at random moments and
 * checks the recovery invariants after each kill; prints the counts and
 * every failure, and exits 1 if there was one.
 *
 * @module
 */

import { runKills } from "../tests/_crash_harness.ts";

const kills = Number(Deno.args[0] ?? 1000);
const seed = Number(Deno.args[1] ?? 1);
const maxDelayMs = Number(Deno.args[2] ?? 300);
const elements = Number(Deno.args[3] ?? 65536);
const asyncSave = Deno.args[4] === "async";
const directory = await Deno.makeTempDir({ prefix: "ckpt_crash_" });
const start = performance.now();
try {
  console.log(
    `crash:kill: ${kills} kills, seed ${seed}, kill 0-${maxDelayMs} ms after start, ${
      elements * 4
    }-byte weights, ${asyncSave ? "asyncSave" : "sync saves"}, in ${directory}`,
  );
  const report = await runKills({
    directory,
    kills,
    seed,
    maxDelayMs,
    elements,
    asyncSave,
    log: (line) => console.log(`  ${line}`),
  });
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(
    `kills tried: ${report.kills}; failures: ${report.failures.length}; kills during a write (temporary file left): ${report.killsDuringWrite}; before the first save: ${report.killsBeforeFirstSave}; temporary files cleaned by the next run: ${report.tempFilesCleaned}; last step resumed: ${report.lastStep}; ${seconds} s`,
  );
  for (const f of report.failures) console.log(`  ${f}`);
  if (report.failures.length > 0) Deno.exitCode = 1;
} finally {
  await Deno.remove(directory, { recursive: true });
}
