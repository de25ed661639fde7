// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * NodeStore under Deno (it is written on `node:` built-ins only, so it runs
 * here too). Its behaviour under Node.js, with other processes (the lock
 * between processes, a killed writer), is tested by npm_package_test.ts.
 */

import { deepEqual, equal, notEqual, ok, rejects } from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { NodeStore } from "../src/store/node/node_store.ts";
import { listDir, withTempDir } from "./_helpers.ts";

const store = new NodeStore();
const bytes = (text: string) => new TextEncoder().encode(text);

/**
 * A pid no process can have: above Linux's largest pid_max (2^22), within
 * the 6 hex digits a temporary name holds.
 */
const NO_PID = 0xfffffe;

Deno.test("NodeStore under Deno: commit, read, refuse, list, remove", async () => {
  await withTempDir(async (dir) => {
    const folder = join(dir, "a", "b");
    await store.ensureDir(folder);
    equal((await Deno.stat(folder)).mode! & 0o777, 0o700);
    const path = join(folder, "m.bin");
    const r = await store.write(path, async (sink) => {
      await sink.write(bytes("hello, "));
      await sink.write(bytes("world"));
    });
    deepEqual(r, { bytes: 12, checksum: "crc32:ffab723a" });
    equal((await Deno.stat(path)).mode! & 0o777, 0o400);
    deepEqual(await store.readFile(path, 12), bytes("hello, world"));
    await rejects(store.readFile(path, 11), RangeError);
    await using reader = await store.open(path);
    const part = new Uint8Array(5);
    await reader.readAt(7, part);
    deepEqual(part, bytes("world"));
    await rejects(reader.readAt(8, part), RangeError);

    await rejects(
      store.write(path, (sink) => sink.write(bytes("x")), { overwrite: false }),
      (e: { code?: string }) => e.code === "EEXIST",
    );
    await rejects(
      store.write(path, async (sink) => {
        await sink.write(bytes("partial"));
        throw new Error("producer failed");
      }),
      /producer failed/,
    );
    deepEqual(await store.readFile(path, 12), bytes("hello, world"));
    deepEqual(await listDir(folder), ["m.bin"]);

    await rejects(store.open(folder), /not a regular file/);
    // (Links: Deno.symlink needs unscoped permissions; the Node.js test
    // checks stat and list on one.)
    const st = await store.stat(path);
    deepEqual({ ...st, mtimeMs: 0 }, {
      kind: "file",
      size: 12,
      mtimeMs: 0,
      isSymlink: false,
    });
    equal((await store.stat(folder))?.kind, "directory");
    equal(await store.stat(join(folder, "none")), null);
    await Deno.writeTextFile(join(folder, "other"), "x");
    deepEqual(
      (await store.list(folder))?.sort((x, y) => x.name < y.name ? -1 : 1),
      [{ name: "m.bin", kind: "file" }, { name: "other", kind: "file" }],
    );
    equal(await store.list(join(dir, "none")), null);
    equal(await store.remove(join(folder, "other")), true);
    equal(await store.remove(join(folder, "other")), false);
  });
});

Deno.test("NodeStore: removeIncomplete removes temporaries whose writer is gone", async () => {
  await withTempDir(async (dir) => {
    const gone = `.m.ckpt.${NO_PID.toString(16)}abcdef.tmp`;
    await Deno.writeTextFile(join(dir, gone), "a crashed write");
    await Deno.writeTextFile(join(dir, ".notes.tmp"), "not our naming");
    // A write of this process in progress is kept.
    let resume!: () => void;
    const paused = new Promise<void>((r) => resume = r);
    let started!: () => void;
    const inside = new Promise<void>((r) => started = r);
    const writing = store.write(join(dir, "live.ckpt"), async (sink) => {
      await sink.write(bytes("live"));
      started();
      await paused;
    });
    await inside;
    deepEqual(await store.removeIncomplete(dir, { prefixes: ["x"] }), []);
    deepEqual(await store.removeIncomplete(dir), [join(dir, gone)]);
    const left = await listDir(dir);
    equal(left.length, 2);
    ok(left.some((n) => n.startsWith(".live.ckpt.")));
    resume();
    await writing;
    deepEqual(await listDir(dir), [".notes.tmp", "live.ckpt"]);
  });
});

Deno.test("NodeStore: lock turns within a process, a gone holder taken over, others not", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, ".lock");
    const first = await store.lock(path, { owner: "first" });
    notEqual(first, null);
    equal(await store.lock(path, { wait: false }), null);
    const second = store.lock(path);
    await first!.release();
    const held = await second;
    notEqual(held, null);
    await held![Symbol.asyncDispose]();
    deepEqual(await listDir(dir), []);

    const record = (host: string, pid: number) =>
      JSON.stringify({ pid, host, start: null, token: `t${pid}`, since: 0 });
    // A holder on this host whose process is gone: taken over.
    await Deno.writeTextFile(path, record(hostname(), NO_PID));
    const taken = await store.lock(path, { wait: false });
    notEqual(taken, null);
    await taken!.release();
    deepEqual(await listDir(dir), []);
    // A holder on another host cannot be judged: left alone.
    await Deno.writeTextFile(path, record(`not-${hostname()}`, NO_PID));
    equal(await store.lock(path, { wait: false }), null);
    // Not a lock record (e.g. the Deno file store's flock file): an error.
    await Deno.writeTextFile(path, "");
    await rejects(store.lock(path, { wait: false }), /no lock record/);
  });
});

Deno.test("NodeStore: removeIncomplete keeps a temporary file a Worker of the same process is writing", async () => {
  await withTempDir(async (dir) => {
    // The Worker has its own copy of the store's module, so its temporary
    // names are not this thread's, though they carry the same pid.
    const storeUrl = new URL(
      "../src/store/node/node_store.ts",
      import.meta.url,
    );
    const source = `
      import { NodeStore } from ${JSON.stringify(storeUrl.href)};
      let resume;
      self.onmessage = (e) => {
        if (e.data === "finish") { resume(); return; }
        const paused = new Promise((r) => resume = r);
        new NodeStore().write(e.data, async (sink) => {
          await sink.write(new TextEncoder().encode("from the Worker"));
          self.postMessage("writing");
          await paused;
        }).then(() => self.postMessage("done"), (e) => self.postMessage(String(e)));
      };`;
    const url = URL.createObjectURL(
      new Blob([source], { type: "text/javascript" }),
    );
    const worker = new Worker(url, { type: "module" });
    try {
      const next = () =>
        new Promise<string>((resolve) =>
          worker.onmessage = (e) => resolve(e.data)
        );
      let answer = next();
      worker.postMessage(join(dir, "w.ckpt"));
      equal(await answer, "writing");
      const [temp] = await listDir(dir);
      ok(temp?.startsWith(".w.ckpt."), temp);
      deepEqual(await store.removeIncomplete(dir), []);
      answer = next();
      worker.postMessage("finish");
      equal(await answer, "done");
      deepEqual(await listDir(dir), ["w.ckpt"]);
    } finally {
      worker.terminate();
      URL.revokeObjectURL(url);
    }
  });
});
