// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A run's start removes what a merge killed mid-upload left in
 * `checkpoint/integrated/`, but only under the merge's lock, taken without
 * waiting: a live merge's writes are never touched, and start-up never
 * waits for one.
 */
import { deepEqual } from "node:assert/strict";
import { localStore } from "../mod.ts";
import { withTempDir } from "./_helpers.ts";
import { run } from "./_resume_helpers.ts";

/** What a merge killed mid-write leaves: a temporary file of its target. */
const LEFTOVER = ".CKP-1_4.ckpt.0123456789ab.tmp";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("a run's start removes a killed merge's leftovers from integrated/", async () => {
  await withTempDir(async (dir) => {
    const integrated = `${dir}/checkpoint/integrated`;
    await Deno.mkdir(integrated, { recursive: true });
    await Deno.writeFile(`${integrated}/${LEFTOVER}`, new Uint8Array(10));
    await Deno.writeFile(`${integrated}/CKP-1_2.ckpt`, new Uint8Array(10));
    await run(dir, 2);
    // The committed file stays; the lock file may be left, as by a merge.
    deepEqual(
      (await names(integrated)).filter((n) => n !== ".lock"),
      ["CKP-1_2.ckpt"],
    );
  });
});

Deno.test("a run's start leaves integrated/ alone while a merge holds its lock, and does not wait for it", async () => {
  await withTempDir(async (dir) => {
    const integrated = `${dir}/checkpoint/integrated`;
    await Deno.mkdir(integrated, { recursive: true });
    await Deno.writeFile(`${integrated}/${LEFTOVER}`, new Uint8Array(10));
    // A live merge (here: this test) holds the lock for the whole run; a
    // start-up that waited for it would never finish.
    await using _merge = await localStore.lock(`${integrated}/.lock`);
    await run(dir, 2);
    deepEqual(await names(integrated), [LEFTOVER, ".lock"].sort());
  });
});
