// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The browser test page's script. `?phase=conformance` runs the checks on
// the main thread and in a Worker; `?phase=reload` checks what survived a
// reload; `?phase=quota` checks a full quota. The outcome is published as
// `globalThis.__result` for the test (puppeteer) to read.

import {
  checkPersisted,
  checkQuota,
  type CheckResult,
  type ConformanceOptions,
  loadLib,
  runConformance,
} from "./_conformance.ts";

/** The contexts the conformance phase runs in. */
export const LABELS = [
  "main",
  "main:copy-commit",
  "worker:sync",
  "worker:writable",
];

function inWorker(message: unknown): Promise<CheckResult[]> {
  const worker = new Worker(new URL("/worker.js", location.href), {
    type: "module",
  });
  return new Promise<CheckResult[]>((resolve, reject) => {
    worker.onmessage = (event) => {
      worker.terminate();
      const data = event.data as { results?: CheckResult[]; error?: string };
      if (data.results !== undefined) resolve(data.results);
      else reject(new Error(`worker: ${data.error}`));
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`worker failed: ${event.message}`));
    };
    worker.postMessage(message);
  });
}

async function run(): Promise<CheckResult[]> {
  const lib = await loadLib();
  const phase = new URL(location.href).searchParams.get("phase");
  if (phase === "reload") return await checkPersisted(lib, LABELS);
  if (phase === "quota") {
    return [
      await checkQuota(lib, "main", {}),
      ...await inWorker({ kind: "quota", label: "worker", options: {} }),
    ];
  }
  // The page holds a lock for the whole run; the Worker must be refused it.
  const held = "opfs:/conf/held-by-page.lock";
  const lock = await new lib.OpfsStore().lock(held);
  try {
    const results = [
      ...await runConformance(lib, {
        label: "main",
        store: {},
        expectSyncHandle: false,
      }),
      ...await runConformance(lib, {
        label: "main:copy-commit",
        store: { move: false },
        expectSyncHandle: false,
      }),
    ];
    const worker = (
      label: string,
      store: ConformanceOptions["store"],
      expectSyncHandle: boolean,
    ) =>
      inWorker({
        kind: "conformance",
        options: { label, store, expectSyncHandle, heldElsewhere: held },
      });
    results.push(...await worker("worker:sync", {}, true));
    results.push(
      ...await worker("worker:writable", { syncAccess: false }, false),
    );
    const report = await lib.opfsStorageReport();
    results.push({
      name:
        `storage report: quota ${report.quota}, usage ${report.usage}, persisted ${report.persisted}`,
      ok: typeof report.quota === "number" && typeof report.usage === "number",
    });
    return results;
  } finally {
    await lock?.release();
  }
}

(globalThis as { __result?: unknown }).__result = run().then(
  (results) => ({ results }),
  (error) => ({ error: String(error) }),
);
