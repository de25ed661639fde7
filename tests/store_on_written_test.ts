// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A store's `onWritten` hook, for the two stores of local files: called
 * once every byte is with the OS and before the commit makes the file
 * visible, never for a write that failed. A background save hands its
 * arena back there (under Node.js through NodeStore, which once ignored
 * the hook: every overlapping save then took a second arena).
 */
import { equal, ok, rejects } from "node:assert/strict";
import { localStore } from "../src/store/local_store.ts";
import { NodeStore } from "../src/store/node/node_store.ts";
import type { CheckpointStore } from "../src/store/store.ts";
import { listDir, withTempDir } from "./_helpers.ts";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

for (
  const [name, store] of [
    ["LocalStore", localStore],
    ["NodeStore", new NodeStore()],
  ] as [string, CheckpointStore][]
) {
  Deno.test(`${name}: onWritten comes once, after the last byte, before the file is visible`, async () => {
    await withTempDir(async (dir) => {
      const path = `${dir}/a.bin`;
      const bytes = new Uint8Array(3 << 20).fill(7);
      let calls = 0;
      let visible: boolean | null = null;
      let written = 0;
      let writtenAtHook = -1;
      await store.write(path, async (sink) => {
        for (let i = 0; i < bytes.length; i += 1 << 20) {
          await sink.write(bytes.subarray(i, i + (1 << 20)));
          written += 1 << 20;
        }
      }, {
        onWritten: () => {
          calls++;
          writtenAtHook = written;
          // Synchronous on purpose: the hook runs before the commit goes on.
          visible = (() => {
            try {
              Deno.statSync(path);
              return true;
            } catch {
              return false;
            }
          })();
        },
      });
      equal(calls, 1);
      equal(writtenAtHook, bytes.length, "after every byte");
      equal(visible, false, "before the commit");
      ok(await exists(path));
      equal((await Deno.readFile(path)).length, bytes.length);
    });
  });

  Deno.test(`${name}: no onWritten for a write whose bytes never all came`, async () => {
    await withTempDir(async (dir) => {
      let calls = 0;
      await rejects(
        store.write(`${dir}/b.bin`, async (sink) => {
          await sink.write(new Uint8Array(10));
          throw new Error("produce failed");
        }, { onWritten: () => void calls++ }),
        /produce failed/,
      );
      equal(calls, 0);
      equal((await listDir(dir)).length, 0, "nothing left behind");
    });
  });
}
