// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The page of bench/opfs_compare.ts: starts the bench Worker with the
// parameters in the query string and publishes its samples as
// `globalThis.__result`.

const params = new URL(location.href).searchParams;
const worker = new Worker(new URL("/worker.js", location.href), {
  type: "module",
});
(globalThis as { __result?: unknown }).__result = new Promise((resolve) => {
  worker.onmessage = (event) => {
    worker.terminate();
    resolve(event.data);
  };
  worker.onerror = (event) => {
    worker.terminate();
    resolve({ error: `worker failed: ${event.message}` });
  };
  worker.postMessage({
    bytes: Number(params.get("bytes")),
    chunk: Number(params.get("chunk")),
    rounds: Number(params.get("rounds")),
  });
});
