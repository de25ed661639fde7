// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Run by tests/npm_package_test.ts under Node.js: reads a `.ckpt` (written
// by Deno) through the installed package's NodeStore and parser, loads its
// weights into the shared model and prints one JSON line: the model's loss
// and the file's other entries.
import { NodeStore, parseCkpt, readParsedEntry } from "@ckpt/monitor";
import process from "node:process";
import { loadTfjs } from "./_tfjs.mjs";
import { buildModel, evaluate, setWeights } from "./_model.mjs";

const tf = await loadTfjs();
const path = process.argv[2];
const reader = await new NodeStore().open(path);
const values = new Map();
try {
  const fail = (reason) => {
    throw new Error(`${path}: ${reason}`);
  };
  for (const entry of (await parseCkpt(reader, { path })).entries) {
    values.set(entry.name, await readParsedEntry(reader, entry, fail));
  }
} finally {
  await reader.close();
}
const model = buildModel(tf);
setWeights(tf, model, values);
const others = {};
for (const [name, v] of values) {
  if (model.weights.some((w) => w.originalName === name)) continue;
  others[name] = typeof v === "string"
    ? v
    : { dtype: v.dtype, shape: v.shape, data: Array.from(v.data, String) };
}
console.log(JSON.stringify({ loss: evaluate(tf, model), others }));
