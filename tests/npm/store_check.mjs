// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Run by tests/npm_package_test.ts under Node.js, from a project that
// installed the built package: NodeStore's commit, reads, lock and cleanup
// as Node.js sees them. Usage: node store_check.mjs DIR. Prints one line
// per check; any failure throws (exit code 1).
import { NodeStore } from "@ckpt/monitor/node";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { readdir, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";

const dir = process.argv[2];
const here = dirname(fileURLToPath(import.meta.url));
const store = new NodeStore();

/** Starts a Node.js child running one of the helper scripts. */
function child(script, ...args) {
  const p = spawn(process.execPath, [join(here, script), ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  p.stdout.setEncoding("utf8");
  return p;
}

/** Resolves with the child's first stdout line. */
async function firstLine(p) {
  let text = "";
  for await (const chunk of p.stdout) {
    text += chunk;
    if (text.includes("\n")) return text.split("\n")[0];
  }
  throw new Error(`child ${p.pid} ended before printing a line`);
}

async function killed(p) {
  p.kill("SIGKILL");
  if (p.exitCode === null && p.signalCode === null) await once(p, "exit");
}

async function temps(folder) {
  return (await readdir(folder)).filter((n) => n.endsWith(".tmp")).sort();
}

// --- commit and read ---------------------------------------------------
const data = new Uint8Array(3 * 1024 * 1024 + 17);
for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 255;
const folder = join(dir, "a", "b");
await store.ensureDir(folder);
assert.equal((await stat(folder)).mode & 0o777, 0o700);
const path = join(folder, "m.bin");
const result = await store.write(path, async (sink) => {
  for (let at = 0; at < data.length; at += 1 << 20) {
    await sink.write(data.subarray(at, at + (1 << 20)));
  }
});
assert.equal(result.bytes, data.length);
assert.equal(
  result.checksum,
  `crc32:${(crc32(data) >>> 0).toString(16).padStart(8, "0")}`,
);
assert.equal((await stat(path)).mode & 0o777, 0o400);
assert.deepEqual(await store.readFile(path, data.length), data);
await assert.rejects(store.readFile(path, data.length - 1), (e) => {
  assert(e instanceof RangeError);
  assert.match(e.message, new RegExp(`${data.length - 1}`));
  return true;
});
const reader = await store.open(path);
assert.equal(reader.size, data.length);
const parts = [new Uint8Array(100), new Uint8Array(5000), new Uint8Array(7)];
await Promise.all([
  reader.readAt(0, parts[0]),
  reader.readAt(1 << 20, parts[1]),
  reader.readAt(data.length - 7, parts[2]),
]);
await reader.close();
assert.deepEqual(parts[1], data.subarray(1 << 20, (1 << 20) + 5000));
assert.deepEqual(parts[2], data.subarray(data.length - 7));
await assert.rejects(reader.readAt(0, parts[0]), TypeError);
console.log("ok commit, read, readFile limit, 0400/0700 modes");

// --- overwrite: false, failed writes -----------------------------------
await assert.rejects(
  store.write(path, (sink) => sink.write(new Uint8Array(3)), {
    overwrite: false,
  }),
  (e) => e.code === "EEXIST",
);
await assert.rejects(
  store.write(path, async (sink) => {
    await sink.write(new Uint8Array(9));
    throw new Error("producer failed");
  }),
  /producer failed/,
);
assert.deepEqual(await store.readFile(path, data.length), data);
assert.deepEqual(await temps(folder), []);
await store.write(path, (sink) => sink.write(new Uint8Array([1, 2])));
assert.deepEqual(await store.readFile(path, 10), new Uint8Array([1, 2]));
console.log(
  "ok overwrite:false and a failed producer leave the file as it was",
);

// --- stat, list, remove, non-regular files ----------------------------
await symlink(path, join(folder, "link"));
assert.deepEqual(
  { ...(await store.stat(join(folder, "link"))), mtimeMs: 0 },
  { kind: "file", size: 2, mtimeMs: 0, isSymlink: true },
);
assert.equal(await store.stat(join(folder, "nothing")), null);
assert.equal((await store.stat(folder)).kind, "directory");
const fifo = join(folder, "fifo");
assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
// A FIFO with no writer would block an open for reading: refused unopened.
await assert.rejects(store.open(fifo), /not a regular file/);
await assert.rejects(store.readFile(fifo, 10), /not a regular file/);
await assert.rejects(store.open(folder), /not a regular file/);
const listed = (await store.list(folder)).sort((x, y) =>
  x.name < y.name ? -1 : 1
);
assert.deepEqual(listed, [
  { name: "fifo", kind: "other" },
  { name: "link", kind: "other" },
  { name: "m.bin", kind: "file" },
]);
assert.equal(await store.list(join(dir, "none")), null);
assert.equal(await store.remove(join(folder, "link")), true);
assert.equal(await store.remove(join(folder, "link")), false);
console.log("ok stat (links), list, remove, FIFO and folder refused");

// --- the lock between processes ---------------------------------------
const lockPath = join(dir, "run.lock");
const holder = child("_lock_child.mjs", "hold", lockPath);
assert.equal(await firstLine(holder), "locked");
assert.equal(await store.lock(lockPath, { wait: false }), null);
const waited = store.lock(lockPath); // waits for the holder's release
holder.stdin.write("release\n");
const lock = await waited;
assert.notEqual(lock, null);
assert.equal(holder.exitCode ?? (await once(holder, "exit"))[0], 0);
await lock.release();
await lock.release(); // twice is harmless
console.log("ok lock: refused while another process holds it, then taken");

// A holder killed while holding: its file stays, its process is gone, and
// is taken over. Then 3 contenders take the lock 25 times each, each time
// leaving it as a dead holder would, so every turn is a takeover raced by
// the others; at most one may hold it at a time.
const doomed = child("_lock_child.mjs", "hold", lockPath);
assert.equal(await firstLine(doomed), "locked");
await killed(doomed);
const takeover = await store.lock(lockPath, { wait: false });
assert.notEqual(takeover, null);
await takeover.release();
const marker = join(dir, "inside");
const contenders = [1, 2, 3].map(() =>
  child("_lock_child.mjs", "contend", lockPath, marker, "25", `${doomed.pid}`)
);
for (const c of contenders) {
  const [code] = c.exitCode === null ? await once(c, "exit") : [c.exitCode];
  assert.equal(code, 0, "a contender failed: two holders at once?");
}
const after = await store.lock(lockPath, { wait: false });
assert.notEqual(after, null);
await after.release();
// No lock file, breaker file or temporary file is left behind.
assert.deepEqual((await readdir(dir)).filter((n) => n.includes("lock")), []);
console.log(
  "ok lock: a killed holder's lock taken over, 3 x 25 turns exclusive",
);

// --- a killed writer's temporary file ---------------------------------
const wdir = join(dir, "w");
await store.ensureDir(wdir);
await writeFile(join(wdir, ".x.tmp"), "not ours"); // not our naming rule
const dead = child("_write_child.mjs", join(wdir, "one.bin"));
const live = child("_write_child.mjs", join(wdir, "two.bin"));
assert.equal(await firstLine(dead), "writing");
assert.equal(await firstLine(live), "writing");
const before = await temps(wdir);
assert.equal(before.length, 3);
await killed(dead);
const removed = await store.removeIncomplete(wdir);
assert.equal(removed.length, 1);
assert.match(removed[0], /\/\.one\.bin\.[0-9a-f]{12}\.tmp$/);
const left = await temps(wdir);
assert.equal(left.length, 2);
assert(left.some((n) => n.startsWith(".two.bin.")), "live writer's file kept");
await killed(live);
assert.deepEqual(
  (await store.removeIncomplete(wdir, { prefixes: ["one"] })).length,
  0,
);
assert.equal((await store.removeIncomplete(wdir)).length, 1);
assert.deepEqual(await temps(wdir), [".x.tmp"]);
assert.equal(await store.stat(join(wdir, "one.bin")), null);
console.log(
  "ok removeIncomplete: a killed writer's file removed, a live one's kept",
);

// --- a Worker thread's temporary file (the same pid) ----------------------
const tdir = join(dir, "t");
await store.ensureDir(tdir);
const thread = new Worker(join(here, "_thread_writer.mjs"), {
  workerData: join(tdir, "thread.bin"),
});
const [first] = await once(thread, "message");
assert.equal(first, "writing");
// A temporary file with this pid that no descriptor has open: a crash of
// an earlier process that had this pid.
const pid = (process.pid % 0x1000000).toString(16).padStart(6, "0");
const stale = join(tdir, `.stale.bin.${pid}abcdef.tmp`);
await writeFile(stale, "left by an earlier process with this pid");
assert.deepEqual(await store.removeIncomplete(tdir), [stale]);
const kept = await temps(tdir);
assert.equal(kept.length, 1);
assert(kept[0].startsWith(".thread.bin."), "the Worker's file kept");
thread.postMessage("finish");
const [second] = await once(thread, "message");
assert.equal(second, "done");
await thread.terminate();
assert.deepEqual(await readdir(tdir), ["thread.bin"]);
console.log(
  "ok removeIncomplete: a Worker thread's file kept, a stale one of this pid removed",
);
