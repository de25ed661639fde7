// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Everything the monitor does, with `directory: "s3://bucket/run"`, against
 * a real S3 server (Ceph's RADOS Gateway from `scripts/ceph-dev.sh` in CI;
 * any endpoint given by AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and CKPT_S3_BUCKET). The store is the one the
 * library picks for `s3://` paths from the environment: nothing here passes
 * a store object. Ignored without a server; failing in CI without one.
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadCheckpoint,
  loadParamsInto,
  type Parameter,
  storeFor,
  verifyCheckpoint,
} from "../mod.ts";
import { main } from "../cli.ts";
import { removeTree, variable } from "./_s3_helpers.ts";
import { s3OptionsFromEnv } from "../src/store/s3/mod.ts";
import { S3Client } from "../src/store/s3/_client.ts";
import { S3Objects } from "../src/store/s3/_head.ts";
import { listIncompleteUploads } from "../src/store/s3/_listing.ts";
import { resolveS3Options } from "../src/store/s3/_options.ts";

const BUCKET = variable("CKPT_S3_BUCKET");
const READY = BUCKET !== undefined &&
  variable("AWS_ENDPOINT_URL") !== undefined &&
  variable("AWS_ACCESS_KEY_ID") !== undefined;

if (!READY && variable("CI") !== undefined) {
  Deno.test("monitor on S3: a test server is configured in CI", () => {
    throw new Error(
      "CI is set but CKPT_S3_BUCKET, AWS_ENDPOINT_URL or AWS_ACCESS_KEY_ID is not: .ci/run must start scripts/ceph-dev.sh and export its env",
    );
  });
}

function s3Test(name: string, fn: (dir: string) => Promise<void>): void {
  Deno.test({
    name: `monitor on S3: ${name}`,
    ignore: !READY,
    fn: async () => {
      const dir = `s3://${BUCKET}/run-${crypto.randomUUID().slice(0, 8)}`;
      try {
        await fn(dir);
      } finally {
        await removeTree(storeFor(dir), dir);
      }
    },
  });
}

function network(n = 300_000): Parameter[] {
  return [
    { name: "w", dtype: "Float32", shape: [n], data: new Float32Array(n) },
    { name: "b", dtype: "Int32", shape: [4], data: new Int32Array(4) },
  ];
}

async function train(
  monitor: CheckpointMonitor,
  net: Parameter[],
  steps: number,
): Promise<void> {
  for (let step = 1; step <= steps; step++) {
    (net[0]!.data as Float32Array).fill(step);
    (net[1]!.data as Int32Array).fill(-step);
    await monitor.onStepEnd({
      step,
      epoch: 1,
      stepsPerEpoch: steps,
      network: net,
    });
  }
  await monitor.onTrainEnd({
    step: steps,
    epoch: 1,
    stepsPerEpoch: steps,
    network: net,
  });
  await monitor.close();
}

for (const asyncSave of [false, true]) {
  s3Test(
    `saves, keeps the newest 2 and resumes (asyncSave: ${asyncSave}, AES-GCM)`,
    async (dir) => {
      const key = new Uint8Array(32).fill(5);
      const net = network();
      const saved: string[] = [];
      const removed: string[] = [];
      const monitor = new CheckpointMonitor({
        directory: dir,
        saveCheckpointSteps: 2,
        keepCheckpointMax: 2,
        asyncSave,
        encKey: key,
        onSaved: (d) => void (d.kind === "main" && saved.push(d.file)),
        onRemoved: (d) => void removed.push(d.file),
      });
      await train(monitor, net, 8);
      equal(saved.length, 4);
      equal(removed.filter((f) => f.includes("/checkpoint/")).length, 2);
      const rank = `${dir}/checkpoint/rank_0`;
      const names = ((await storeFor(dir).list(rank)) ?? [])
        .map((e) => e.name).sort();
      deepEqual(names, [
        "CKP_rank_0-1_6.ckpt",
        "CKP_rank_0-1_8.ckpt",
        "meta.json",
      ]);

      const found = await findResumeCheckpoint(dir, { decKey: key });
      ok(found !== null);
      equal(found.step, 8);
      equal(found.files[0], `${rank}/CKP_rank_0-1_8.ckpt`);
      const target = network();
      await loadParamsInto(
        target,
        await loadCheckpoint(found.files[0]!, { decKey: key }),
        {
          strict: true,
        },
      );
      equal((target[0]!.data as Float32Array)[123], 8);
      equal((target[1]!.data as Int32Array)[3], -8);
      const verified = await verifyCheckpoint(found.files[0]!, { decKey: key });
      equal(verified.ok, true);
      if (verified.ok) equal(verified.checkedAgainst, "meta.json");
    },
  );
}

s3Test("the CLI's latest, verify and inspect take s3:// paths", async (dir) => {
  const monitor = new CheckpointMonitor({
    directory: dir,
    saveCheckpointSteps: 3,
  });
  await train(monitor, network(1000), 6);
  const run = async (args: string[]) => {
    let out = "";
    const code = await main(args, {
      stdout: (t) => void (out += t),
      stderr: (t) => void (out += t),
      isTerminal: false,
    });
    return { code, out };
  };
  const latest = await run(["latest", "--json", dir]);
  equal(latest.code, 0, latest.out);
  equal(JSON.parse(latest.out).pick.step, 6);
  const file = `${dir}/checkpoint/rank_0/CKP_rank_0-1_6.ckpt`;
  const verify = await run(["verify", file]);
  equal(verify.code, 0, verify.out);
  const inspect = await run(["inspect", file]);
  equal(inspect.code, 0, inspect.out);
  ok(inspect.out.includes("w"));
});

s3Test(
  "three ranks save slices; the last to commit a step merges them once, claimed by a conditional create",
  async (dir) => {
    const monitors = [0, 1, 2].map((rank) =>
      new CheckpointMonitor({
        directory: dir,
        rank,
        rankSize: 3,
        saveCheckpointSteps: 2,
      })
    );
    const slices = [0, 1, 2].map((rank): Parameter[] => [{
      name: "m",
      dtype: "Float32",
      shape: [1, 3],
      data: new Float32Array(3),
      slice: { globalShape: [3, 3], offset: [rank, 0] },
    }]);
    for (let step = 1; step <= 4; step++) {
      for (const rank of [0, 1, 2]) {
        (slices[rank]![0]!.data as Float32Array).fill(step * 10 + rank);
        await monitors[rank]!.onStepEnd({
          step,
          epoch: 1,
          stepsPerEpoch: 4,
          network: slices[rank]!,
        });
      }
    }
    for (const [rank, m] of monitors.entries()) {
      await m.onTrainEnd({
        step: 4,
        epoch: 1,
        stepsPerEpoch: 4,
        network: slices[rank]!,
      });
      await m.close();
    }
    const found = await findResumeCheckpoint(dir);
    ok(found !== null);
    equal(found.files.length, 3);
    equal(found.step, 4);
    ok(found.integrated !== undefined, "an integrated file");
    const whole = (await loadCheckpoint(found.integrated!)).get("m") as {
      data: Float32Array;
    };
    deepEqual([...whole.data], [40, 40, 40, 41, 41, 41, 42, 42, 42]);
  },
);

s3Test(
  "a rank killed before it made its rank folder counts as a rank with no checkpoint",
  async (dir) => {
    const save = (rank: number, rankSize: number, steps: number) =>
      train(
        new CheckpointMonitor({
          directory: dir,
          rank,
          rankSize,
          saveCheckpointSteps: 2,
          saveNetworkParams: false,
        }),
        network(1000),
        steps,
      );
    // rank 1 of 3 never started: no checkpoint/rank_1/ marker at all.
    await save(0, 3, 2);
    await save(2, 3, 2);
    equal(await storeFor(dir).stat(`${dir}/checkpoint/rank_1`), null);
    await rejects(
      findResumeCheckpoint(dir),
      /rank_1 \(no folder\) has no checkpoint, while other ranks do/,
    );
    // A later run of two ranks records rank_size 2: rank_2's folder above
    // the gap is an earlier run's, and resume takes ranks 0 and 1.
    await save(1, 2, 4);
    await save(0, 2, 4);
    const found = await findResumeCheckpoint(dir);
    equal(found?.step, 4);
    equal(found?.files.length, 2);
  },
);

s3Test(
  "a run's start aborts a killed merge's upload in integrated/, but never one a live merge owns, and does not wait for it",
  async (dir) => {
    const env = s3OptionsFromEnv();
    const objects = new S3Objects(
      new S3Client(
        resolveS3Options({ ...env, credentials: env.credentials! }).client,
      ),
    );
    const integrated = `${dir}/checkpoint/integrated`;
    const bucket = BUCKET!;
    const key = `${integrated.slice(`s3://${bucket}/`.length)}/CKP-1_4.ckpt`;
    /** What a merge killed mid-upload leaves: an upload begun, never ended. */
    const begin = () =>
      objects.client.send({
        method: "POST",
        bucket,
        key,
        query: { uploads: "" },
        action: "begin the upload of",
      });
    const uploads = async () =>
      (await listIncompleteUploads(objects, integrated)).length;
    const start = async () => {
      const m = new CheckpointMonitor({
        directory: dir,
        saveCheckpointSteps: 1,
        saveNetworkParams: false,
      });
      await train(m, network(1000), 1);
    };
    const store = storeFor(dir);
    await store.ensureDir(integrated);
    await begin();
    equal(await uploads(), 1);
    // A live merge holds the lock: its upload stays, start-up goes on.
    {
      await using _merge = await store.lock(`${integrated}/.lock`);
      await start();
      equal(await uploads(), 1);
    }
    // No merge running: the next start aborts it.
    await start();
    equal(await uploads(), 0);
  },
);
