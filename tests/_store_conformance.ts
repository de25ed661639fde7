// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * What every `CheckpointStore` must do, as test steps any store's test can
 * run against its own root folder (local disk, memory, S3, OPFS, Node).
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  type CheckpointStore,
  isNotFound,
  joinPath,
} from "../src/store/store.ts";

function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Writes `data` in pieces of `piece` bytes through the store's sink. */
function writeBytes(
  store: CheckpointStore,
  path: string,
  data: Uint8Array,
  piece = 1000,
  overwrite?: boolean,
): ReturnType<CheckpointStore["write"]> {
  return store.write(
    path,
    async (sink) => {
      for (let at = 0; at < data.byteLength; at += piece) {
        await sink.write(data.subarray(at, at + piece));
      }
    },
    overwrite === undefined ? { fileMode: 0o600 } : {
      fileMode: 0o600,
      overwrite,
    },
  );
}

/**
 * Runs the conformance steps for `store` under the folder `root` (which
 * must exist and be empty).
 */
export async function storeConformance(
  t: Deno.TestContext,
  store: CheckpointStore,
  root: string,
): Promise<void> {
  const dir = joinPath(root, "a", "b");

  await t.step(
    "ensureDir makes nested folders; stat and list see them",
    async () => {
      await store.ensureDir(dir);
      equal((await store.stat(dir))?.kind, "directory");
      deepEqual(await store.list(dir), []);
      deepEqual(await store.list(joinPath(root, "a")), [{
        name: "b",
        kind: "directory",
      }]);
      equal(await store.list(joinPath(root, "missing")), null);
      equal(await store.stat(joinPath(root, "missing")), null);
    },
  );

  await t.step(
    "a write commits the whole file with its size and CRC-32",
    async () => {
      const path = joinPath(dir, "x.bin");
      const data = bytesOf(10_000, 7);
      const written = await writeBytes(store, path, data);
      equal(written.bytes, 10_000);
      ok(/^crc32:[0-9a-f]{8}$/.test(written.checksum));
      const info = await store.stat(path);
      equal(info?.kind, "file");
      equal(info?.size, 10_000);
      deepEqual(await store.readFile(path, 1 << 20), data);
      await using reader = await store.open(path);
      equal(reader.size, 10_000);
      const part = new Uint8Array(100);
      await reader.readAt(5_000, part);
      deepEqual(part, data.subarray(5_000, 5_100));
      await rejects(reader.readAt(9_950, new Uint8Array(100)));
      deepEqual(await store.list(dir), [{ name: "x.bin", kind: "file" }]);
    },
  );

  await t.step(
    "a failed write leaves nothing, and the old file unchanged",
    async () => {
      const path = joinPath(dir, "x.bin");
      const before = await store.readFile(path, 1 << 20);
      await rejects(
        store.write(path, async (sink) => {
          await sink.write(bytesOf(500, 1));
          throw new Error("producer failed");
        }),
        /producer failed/,
      );
      deepEqual(await store.readFile(path, 1 << 20), before);
      await rejects(
        store.write(joinPath(dir, "new.bin"), () => {
          throw new Error("failed at once");
        }),
        /failed at once/,
      );
      equal(await store.stat(joinPath(dir, "new.bin")), null);
      const names = (await store.list(dir))!.map((e) => e.name).sort();
      // Whatever a store keeps of a failed write is not a listed file.
      deepEqual(names.filter((n) => !n.startsWith(".")), ["x.bin"]);
    },
  );

  await t.step("overwrite: false never replaces an existing file", async () => {
    const path = joinPath(dir, "x.bin");
    const before = await store.readFile(path, 1 << 20);
    await rejects(writeBytes(store, path, bytesOf(10, 2), 1000, false));
    deepEqual(await store.readFile(path, 1 << 20), before);
    const fresh = joinPath(dir, "fresh.bin");
    await writeBytes(store, fresh, bytesOf(10, 3), 1000, false);
    deepEqual(await store.readFile(fresh, 100), bytesOf(10, 3));
  });

  await t.step(
    "readFile refuses a file over the limit before reading it",
    async () => {
      await rejects(store.readFile(joinPath(dir, "x.bin"), 9_999), RangeError);
    },
  );

  await t.step(
    "missing files: NotFound from open and readFile, false from remove",
    async () => {
      const missing = joinPath(dir, "nope.bin");
      await rejects(store.open(missing), (e) => isNotFound(e));
      await rejects(store.readFile(missing, 10), (e) => isNotFound(e));
      equal(await store.remove(missing), false);
      equal(await store.remove(joinPath(dir, "fresh.bin")), true);
      equal(await store.stat(joinPath(dir, "fresh.bin")), null);
    },
  );

  await t.step("a lock excludes a second taker until released", async () => {
    await store.ensureDir(joinPath(root, "locks"));
    const name = joinPath(root, "locks", "run.lock");
    const first = await store.lock(name, { wait: false, owner: "first" });
    ok(first !== null);
    equal(await store.lock(name, { wait: false, owner: "second" }), null);
    await first.release();
    const again = await store.lock(name, { wait: false });
    ok(again !== null);
    await again.release();
    await again.release(); // Harmless.
  });

  await t.step("removeIncomplete leaves committed files alone", async () => {
    const removed = await store.removeIncomplete(dir);
    deepEqual(removed, []);
    equal((await store.stat(joinPath(dir, "x.bin")))?.kind, "file");
  });
}
