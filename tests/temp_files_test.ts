// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal } from "node:assert/strict";
import { atomicWrite, isTempFileName, removeTempFiles } from "../mod.ts";
import { listDir, withTempDir } from "./_helpers.ts";

Deno.test("removeTempFiles removes only atomicWrite's temporary names", async () => {
  await withTempDir(async (dir) => {
    const ours = [
      ".CKP_rank_0-1_1.ckpt.0123456789ab.tmp",
      ".meta.json.abcdef012345.tmp",
    ];
    const theirs = [
      "CKP_rank_0-1_1.tmp", // MindSpore's own temporary name
      ".x.ckpt.0123456789AB.tmp", // upper case: not ours
      ".x.ckpt.0123456789a.tmp", // 11 digits
      "notes.tmp",
      "CKP_rank_0-1_1.ckpt",
    ];
    for (const n of [...ours, ...theirs]) {
      await Deno.writeTextFile(`${dir}/${n}`, n);
    }
    await Deno.mkdir(`${dir}/.sub.ckpt.0123456789ab.tmp`);
    const removed = await removeTempFiles(dir);
    deepEqual(removed, ours.map((n) => `${dir}/${n}`).sort());
    deepEqual(
      await listDir(dir),
      [...theirs, ".sub.ckpt.0123456789ab.tmp"].sort(),
    );
    deepEqual(await removeTempFiles(`${dir}/missing`), []);
  });
});

Deno.test("isTempFileName matches the names atomicWrite really uses", async () => {
  await withTempDir(async (dir) => {
    let during: string[] = [];
    await atomicWrite(`${dir}/m.ckpt`, async (sink) => {
      await sink.write(new Uint8Array(8));
      during = await listDir(dir);
    });
    equal(during.length, 1);
    equal(isTempFileName(during[0]!), true, during[0]);
    equal(isTempFileName("m.ckpt"), false);
  });
});
