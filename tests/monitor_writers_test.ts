// Two writers on one rank folder, files the monitor did not write, and an
// output folder deleted mid-run (issue 16 items 2, 3 and 7).
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  CheckpointMonitor,
  loadCheckpoint,
  localStore,
  type Tensor,
} from "../mod.ts";
import { listDir, spawnChild, withTempDir } from "./_helpers.ts";
import { MemoryStore } from "./_memory_store.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const CHILD = fileURLToPath(new URL("./_writer_child.ts", import.meta.url));
const CKPT = join("checkpoint", "rank_0");

function network(value: number) {
  return {
    w: {
      dtype: "Float32" as const,
      shape: [2],
      data: new Float32Array(2).fill(value),
    },
  };
}

/**
 * Makes a symbolic link. Deno 2.9 refuses `Deno.symlink` under path-scoped
 * grants, so a child with unscoped read and write does this one call.
 */
async function symlink(target: string, path: string): Promise<void> {
  const out = await new Deno.Command("deno", {
    args: [
      "eval",
      "--allow-read",
      "--allow-write",
      "Deno.symlinkSync(Deno.args[0], Deno.args[1])",
      target,
      path,
    ],
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

async function firstLine(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  return text.split("\n")[0]!;
}

Deno.test("a second writer on a rank folder is refused, naming the holder; the holder's file in flight stays; once it is gone its leftovers are cleaned", async () => {
  await withTempDir(async (dir) => {
    const child = new Deno.Command("deno", {
      args: [
        "run",
        "--no-check",
        "--quiet",
        `--allow-read=${dir},${REPO}`,
        `--allow-write=${dir}`,
        CHILD,
        "hold",
        dir,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin;
    try {
      const line = await firstLine(child.stdout);
      const pid = /^ready ([0-9]+)$/.exec(line)?.[1];
      ok(pid !== undefined, `child said ${JSON.stringify(line)}`);
      const temp = ".CKP_rank_0-1_9.ckpt.0123456789ab.tmp";
      const second = new CheckpointMonitor({ directory: dir, rank: 0 });
      await rejects(second.prepare(), (e: Error) => {
        match(e.message, new RegExp(`process ${pid}\\b`));
        match(e.message, /two writers on one rank folder/);
        return true;
      });
      await rejects(
        second.onStepEnd({
          step: 1,
          epoch: 1,
          stepsPerEpoch: 1,
          network: network(1),
        }),
        new RegExp(`process ${pid}\\b`),
      );
      ok((await listDir(join(dir, CKPT))).includes(temp), "in flight: kept");
      await stdin.close();
      equal((await child.status).code, 0);
      // The holder is gone: this monitor takes the folder, cleans up, saves.
      equal(
        await second.onStepEnd({
          step: 2,
          epoch: 1,
          stepsPerEpoch: 1,
          network: network(2),
        }),
        true,
      );
      await second.close();
      const left = await listDir(join(dir, CKPT));
      ok(!left.includes(temp), "the dead writer's temporary file is removed");
      ok(left.includes("CKP_rank_0-1_1.ckpt"));
    } finally {
      await stdin.close().catch(() => {});
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
    }
  });
});

for (const asyncSave of [false, true]) {
  Deno.test(`an output folder deleted mid-run is created again at the next due step (asyncSave ${asyncSave})`, async () => {
    await withTempDir(async (parent) => {
      const dir = join(parent, "out");
      const child = spawnChild(CHILD, parent, [
        "deleted",
        dir,
        String(asyncSave),
      ], REPO);
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      equal(out.code, 0, stderr);
      equal(stderr, "", "no uncaught error, no stray output");
      const results = JSON.parse(new TextDecoder().decode(out.stdout));
      // On this thread the folders are checked before every save; with
      // asyncSave the save in flight when the folder vanished fails, is
      // reported by the next step end, which saves all the same.
      const saved = asyncSave ? [3, 4] : [2, 3, 4];
      if (asyncSave) {
        deepEqual(results.slice(0, 2), [true, true]);
        match(results[2], /^failed: .*CKP_rank_0-1_2\.ckpt/);
        equal(results[3], true);
      } else {
        deepEqual(results, [true, true, true, true]);
      }
      const names = await listDir(join(dir, CKPT));
      deepEqual(
        names,
        [...saved.map((s) => `CKP_rank_0-1_${s}.ckpt`), "meta.json"].sort(),
      );
      for (const s of saved) {
        const loaded = await loadCheckpoint(
          join(dir, CKPT, `CKP_rank_0-1_${s}.ckpt`),
        );
        deepEqual(Array.from((loaded.get("w") as Tensor<"Float32">).data), [
          s,
          s,
        ]);
      }
      const meta = JSON.parse(
        await Deno.readTextFile(join(dir, CKPT, "meta.json")),
      );
      equal(meta.last_ckpt_file, "CKP_rank_0-1_4.ckpt");
      ok(
        (await listDir(join(dir, "checkpoint_network", "rank_0"))).length === 1,
      );
    });
  });
}

Deno.test("the collision suffix counts every folder the run writes: a user's network file, a link named like a checkpoint", async () => {
  await withTempDir(async (dir) => {
    const netDir = join(dir, "checkpoint_network", "rank_0");
    await Deno.mkdir(netDir, { recursive: true });
    await Deno.writeTextFile(join(netDir, "CKP_rank_0-network.ckpt"), "mine");
    const m = new CheckpointMonitor({ directory: dir, rank: 0 });
    equal((await m.prepare()).prefix, "CKP_rank_0_1");
    await m.onStepEnd({
      step: 1,
      epoch: 1,
      stepsPerEpoch: 1,
      network: network(1),
    });
    await m.close();
    equal(
      await Deno.readTextFile(join(netDir, "CKP_rank_0-network.ckpt")),
      "mine",
    );
    deepEqual(await listDir(netDir), [
      "CKP_rank_0-network.ckpt",
      "CKP_rank_0_1-network.ckpt",
    ]);

    // A link in the rank folder named like the next run's checkpoint.
    const target = join(dir, "user.bin");
    await Deno.writeTextFile(target, "user data");
    await symlink(target, join(dir, CKPT, "CKP_rank_0_2-1_1.ckpt"));
    const next = new CheckpointMonitor({
      directory: dir,
      rank: 0,
      keepCheckpointMax: 1,
    });
    equal((await next.prepare()).prefix, "CKP_rank_0_3");
    for (let step = 1; step <= 3; step++) {
      await next.onStepEnd({
        step,
        epoch: 1,
        stepsPerEpoch: 1,
        network: network(step),
      });
    }
    await next.close();
    equal(await Deno.readTextFile(target), "user data");
    ok((await Deno.lstat(join(dir, CKPT, "CKP_rank_0_2-1_1.ckpt"))).isSymlink);
  });
});

Deno.test("a file that appears under the next checkpoint's name is never replaced: that save fails, the next one goes on", async () => {
  await withTempDir(async (dir) => {
    const errors: string[] = [];
    const m = new CheckpointMonitor({
      directory: dir,
      rank: 0,
      saveNetworkParams: false,
      onError: (d) => void errors.push(d.file),
    });
    const layout = await m.prepare();
    await Deno.writeTextFile(
      join(layout.checkpointDir, "CKP_rank_0-1_2.ckpt"),
      "user",
    );
    await m.onStepEnd({
      step: 1,
      epoch: 1,
      stepsPerEpoch: 10,
      network: network(1),
    });
    await rejects(
      m.onStepEnd({
        step: 2,
        epoch: 1,
        stepsPerEpoch: 10,
        network: network(2),
      }),
      Deno.errors.AlreadyExists,
    );
    equal(
      await m.onStepEnd({
        step: 3,
        epoch: 1,
        stepsPerEpoch: 10,
        network: network(3),
      }),
      true,
    );
    await m.close();
    deepEqual(errors, [join(layout.checkpointDir, "CKP_rank_0-1_2.ckpt")]);
    equal(
      await Deno.readTextFile(
        join(layout.checkpointDir, "CKP_rank_0-1_2.ckpt"),
      ),
      "user",
    );
  });
});

Deno.test("every file access of the monitor goes through its store", async () => {
  await withTempDir(async (dir) => {
    const calls: string[] = [];
    const store = new Proxy(localStore, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          const path = typeof args[0] === "string" ? args[0] : "";
          calls.push(`${String(key)} ${path.slice(dir.length + 1)}`);
          return value.apply(target, args);
        };
      },
    });
    const m = new CheckpointMonitor({
      directory: dir,
      rank: 0,
      store,
      keepCheckpointMax: 1,
      exceptionSave: true,
    });
    for (let step = 1; step <= 2; step++) {
      await m.onStepEnd({
        step,
        epoch: 1,
        stepsPerEpoch: 9,
        network: network(step),
      });
    }
    await m.onException(
      { step: 3, epoch: 1, stepsPerEpoch: 9, network: network(3) },
      new Error("x"),
    );
    await m.close();
    const kinds = new Set(calls.map((c) => c.split(" ")[0]));
    for (
      const kind of [
        "checkAccess",
        "ensureDir",
        "lock",
        "list",
        "removeIncomplete",
        "write",
        "remove",
      ]
    ) ok(kinds.has(kind), `${kind}: ${calls.join(", ")}`);
    for (
      const path of [
        "checkpoint/.rank_0.lock",
        `${CKPT}/CKP_rank_0-1_2.ckpt`,
        `${CKPT}/meta.json`,
        `${CKPT}/CKP_rank_0-1_3_breakpoint.ckpt`,
        "checkpoint_network/rank_0/CKP_rank_0-network.ckpt",
      ]
    ) {
      ok(
        calls.some((c) => c.endsWith(` ${path}`)),
        `${path}: ${calls.join(", ")}`,
      );
    }
    ok(calls.includes(`remove ${CKPT}/CKP_rank_0-1_1.ckpt`));
  });
});

Deno.test("src/monitor calls no Deno file API; the process calls sit in _process.ts", async () => {
  const dir = fileURLToPath(new URL("../src/monitor/", import.meta.url));
  for (const name of await listDir(dir)) {
    if (name === "_process.ts") continue;
    const code = (await Deno.readTextFile(join(dir, name)))
      .split("\n")
      .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
      .join("\n");
    equal(/\bDeno\./.exec(code), null, `${name} uses Deno.*`);
  }
});

Deno.test("the monitor runs on a store without a file system (the in-memory double): saves, retention, meta.json, the lock", async () => {
  const store = new MemoryStore();
  const m = new CheckpointMonitor({
    directory: "mem://run",
    rank: 0,
    store,
    keepCheckpointMax: 2,
  });
  for (let step = 1; step <= 4; step++) {
    await m.onStepEnd({
      step,
      epoch: 1,
      stepsPerEpoch: 9,
      network: network(step),
    });
  }
  const second = new CheckpointMonitor({
    directory: "mem://run",
    rank: 0,
    store,
  });
  await rejects(second.prepare(), /two writers on one rank folder/);
  await m.close();
  const names = [...store.files.keys()].sort();
  deepEqual(
    names.filter((n) => n.endsWith(".ckpt") || n.endsWith(".json")).map((n) =>
      n.slice(n.indexOf("checkpoint"))
    ),
    [
      "checkpoint/rank_0/CKP_rank_0-1_3.ckpt",
      "checkpoint/rank_0/CKP_rank_0-1_4.ckpt",
      "checkpoint/rank_0/meta.json",
      "checkpoint_network/rank_0/CKP_rank_0-network.ckpt",
    ],
  );
  const meta = JSON.parse(
    new TextDecoder().decode(store.files.get(m.layout.metaFile)!.bytes),
  );
  equal(meta.last_ckpt_file, "CKP_rank_0-1_4.ckpt");
  const loaded = await loadCheckpoint(m.layout.mainFile(1, 4), { store });
  deepEqual(Array.from((loaded.get("w") as Tensor<"Float32">).data), [4, 4]);
  // The lock was released: another monitor may now write there.
  equal((await second.prepare()).prefix, "CKP_rank_0_1");
  await second.close();
});
