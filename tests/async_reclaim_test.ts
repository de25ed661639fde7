// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The background queue's arena comes back once a file's bytes are written,
 * before its commit (fsync, rename): the next snapshot reuses it instead of
 * copying into a second arena, and the commit's failures are still kept.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { loadCheckpoint, type Tensor } from "../mod.ts";
import { SaveQueue } from "../src/background/save_queue.ts";
import { listDir, withTempDir } from "./_helpers.ts";

const FAULTY = new URL("./_fault_save_worker.ts", import.meta.url);

/** 4 MiB: large enough that a write is not over before the next call. */
function model(fill: number): { w: Tensor<"Float32"> } {
  const n = 1 << 20;
  return {
    w: { dtype: "Float32", shape: [n], data: new Float32Array(n).fill(fill) },
  };
}

async function first(path: string): Promise<number> {
  const loaded = await loadCheckpoint(path);
  return (loaded.get("w") as Tensor<"Float32">).data[0]!;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Runs `fn`, then lets a waiting commit in `dir` go on whatever happened
 * (else closing the queue would wait for it forever).
 */
async function gated(dir: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } finally {
    await Deno.writeTextFile(`${dir}/go`, "");
  }
}

/** Polls (never a time assertion) until `test()` holds, at most ~30 s. */
async function until(test: () => boolean): Promise<void> {
  for (let i = 0; i < 6000 && !test(); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  ok(test(), "the condition never held");
}

/**
 * Saves `commitwait.ckpt` with `queue` (its commit waits for `go`), lets
 * `takeBack` get the arena back while that commit waits, then copies the
 * next save into the same arena and checks both files once the commit
 * goes on. Returns the arena's size.
 */
async function nextSaveReusesArena(
  dir: string,
  queue: SaveQueue,
  takeBack: () => Promise<void>,
): Promise<number> {
  let arena = 0;
  await gated(dir, async () => {
    const net = model(1);
    await queue.enqueue([{ path: `${dir}/commitwait.ckpt`, network: net }]);
    arena = queue.stats.arenaBytes;
    await takeBack();
    // The commit has not run: the file is not there.
    equal(await exists(`${dir}/commitwait.ckpt`), false);
    // The next snapshot copies into the same arena, now.
    net.w.data.fill(2);
    const held = queue.hold([{ path: "", network: net }]);
    net.w.data.fill(3);
    equal(queue.stats.arenaBytes, arena);
    await Deno.writeTextFile(`${dir}/go`, "");
    await queue.enqueue([{ path: `${dir}/b.ckpt`, network: net }], {}, held);
    await queue.flush();
    equal(await first(`${dir}/commitwait.ckpt`), 1);
    equal(await first(`${dir}/b.ckpt`), 2);
  });
  return arena;
}

Deno.test("the arena comes back once the bytes are written, before the commit; the next save reuses it", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ workerUrl: FAULTY });
    const arena = await nextSaveReusesArena(dir, queue, async () => {
      await until(() => queue.free);
      ok(queue.pending, "the save is in flight");
      equal(queue.stats.early, 1);
    });
    equal(queue.stats.arenaBytes, arena);
  });
});

Deno.test("reclaim waits for the save in flight to write its bytes and takes the arena back, its commit still running", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ workerUrl: FAULTY });
    await nextSaveReusesArena(dir, queue, () => {
      equal(queue.free, false);
      // Blocks until the Worker posts the slabs (the commit waits for `go`).
      ok(queue.reclaim());
      ok(queue.free);
      ok(queue.pending);
      equal(queue.stats.reclaims, 1);
      return Promise.resolve();
    });
  });
});

Deno.test("a commit that fails after every byte was written is thrown by the next enqueue; the file is not there", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ workerUrl: FAULTY });
    const net = model(1);
    await queue.enqueue([{ path: `${dir}/commitfail.ckpt`, network: net }]);
    // The arena came back early (the bytes were written) ...
    ok(queue.reclaim());
    equal(queue.stats.early, 1);
    const held = queue.hold([{ path: "", network: net }]);
    // ... and the commit's failure is not lost.
    await rejects(
      queue.enqueue([{ path: `${dir}/b.ckpt`, network: net }], {}, held),
      (error: Error) => {
        match(error.message, /commitfail\.ckpt/);
        match(error.message, /Input\/output error/);
        return true;
      },
    );
    // The failed enqueue gave its copy back; nothing is left behind.
    ok(queue.free);
    deepEqual(await listDir(dir), []);
    await queue.flush();
  });
});

Deno.test("a save of two files keeps the arena until the second is written; the first's commit does not free it", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ workerUrl: FAULTY });
    await gated(dir, async () => {
      const net = model(1);
      await queue.enqueue([
        { path: `${dir}/a.ckpt`, network: net },
        { path: `${dir}/commitwait.ckpt`, network: net },
      ]);
      await until(() => queue.free);
      // Freed only by the second (last) file: the first one is committed.
      ok(await exists(`${dir}/a.ckpt`));
      equal(await exists(`${dir}/commitwait.ckpt`), false);
      equal(queue.stats.early, 1);
      await Deno.writeTextFile(`${dir}/go`, "");
      await queue.flush();
      equal(await first(`${dir}/commitwait.ckpt`), 1);
    });
  });
});

Deno.test("reclaim with nothing in flight, or a save of another store, returns at once", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue();
    ok(queue.reclaim());
    const net = model(1);
    const held = queue.hold([{ path: "", network: net }]);
    // Held, not writing: nothing to wait for.
    equal(queue.reclaim(), false);
    equal(queue.stats.reclaims, 0);
    queue.release(held);
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network: net }]);
    await queue.flush();
    equal(await first(`${dir}/a.ckpt`), 1);
  });
});

Deno.test("a save that ends a reservation is written at once: the next snapshot reclaims its arena though this thread never returned to its event loop", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ slabSize: 1 << 20 });
    const network = model(3);
    const files = [{ path: `${dir}/a.ckpt`, network }];
    queue.reserve(files); // still preparing when the save comes
    const held = queue.hold(files);
    const enqueued = queue.enqueue(files, {}, held);
    // A loop step that never yields: only the Worker can make progress.
    const end = performance.now() + 3000;
    while (performance.now() < end) { /* compute */ }
    ok(queue.reclaim(), "the bytes were written while the loop ran");
    equal(queue.stats.reclaims, 1);
    await enqueued;
    await queue.flush();
    equal(await first(`${dir}/a.ckpt`), 3);
  });
});
