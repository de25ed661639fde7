// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Child of store_check.mjs: starts writing PATH through NodeStore, writes
// one chunk, prints "writing" and waits, to be killed mid-write.
import { NodeStore } from "@ckpt/monitor/node";
import process from "node:process";

const path = process.argv[2];
await new NodeStore().write(path, async (sink) => {
  await sink.write(new Uint8Array(1 << 16).fill(7));
  console.log("writing");
  await new Promise(() => setInterval(() => {}, 1000));
});
