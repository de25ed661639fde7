// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Worker thread of store_check.mjs: writes PATH (workerData) through its
// own NodeStore (its own module state), posts "writing" after one chunk and
// finishes when told to.
import { NodeStore } from "@ckpt/monitor/node";
import { parentPort, workerData } from "node:worker_threads";

let finish;
const told = new Promise((resolve) => finish = resolve);
parentPort.on("message", () => finish());
await new NodeStore().write(workerData, async (sink) => {
  await sink.write(new Uint8Array(1 << 16).fill(9));
  parentPort.postMessage("writing");
  await told;
});
parentPort.postMessage("done");
