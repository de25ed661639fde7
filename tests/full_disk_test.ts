// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadCheckpoint,
  type Parameter,
  type StepContext,
  type Tensor,
} from "../mod.ts";
import { listDir, smallFileSystem, unmount } from "./_helpers.ts";

/** Fills the file system with `filler`, then frees `free` bytes. */
async function fill(filler: string, free: number): Promise<void> {
  const chunk = new Uint8Array(4096);
  using f = await Deno.open(filler, { write: true, create: true });
  let size = 0;
  try {
    while (true) size += await f.write(chunk);
  } catch (error) {
    equal((error as { code?: string }).code, "ENOSPC");
  }
  await f.truncate(Math.max(0, size - free));
}

function ctx(step: number, network: Parameter[]): StepContext {
  return { step, epoch: 1, stepsPerEpoch: 100, network };
}

Deno.test({
  name:
    "a save into a full file system fails naming the file, leaves meta.json, older checkpoints and no temporary file; the next save after space is freed works",
  sanitizeResources: false,
  fn: async () => {
    const dir = await smallFileSystem("1m");
    if (dir === null) {
      console.log("    skipped: cannot mount a tmpfs here (needs root)");
      return;
    }
    try {
      const w: Parameter<"Float32"> = {
        name: "w",
        dtype: "Float32",
        shape: [16384],
        data: new Float32Array(16384),
      };
      const errors: unknown[] = [];
      const monitor = new CheckpointMonitor({
        directory: dir,
        saveCheckpointSteps: 1,
        saveNetworkParams: false,
        onError: (d) => void errors.push(d.error),
      });
      await monitor.onTrainBegin(ctx(0, [w]));
      for (const step of [1, 2]) {
        w.data.fill(step);
        equal(await monitor.onStepEnd(ctx(step, [w])), true);
        await monitor.flush(); // meta.json and retention follow the commit
      }
      const folder = `${dir}/checkpoint/rank_0`;
      const metaBefore = await Deno.readFile(`${folder}/meta.json`);
      const before = await listDir(folder);

      await fill(`${dir}/filler`, 16384);
      w.data.fill(3);
      await rejects(monitor.onStepEnd(ctx(3, [w])), (e: unknown) => {
        ok(e instanceof Error);
        ok(
          /Cannot write ".*CKP_rank_0-1_3\.ckpt": no space left/.test(
            e.message,
          ),
          e.message,
        );
        equal((e as { code?: string }).code, "ENOSPC");
        return true;
      });
      await monitor.flush().catch(() => {});
      equal(errors.length, 1);
      deepEqual(
        await listDir(folder),
        before,
        "no temporary file, no new file",
      );
      deepEqual(await Deno.readFile(`${folder}/meta.json`), metaBefore);
      const found = await findResumeCheckpoint(dir, { verify: "full" });
      deepEqual(found?.skipped, []);
      equal(found?.context.stepNum, 2);
      const t = (await loadCheckpoint(found!.files[0]!)).get("w") as Tensor;
      equal(t.data[0], 2);

      await Deno.remove(`${dir}/filler`);
      w.data.fill(4);
      equal(await monitor.onStepEnd(ctx(4, [w])), true);
      await monitor.flush();
      equal((await findResumeCheckpoint(dir))?.context.stepNum, 4);
      await monitor.close();
    } finally {
      await unmount(dir);
    }
  },
});

Deno.test({
  name:
    "a full file system when meta.json is replaced leaves the previous meta.json, so resume takes the previous checkpoint",
  sanitizeResources: false,
  fn: async () => {
    const dir = await smallFileSystem("1m");
    if (dir === null) {
      console.log("    skipped: cannot mount a tmpfs here (needs root)");
      return;
    }
    try {
      const w: Parameter<"Float32"> = {
        name: "w",
        dtype: "Float32",
        shape: [16384],
        data: new Float32Array(16384),
      };
      const monitor = new CheckpointMonitor({
        directory: dir,
        saveCheckpointSteps: 1,
        saveNetworkParams: false,
      });
      await monitor.onTrainBegin(ctx(0, [w]));
      w.data.fill(1);
      await monitor.onStepEnd(ctx(1, [w]));
      await monitor.flush();
      const folder = `${dir}/checkpoint/rank_0`;
      const size = (await Deno.stat(`${folder}/CKP_rank_0-1_1.ckpt`)).size;
      const metaBefore = await Deno.readFile(`${folder}/meta.json`);
      // Room for the checkpoint's pages, none for meta.json's.
      await fill(`${dir}/filler`, Math.ceil(size / 4096) * 4096);
      w.data.fill(2);
      // The step end resolves once the file is committed; meta.json
      // follows, and its failure comes out of flush().
      await rejects(
        (async () => {
          await monitor.onStepEnd(ctx(2, [w]));
          await monitor.flush();
        })(),
        /Cannot write ".*meta\.json": no space left/,
      );
      deepEqual(await Deno.readFile(`${folder}/meta.json`), metaBefore);
      deepEqual(await listDir(folder), [
        "CKP_rank_0-1_1.ckpt",
        "CKP_rank_0-1_2.ckpt",
        "meta.json",
      ]);
      const found = await findResumeCheckpoint(dir, { verify: "full" });
      equal(
        found?.context.stepNum,
        1,
        "the file meta.json does not list is not trusted",
      );
      deepEqual(found?.skipped, []);
      await monitor.close();
    } finally {
      await unmount(dir);
    }
  },
});

/**
 * Puts a read-only bind mount of `folder` over itself (a file system gone
 * read-only under a running monitor, whose lock file stays open), or takes
 * it away.
 */
async function readOnly(folder: string, on: boolean): Promise<void> {
  const steps = on
    ? [["--bind", folder, folder], ["-o", "remount,ro,bind", folder]]
    : [[folder]];
  for (const args of steps) {
    const r = await new Deno.Command(on ? "mount" : "umount", { args })
      .output();
    equal(r.code, 0, new TextDecoder().decode(r.stderr));
  }
}

Deno.test({
  name:
    "a save into a file system gone read-only fails naming the checkpoint (not only its temporary file), with the OS error's class and code kept; the next save after it is writable again works",
  sanitizeResources: false,
  fn: async () => {
    const dir = await smallFileSystem("1m");
    if (dir === null) {
      console.log("    skipped: cannot mount a tmpfs here (needs root)");
      return;
    }
    try {
      const w: Parameter<"Float32"> = {
        name: "w",
        dtype: "Float32",
        shape: [64],
        data: new Float32Array(64),
      };
      const monitor = new CheckpointMonitor({
        directory: dir,
        saveCheckpointSteps: 1,
        saveNetworkParams: false,
      });
      await monitor.onTrainBegin(ctx(0, [w]));
      await monitor.onStepEnd(ctx(1, [w]));
      await monitor.flush();
      const folder = `${dir}/checkpoint/rank_0`;
      const before = await listDir(folder);
      await readOnly(folder, true);
      try {
        await rejects(monitor.onStepEnd(ctx(2, [w])), (e: unknown) => {
          ok(e instanceof Error);
          ok(
            /^Cannot write ".*\/CKP_rank_0-1_2\.ckpt": .*[Rr]ead-only file system.*; the previous content of ".*CKP_rank_0-1_2\.ckpt" is unchanged and no temporary file is left$/
              .test(e.message),
            e.message,
          );
          equal((e as { code?: string }).code, "EROFS");
          ok(e.cause instanceof Error);
          equal(e.name, e.cause.name, "the OS error's class is kept");
          ok(/\.CKP_rank_0-1_2\.ckpt\.[0-9a-f]+\.tmp/.test(e.cause.message));
          return true;
        });
        await monitor.flush().catch(() => {});
      } finally {
        await readOnly(folder, false);
      }
      deepEqual(await listDir(folder), before);
      w.data.fill(3);
      equal(await monitor.onStepEnd(ctx(3, [w])), true);
      await monitor.flush();
      equal((await findResumeCheckpoint(dir))?.context.stepNum, 3);
      await monitor.close();
    } finally {
      await unmount(dir);
    }
  },
});
