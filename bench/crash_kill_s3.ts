// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `deno task crash:kill:s3 [KILLS] [SEED] [MAX_DELAY_MS] [ELEMENTS] [RANKS]`:
 * the crash-kill harness pointed at object storage
 * (tests/_s3_crash_harness.ts). A job saving to
 * `s3://$CKPT_S3_BUCKET/crash-…` at every step is SIGKILLed at random
 * (seeded) moments; after each kill the run's objects, the resume and the
 * incomplete uploads are checked against the server. With RANKS > 1, each
 * of KILLS rounds runs that many rank processes saving slices, kills each
 * at its own moment, and the last round ends with the merge from the
 * bucket. Needs the variables of `scripts/ceph-dev.sh env` (or any S3
 * endpoint's). Prints the counts, the time and the load average, and every
 * failure; exits 1 if there was one.
 *
 * @module
 */

import { runS3Kills, runS3RankKills } from "../tests/_s3_crash_harness.ts";
import { removeTree } from "../tests/_s3_helpers.ts";
import { storeFor } from "../mod.ts";

const kills = Number(Deno.args[0] ?? 200);
const seed = Number(Deno.args[1] ?? 1);
const maxDelayMs = Number(Deno.args[2] ?? 1500);
const elements = Number(Deno.args[3] ?? 1_572_864);
const ranks = Number(Deno.args[4] ?? 1);
const bucket = Deno.env.get("CKPT_S3_BUCKET");
if (bucket === undefined) {
  throw new Error(
    'set CKPT_S3_BUCKET and the AWS_* variables (eval "$(bash scripts/ceph-dev.sh env)")',
  );
}
const directory = `s3://${bucket}/crash-${crypto.randomUUID().slice(0, 8)}`;
const load = () => Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(
  `crash:kill:s3: ${kills} ${
    ranks > 1 ? `rounds of ${ranks} ranks` : "kills"
  }, seed ${seed}, kill 0-${maxDelayMs} ms after ${
    ranks > 1 ? "each rank's first commit" : "the resume"
  }, ${elements * 4}-byte weights, in ${directory}; load average ${load()}`,
);
const start = performance.now();
try {
  const options = {
    directory,
    kills,
    seed,
    maxDelayMs,
    elements,
    log: (line: string) => console.log(`  ${line}`),
  };
  const rankReport = ranks > 1
    ? await runS3RankKills({ ...options, ranks })
    : null;
  const report = rankReport ?? await runS3Kills(options);
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  const extra = rankReport !== null
    ? `; resumed step ${rankReport.resumedStep} merged from the bucket: ${
      rankReport.mergeOk ? "whole tensor" : "WRONG"
    }; integrated files: ${rankReport.integratedFiles}`
    : "";
  console.log(
    `kills: ${report.kills}; failures: ${report.failures.length}; bad resumes: ${report.badResumes}; objects verified: ${report.objectsVerified} (none half-written unless listed below); kills that left an incomplete upload: ${report.killsDuringUpload}; incomplete uploads cleaned by the next run: ${report.uploadsCleaned}; kills before the first save: ${report.killsBeforeFirstSave}; last step: ${report.lastStep}${extra}; ${seconds} s; load average ${load()}`,
  );
  for (const f of report.failures) console.log(`  ${f}`);
  if (report.failures.length > 0) Deno.exitCode = 1;
} finally {
  await removeTree(storeFor(directory), directory);
}
