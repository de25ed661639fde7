// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** Resume across ranks: the step every rank has, and ranks without one. */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { CheckpointMonitor, findResumeCheckpoint } from "../mod.ts";
import { withTempDir } from "./_helpers.ts";
import { flip, model, names, run } from "./_resume_helpers.ts";

Deno.test("findResumeCheckpoint takes the minimum across ranks, and a rank's corrupt file moves every rank back", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 8, { rank: 0 });
    await run(dir, 6, { rank: 1 });
    let found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), [
      "CKP_rank_0-2_1.ckpt",
      "CKP_rank_1-2_1.ckpt",
    ]);
    await flip(`${dir}/checkpoint/rank_1/CKP_rank_1-2_1.ckpt`);
    found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_1-1_4.ckpt",
    ]);
    deepEqual(found!.skipped.map((s) => s.rank), [1]);
  });
});

Deno.test("findResumeCheckpoint finds the step all ranks resumed from when only some ranks saved in the new run", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 4, { rank: 0 });
    await run(dir, 4, { rank: 1 });
    // The resumed run: rank 0 saves step 5 (a new prefix, a new meta.json
    // listing only that file); rank 1 dies before its first save.
    const params = model();
    const monitor = new CheckpointMonitor({
      directory: dir,
      rank: 0,
      saveCheckpointSteps: 1,
      saveNetworkParams: false,
    });
    await monitor.onTrainBegin({
      step: 4,
      epoch: 1,
      stepsPerEpoch: 5,
      network: params,
    });
    await monitor.onStepEnd({
      step: 5,
      epoch: 1,
      stepsPerEpoch: 5,
      network: params,
    });
    await monitor.close();
    const found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_1-1_4.ckpt",
    ]);
    equal(found!.warnings.length, 1);
    ok(found!.warnings[0]!.startsWith("rank 0:"), found!.warnings[0]);
  });
});

Deno.test("findResumeCheckpoint needs only the ranks meta.json records, so an earlier run's extra rank folders do not hold it back", async () => {
  await withTempDir(async (dir) => {
    for (const rank of [0, 1, 2]) await run(dir, 4, { rank, rankSize: 3 });
    // A later run with two ranks (resumed, say, from the integrated file).
    for (const rank of [0, 1]) await run(dir, 8, { rank, rankSize: 2 });
    const meta = JSON.parse(
      await Deno.readTextFile(`${dir}/checkpoint/rank_0/meta.json`),
    );
    equal(meta.files.at(-1).rank_size, 2);
    const found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), [
      "CKP_rank_0_1-2_3.ckpt",
      "CKP_rank_1_1-2_3.ckpt",
    ]);
    deepEqual(found!.warnings, [
      "rank_2 is not part of the run that wrote this checkpoint (its meta.json records 2 ranks): ignored",
    ]);
    // Without rank_size (older meta.json, or no rankSize given) every rank
    // folder counts, as MindFormers' rule has it: the newest key all three
    // list, whatever run wrote it.
    for (const rank of [0, 1]) {
      const path = `${dir}/checkpoint/rank_${rank}/meta.json`;
      const m = JSON.parse(await Deno.readTextFile(path));
      for (const f of m.files) delete f.rank_size;
      await Deno.chmod(path, 0o600);
      await Deno.writeTextFile(path, JSON.stringify(m));
    }
    const old = await findResumeCheckpoint(dir);
    equal(old!.files.length, 3);
    deepEqual(old!.warnings, []);
  });
});

Deno.test("findResumeCheckpoint skips a step whose recorded rank_size has no rank folder", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 4, { rank: 0 });
    const path = `${dir}/checkpoint/rank_0/meta.json`;
    const m = JSON.parse(await Deno.readTextFile(path));
    m.files.at(-1).rank_size = 2;
    await Deno.chmod(path, 0o600);
    await Deno.writeTextFile(path, JSON.stringify(m));
    const found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), ["CKP_rank_0-1_2.ckpt"]);
  });
});

Deno.test("findResumeCheckpoint treats a rank that never made its folder as a rank with no checkpoint", async () => {
  await withTempDir(async (dir) => {
    // rank 1 was killed before its monitor made checkpoint/rank_1.
    await run(dir, 4, { rank: 0 });
    await run(dir, 4, { rank: 2 });
    await rejects(
      findResumeCheckpoint(dir),
      /no checkpoint to resume from verifies:\n {2}rank_1 \(no folder\) has no checkpoint, while other ranks do/,
    );
    // The same rule as a rank folder that holds no checkpoint.
    await Deno.mkdir(`${dir}/checkpoint/rank_1`);
    await rejects(
      findResumeCheckpoint(dir),
      /no checkpoint to resume from verifies:\n {2}rank_1 has no checkpoint, while other ranks do/,
    );
  });
});

Deno.test("findResumeCheckpoint resumes the ranks meta.json records when a higher rank's folder has a gap below it", async () => {
  await withTempDir(async (dir) => {
    // An earlier run of four ranks: rank 2 died before making its folder,
    // rank 3 saved. The later run has two ranks and records rank_size 2.
    await run(dir, 2, { rank: 3, rankSize: 4 });
    for (const rank of [0, 1]) await run(dir, 4, { rank, rankSize: 2 });
    const found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_1-1_4.ckpt",
    ]);
    ok(
      found!.warnings.some((w) => w.startsWith("rank_2 … rank_3 are not part")),
      found!.warnings.join("\n"),
    );
  });
});

Deno.test("findResumeCheckpoint refuses an absurd rank_N rather than scanning up to it", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 2, { rank: 0 });
    await Deno.mkdir(`${dir}/checkpoint/rank_99999999`);
    await rejects(findResumeCheckpoint(dir), /found rank_99999999/);
    // A stray unused name is still not a rank folder.
    await Deno.remove(`${dir}/checkpoint/rank_99999999`);
    equal((await findResumeCheckpoint(dir))!.files.length, 1);
  });
});
