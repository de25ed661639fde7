// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The Worker of bench/opfs_compare.ts: writes the same bytes to OPFS through
// OpfsStore.write and through a bare createSyncAccessHandle loop,
// alternating, and posts the times back.
/// <reference lib="deno.worker" />

import { loadLib } from "../../tests/browser/_conformance.ts";
import type {
  DirectoryHandle,
  StorageManagerLike,
} from "../../src/store/opfs/_opfs_types.ts";

/** What the page asks for. */
export interface BenchRequest {
  /** Bytes per file. */
  readonly bytes: number;
  /** Bytes per write call. */
  readonly chunk: number;
  /** Timed rounds of each (after one untimed warm-up round of each). */
  readonly rounds: number;
}

/** One timed write. */
export interface BenchSample {
  readonly kind: "bare" | "store" | "store-in-place" | "store-writable";
  readonly ms: number;
  readonly flushMs: number;
}

function pattern(size: number): Uint8Array {
  const words = new Uint32Array(size / 4);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer);
}

async function bare(
  dir: DirectoryHandle,
  data: Uint8Array,
  chunk: number,
): Promise<BenchSample> {
  const t0 = performance.now();
  const handle = await (await dir.getFileHandle("bare.bin", { create: true }))
    .createSyncAccessHandle!();
  for (let at = 0; at < data.byteLength; at += chunk) {
    handle.write(data.subarray(at, at + chunk), { at });
  }
  const f0 = performance.now();
  handle.flush();
  const flushMs = performance.now() - f0;
  handle.close();
  const ms = performance.now() - t0;
  await dir.removeEntry("bare.bin");
  return { kind: "bare", ms, flushMs };
}

self.onmessage = async (event: MessageEvent<BenchRequest>) => {
  try {
    const { bytes, chunk, rounds } = event.data;
    const lib = await loadLib();
    const storage = (navigator as unknown as { storage: StorageManagerLike })
      .storage;
    const root = await storage.getDirectory!();
    await root.removeEntry("bench", { recursive: true }).catch(() => {});
    const dir = await root.getDirectoryHandle("bench", { create: true });
    const stores = {
      store: new lib.OpfsStore(),
      "store-in-place": new lib.OpfsStore({ checksumWorker: false }),
      "store-writable": new lib.OpfsStore({ syncAccess: false }),
    };
    const data = pattern(bytes);
    const viaStore = async (
      kind: keyof typeof stores = "store",
    ): Promise<BenchSample> => {
      const store = stores[kind];
      const t0 = performance.now();
      await store.write("opfs:/bench/store.bin", async (sink) => {
        for (let at = 0; at < data.byteLength; at += chunk) {
          await sink.write(data.subarray(at, at + chunk));
        }
      });
      const ms = performance.now() - t0;
      await store.remove("opfs:/bench/store.bin");
      return { kind, ms, flushMs: Number.NaN };
    };
    const samples: BenchSample[] = [];
    await bare(dir, data, chunk); // warm-up
    await viaStore();
    await viaStore("store-in-place");
    await viaStore("store-writable");
    for (let r = 0; r < rounds; r++) {
      // Rotate which goes first, so none always follows the same one.
      const runs = [
        () => bare(dir, data, chunk),
        () => viaStore(),
        () => viaStore("store-in-place"),
        () => viaStore("store-writable"),
      ];
      for (let k = 0; k < runs.length; k++) {
        samples.push(await runs[(r + k) % runs.length]!());
      }
    }
    await root.removeEntry("bench", { recursive: true });
    self.postMessage({ samples });
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};
