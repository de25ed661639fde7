// Copyright 2026 the @ckpt/monitor authors. MIT license.
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import {
  type CheckpointStore,
  loadCheckpoint,
  localStore,
  type SaveResult,
  type Tensor,
} from "../mod.ts";
import { SaveQueue } from "../src/background/save_queue.ts";
import { SnapshotArena } from "../src/background/snapshot.ts";
import { listDir, withTempDir } from "./_helpers.ts";

const FAULTY = new URL("./_fault_save_worker.ts", import.meta.url);

function model(
  n: number,
  fill = 1,
): { w: Tensor<"Float32">; b: Tensor<"Float32"> } {
  return {
    w: { dtype: "Float32", shape: [n], data: new Float32Array(n).fill(fill) },
    b: { dtype: "Float32", shape: [2], data: Float32Array.of(fill, -fill) },
  };
}

async function values(path: string, name: string): Promise<number[]> {
  const loaded = await loadCheckpoint(path);
  return Array.from((loaded.get(name) as Tensor<"Float32">).data);
}

Deno.test("enqueue copies the tensors: mutating them right after changes nothing saved", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue();
    const net = model(1000, 1);
    const t = await queue.enqueue([{
      path: `${dir}/a.ckpt`,
      network: net,
      options: {
        appendInfo: new Map<string, number | Tensor>([["step", 3], [
          "scale",
          net.b,
        ]]),
      },
    }]);
    equal(t.bytes, 4008);
    net.w.data.fill(7);
    net.b.data.fill(7);
    await queue.flush();
    const loaded = await loadCheckpoint(`${dir}/a.ckpt`);
    ok((loaded.get("w") as Tensor<"Float32">).data.every((x) => x === 1));
    deepEqual(Array.from((loaded.get("scale") as Tensor<"Float32">).data), [
      1,
      -1,
    ]);
    equal((loaded.get("step") as Tensor<"Int64">).data[0], 3n);
  });
});

Deno.test("files of one save are written in order, each hook after its file is committed", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue();
    const seen: string[] = [];
    await queue.enqueue([
      { path: `${dir}/main.ckpt`, network: model(10) },
      {
        path: `${dir}/net.safetensors`,
        network: model(10),
        options: { format: "safetensors" },
      },
    ], {
      onFile: async (i, result) => {
        // The file is on disk when its hook runs; the next one is not yet.
        await Deno.stat(result.path);
        seen.push(`${i}:${result.path.split("/").pop()}:${result.bytes > 0}`);
        if (i === 0) {
          await rejects(
            Deno.stat(`${dir}/net.safetensors`),
            Deno.errors.NotFound,
          );
        }
      },
    });
    await queue.flush();
    deepEqual(seen, ["0:main.ckpt:true", "1:net.safetensors:true"]);
  });
});

Deno.test("back-pressure: a save due while one is writing waits for it, and nothing is dropped", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ workerUrl: FAULTY });
    const net = model(100, 1);
    const order: string[] = [];
    const hooks = {
      onFile: (_: number, r: { path: string }) => void order.push(r.path),
    };
    await queue.enqueue([{ path: `${dir}/gate-1.ckpt`, network: net }], hooks);
    ok(queue.pending);
    net.w.data.fill(2);
    let second = false;
    const next = queue.enqueue([{ path: `${dir}/2.ckpt`, network: net }], hooks)
      .then((t) => {
        second = true;
        return t;
      });
    await new Promise((r) => setTimeout(r, 50));
    equal(second, false, "the second save must wait for the first");
    await Deno.writeTextFile(`${dir}/go`, "");
    const ticket = await next;
    ok(ticket.waitedMs > 0);
    await queue.flush();
    deepEqual(order, [`${dir}/gate-1.ckpt`, `${dir}/2.ckpt`]);
    ok((await values(`${dir}/gate-1.ckpt`, "w")).every((x) => x === 1));
    ok((await values(`${dir}/2.ckpt`, "w")).every((x) => x === 2));
    equal(queue.stats.saves, 2);
    equal(queue.stats.waits, 1);
    ok(queue.stats.maxWaitMs >= ticket.waitedMs);
  });
});

Deno.test("a save into a removed folder fails in the background and surfaces once, naming the file", async () => {
  await withTempDir(async (dir) => {
    const queue = new SaveQueue();
    await queue.enqueue([{ path: `${dir}/ok.ckpt`, network: model(10) }]);
    await queue.flush();
    await Deno.mkdir(`${dir}/gone`);
    await Deno.remove(`${dir}/gone`); // removed while training runs
    const errors: [number, Error][] = [];
    await queue.enqueue([{ path: `${dir}/gone/x.ckpt`, network: model(10) }], {
      onError: (i, e) => void errors.push([i, e]),
    });
    // The failure waits for the next call: here enqueue.
    await new Promise((r) => setTimeout(r, 100));
    while (queue.pending) await new Promise((r) => setTimeout(r, 5));
    await rejects(
      queue.enqueue([{ path: `${dir}/later.ckpt`, network: model(10) }]),
      (e: Error) => {
        match(e.message, /gone\/x\.ckpt/);
        ok(e.cause instanceof Deno.errors.NotFound);
        return true;
      },
    );
    equal(errors.length, 1);
    equal(errors[0]![0], 0);
    // Thrown once: the queue goes on.
    await queue.flush();
    await queue.enqueue([{ path: `${dir}/later.ckpt`, network: model(10) }]);
    await queue.close();
    deepEqual(await listDir(dir), ["later.ckpt", "ok.ckpt"]);
  });
});

Deno.test("a full disk fails the save, leaves the older file and no temporary file; flush rethrows", async () => {
  await withTempDir(async (dir) => {
    const queue = new SaveQueue({ workerUrl: FAULTY });
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network: model(10, 1) }]);
    await queue.flush();
    await Deno.writeTextFile(`${dir}/FULL`, "");
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network: model(10, 2) }]);
    await rejects(queue.flush(), /a\.ckpt.*No space left/);
    await queue.close();
    deepEqual(await listDir(dir), ["FULL", "a.ckpt"]);
    ok((await values(`${dir}/a.ckpt`, "w")).every((x) => x === 1));
  });
});

Deno.test("a Worker crash fails the save with a clear error, removes its temporary file, and the next save works", async () => {
  await withTempDir(async (dir) => {
    const queue = new SaveQueue({ workerUrl: FAULTY });
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network: model(10, 1) }]);
    await queue.flush();
    await Deno.writeTextFile(`${dir}/CRASH`, "");
    await queue.enqueue([{
      path: `${dir}/a.ckpt`,
      network: model(100_000, 2),
    }]);
    await rejects(queue.flush(), (e: Error) => {
      match(e.message, /a\.ckpt.*save worker crashed.*injected crash/);
      return true;
    });
    deepEqual(await listDir(dir), ["CRASH", "a.ckpt"]);
    ok((await values(`${dir}/a.ckpt`, "w")).every((x) => x === 1));
    await Deno.remove(`${dir}/CRASH`);
    await queue.enqueue([{ path: `${dir}/b.ckpt`, network: model(10, 3) }]);
    await queue.close();
    deepEqual(await listDir(dir), ["a.ckpt", "b.ckpt"]);
  });
});

Deno.test("a Worker that cannot start fails the save clearly", async () => {
  await withTempDir(async (dir) => {
    const queue = new SaveQueue({
      workerUrl: new URL("./_no_such_worker.ts", import.meta.url),
    });
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network: model(4) }]);
    await rejects(queue.close(), /a\.ckpt.*save Worker could not start/);
    deepEqual(await listDir(dir), []);
  });
});

Deno.test("a Worker that dies while starting is one clear error, also where ArrayBuffer has no `detached` (Node.js 20), in a subprocess", async () => {
  await withTempDir(async (dir) => {
    const script = `${dir}/child.ts`;
    const queueUrl = new URL(
      "../src/background/save_queue.ts",
      import.meta.url,
    );
    const workerUrl = new URL(
      "./_startup_crash_save_worker.ts",
      import.meta.url,
    );
    await Deno.writeTextFile(
      script,
      `import { SaveQueue } from ${JSON.stringify(queueUrl.href)};
      // As in Node.js 20, whose ArrayBuffer has no \`detached\`.
      Object.defineProperty(ArrayBuffer.prototype, "detached", {
        get: () => undefined,
        configurable: true,
      });
      const queue = new SaveQueue({ workerUrl: new URL(${
        JSON.stringify(workerUrl.href)
      }) });
      const w = { dtype: "Float32", shape: [65536], data: new Float32Array(65536) };
      for (const name of ["a", "b"]) {
        await queue.enqueue([{ path: ${
        JSON.stringify(dir)
      } + "/" + name + ".ckpt", network: { w } }]);
        await queue.flush().then(
          () => console.log("saved"),
          (e) => console.log("error: " + e.message),
        );
      }
      await queue.close();
      console.log("closed");`,
    );
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "--no-prompt",
        `--allow-read=.,${dir}`,
        `--allow-write=${dir}`,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 0, stderr);
    deepEqual(stdout.length, 3, stdout.join("\n"));
    for (const [i, name] of ["a", "b"].entries()) {
      match(
        stdout[i]!,
        new RegExp(
          `^error: Cannot save checkpoint ".*/${name}\\.ckpt" in the background: the save Worker could not start: injected start-up failure$`,
        ),
      );
    }
    equal(stdout[2], "closed");
    ok(!stderr.includes("restore the arena"), stderr);
    deepEqual((await listDir(dir)).filter((n) => n !== "child.ts"), []);
  });
});

Deno.test("close twice is fine; a save after close is a TypeError", async () => {
  await withTempDir(async (dir) => {
    const queue = new SaveQueue();
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network: model(4) }]);
    await Promise.all([queue.close(), queue.close()]);
    await queue.close();
    ok(queue.closed);
    await rejects(
      queue.enqueue([{ path: `${dir}/b.ckpt`, network: model(4) }]),
      TypeError,
    );
    deepEqual(await listDir(dir), ["a.ckpt"]);
  });
});

Deno.test("a failing hook (the caller's commit) is kept, and later files of that save are not written", async () => {
  await withTempDir(async (dir) => {
    const queue = new SaveQueue();
    await queue.enqueue([
      { path: `${dir}/a.ckpt`, network: model(4) },
      { path: `${dir}/b.ckpt`, network: model(4) },
    ], {
      onFile: () => {
        throw new RangeError("meta.json could not be written");
      },
    });
    await rejects(queue.flush(), /meta\.json could not be written/);
    queue.throwIfFailed();
    await queue.close();
    deepEqual(await listDir(dir), ["a.ckpt"]);
  });
});

Deno.test("bad input is rejected when the save is queued, not later", async () => {
  await using queue = new SaveQueue();
  await rejects(
    queue.enqueue([{
      path: "/tmp/x.ckpt",
      network: {
        w: { dtype: "Float32", shape: [3], data: new Float32Array(2) },
      },
    }]),
    RangeError,
  );
  await rejects(
    queue.enqueue([{
      path: "/tmp/x.ckpt",
      network: {},
      options: { appendInfo: { f: (() => 1) as unknown as number } },
    }]),
    TypeError,
  );
  equal(queue.pending, false);
});

Deno.test("reserve prepares the arena in the Worker, slab by slab; the first save then allocates nothing", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ slabSize: 1 << 20 });
    const files = [{ path: `${dir}/a.ckpt`, network: model(500_000, 1) }];
    queue.reserve(files);
    ok(queue.reserving, "the allocation runs in the background");
    equal(queue.pending, false, "it is no save: a save need not wait for it");
    await queue.flush();
    const capacity = queue.stats.arenaBytes;
    ok(capacity >= 2_000_008, `${capacity}`);
    const ticket = await queue.enqueue(files);
    equal(ticket.waitedMs, 0);
    equal(queue.stats.waits, 0);
    equal(queue.stats.arenaBytes, capacity, "the save allocated nothing");
    await queue.flush();
    equal(queue.stats.arenaBytes, capacity);
    queue.reserve(files);
    equal(queue.reserving, false, "nothing to do when the arena fits");
    ok((await values(`${dir}/a.ckpt`, "w")).every((x) => x === 1));
  });
});

/** `count` tensors of `n` Float32 each, filled with `fill`. */
function layers(count: number, n: number, fill: number): Tensor<"Float32">[] {
  return Array.from({ length: count }, () => ({
    dtype: "Float32" as const,
    shape: [n],
    data: new Float32Array(n).fill(fill),
  }));
}

for (const when of ["before any slab arrived", "halfway"] as const) {
  Deno.test(`a save during a reservation (${when}) completes it with the Worker, each slab prepared once by one of them, and is written at once`, async () => {
    await withTempDir(async (dir) => {
      const slabSize = 256 * 1024;
      await using queue = new SaveQueue({ slabSize });
      const tensors = layers(128, 64 * 1024, 3); // 128 slabs of 256 KiB
      const network = Object.fromEntries(tensors.map((t, i) => [`l${i}`, t]));
      const files = [{ path: `${dir}/a.ckpt`, network }];
      const needed = new SnapshotArena({ slabSize }).reservation(tensors)
        .reduce((a, b) => a + b, 0);
      queue.reserve(files);
      if (when === "halfway") {
        while (queue.stats.arenaBytes < needed / 4) {
          await new Promise((r) => setTimeout(r, 1));
        }
        ok(queue.reserving, "the reservation was still running");
      }
      const ticket = await queue.enqueue(files);
      equal(ticket.waitedMs, 0, "no wait for the reservation");
      equal(
        queue.stats.reservedBytes,
        needed,
        "every slab prepared by the reservation, none by the copy",
      );
      for (const t of tensors) t.data.fill(0);
      await queue.flush();
      equal(queue.reserving, false, "the reservation ended");
      equal(queue.stats.arenaBytes, needed, "no slab adopted twice or late");
      ok((await values(`${dir}/a.ckpt`, "l127")).every((x) => x === 3));
      const again = await queue.enqueue([{ path: `${dir}/b.ckpt`, network }]);
      equal(again.waitedMs, 0);
      await queue.flush();
      equal(queue.stats.arenaBytes, needed, "the next save reuses the arena");
      ok((await values(`${dir}/b.ckpt`, "l0")).every((x) => x === 0));
    });
  });
}

Deno.test("a first save with nothing prepared has the Worker prepare part of the arena beside it; the file is whole", async () => {
  await withTempDir(async (dir) => {
    const slabSize = 1 << 20;
    await using queue = new SaveQueue({ slabSize });
    const tensors = layers(16, slabSize / 4, 9);
    const network = Object.fromEntries(tensors.map((t, i) => [`l${i}`, t]));
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network }]);
    const { arenaBytes, reservedBytes } = queue.stats;
    equal(arenaBytes, 16 * slabSize);
    equal(
      reservedBytes,
      arenaBytes,
      "prepared by the reservation, not the copy",
    );
    await queue.flush();
    ok((await values(`${dir}/a.ckpt`, "l15")).every((x) => x === 9));
  });
});

/** Blocks this thread for `ms` without returning to the event loop. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* a step of a loop that never yields */ }
}

Deno.test("a snapshot takes the slabs the Worker prepared though this thread never returned to its event loop", async () => {
  await withTempDir(async (dir) => {
    const slabSize = 1 << 20;
    await using queue = new SaveQueue({ slabSize });
    // The Worker is running (a small reservation, awaited) before the test.
    queue.reserve([{ path: "", network: { w: layers(1, 16, 0)[0]! } }]);
    await queue.flush();
    const before = queue.stats.reservedBytes;
    const tensors = layers(8, slabSize / 4, 7); // 8 slabs of 1 MiB
    const network = Object.fromEntries(tensors.map((t, i) => [`l${i}`, t]));
    const files = [{ path: `${dir}/a.ckpt`, network }];
    const needed = new SnapshotArena({ slabSize }).reservation(tensors)
      .reduce((a, b) => a + b, 0);
    queue.reserve(files);
    // Touching 8 MiB takes milliseconds; no message can be taken meanwhile.
    spin(2000);
    const held = queue.hold(files);
    equal(
      queue.stats.reservedBytes - before,
      needed,
      "every slab came from the Worker, none allocated by the snapshot",
    );
    await queue.enqueue(files, {}, held);
    await queue.flush();
    equal(queue.reserving, false);
    equal(queue.stats.arenaBytes, needed);
    ok((await values(`${dir}/a.ckpt`, "l7")).every((x) => x === 7));
  });
});

Deno.test("hold copies now; enqueue writes that copy later, under the path it is given then", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue();
    const network = model(1000, 5);
    ok(queue.free);
    const held = queue.hold([{ path: "", network }]);
    equal(held.bytes, 4008);
    equal(queue.free, false, "the copy holds the arena");
    network.w.data.fill(6); // the loop goes on before the path is known
    await queue.enqueue([{ path: `${dir}/a.ckpt`, network }], {}, held);
    await queue.flush();
    ok(queue.free);
    ok((await values(`${dir}/a.ckpt`, "w")).every((x) => x === 5));
    // Released without a save, the arena is free again; release is once.
    const other = queue.hold([{ path: "", network }]);
    queue.release(other);
    queue.release(other);
    ok(queue.free);
    // Files with another number of tensors than the copy are refused, and
    // the copy is given back.
    const third = queue.hold([{ path: "", network }]);
    await rejects(
      queue.enqueue(
        [{ path: `${dir}/c.ckpt`, network: { w: network.w } }],
        {},
        third,
      ),
      /the files have 1 tensors, the snapshot taken for them 2/,
    );
    ok(queue.free);
    await queue.close();
    throws(() => queue.hold([{ path: "", network }]), /queue is closed/);
  });
});

Deno.test("each hook gets the ticket enqueue returned, wait included, whenever the file is written", async () => {
  await withTempDir(async (dir) => {
    await using queue = new SaveQueue({ workerUrl: FAULTY });
    await queue.enqueue([{ path: `${dir}/gate-a.ckpt`, network: model(10) }]);
    const seen: unknown[] = [];
    const next = queue.enqueue(
      [{ path: `${dir}/b.ckpt`, network: model(10) }],
      {
        onFile: (_i, _result, _ms, ticket) => void seen.push(ticket),
      },
    );
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(`${dir}/go`, "");
    const ticket = await next;
    await queue.flush();
    ok(ticket.waitedMs > 0, "the second save waited for the first");
    deepEqual(seen, [ticket]);
  });
});

Deno.test("a file of another store is written on the caller's thread after enqueue returns, from the snapshot", async () => {
  await withTempDir(async (dir) => {
    const writes: string[] = [];
    // The local store behind another object: the queue cannot send it to a
    // Worker, so it must write on this thread, through this object.
    const store = new Proxy(localStore, {
      get(target, key) {
        if (key === "name") return "wrapped";
        const value = Reflect.get(target, key);
        if (key !== "write") {
          return typeof value === "function" ? value.bind(target) : value;
        }
        return (...args: Parameters<CheckpointStore["write"]>) => {
          writes.push(args[0]);
          return target.write(...args);
        };
      },
    });
    await using queue = new SaveQueue();
    const net = model(1000, 1);
    const committed: SaveResult[] = [];
    await queue.enqueue(
      [{ path: `${dir}/a.ckpt`, network: net, options: { store } }],
      { onFile: (_i, result) => void committed.push(result) },
    );
    deepEqual(writes, [], "nothing written before the caller's step goes on");
    net.w.data.fill(9);
    await queue.flush();
    deepEqual(writes, [`${dir}/a.ckpt`]);
    equal(committed.length, 1);
    ok((await values(`${dir}/a.ckpt`, "w")).every((x) => x === 1));
  });
});
