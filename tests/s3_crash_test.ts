// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * SIGKILLs against the bucket, on a real S3 server (Ceph's RADOS Gateway
 * from `scripts/ceph-dev.sh` in CI; any endpoint given by AWS_ENDPOINT_URL,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and CKPT_S3_BUCKET): the short
 * form of `deno task crash:kill:s3`, and three rank processes saving slices,
 * killed at random moments, then resume and the merge from the bucket.
 * Ignored without a server (s3_monitor_test.ts fails in CI without one).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { storeFor } from "../mod.ts";
import { runS3Kills, runS3RankKills } from "./_s3_crash_harness.ts";
import { removeTree, variable } from "./_s3_helpers.ts";

const BUCKET = variable("CKPT_S3_BUCKET");
const READY = BUCKET !== undefined &&
  variable("AWS_ENDPOINT_URL") !== undefined &&
  variable("AWS_ACCESS_KEY_ID") !== undefined;

function s3Test(name: string, fn: (dir: string) => Promise<void>): void {
  Deno.test({
    name: `kills on S3: ${name}`,
    ignore: !READY,
    // Children's pipes outlive the kills by a moment.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const dir = `s3://${BUCKET}/kill-${crypto.randomUUID().slice(0, 8)}`;
      try {
        await fn(dir);
      } finally {
        await removeTree(storeFor(dir), dir);
      }
    },
  });
}

s3Test(
  "12 SIGKILLs of a job saving 6 MiB checkpoints (multipart): no bad resume, nothing visible half-written, the next run aborts the uploads a kill left",
  async (directory) => {
    const report = await runS3Kills({ directory, kills: 12, seed: 7 });
    deepEqual(report.failures, []);
    equal(report.kills, 12);
    equal(report.badResumes, 0);
    ok(report.objectsVerified > 0, "objects were checked");
    ok(report.lastStep > 0, "some checkpoint was committed");
  },
);

s3Test(
  "three rank processes saving slices, each killed at its own moment, 3 rounds: every rank resumes the same step with its values; the merge from the bucket is the whole tensor",
  async (directory) => {
    const report = await runS3RankKills({
      directory,
      kills: 3,
      ranks: 3,
      seed: 3,
    });
    deepEqual(report.failures, []);
    equal(report.kills, 9);
    equal(report.badResumes, 0);
    ok(report.resumedStep > 0);
    equal(report.mergeOk, true);
  },
);
