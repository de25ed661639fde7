// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The npm package's entry point (`src/node_mod.ts`) exports what `mod.ts`
 * exports, the same values, plus `NodeStore` and the format layer; and importing it under Deno
 * leaves plain paths to Deno's file store.
 */

import { deepEqual, equal } from "node:assert/strict";
import * as deno from "../mod.ts";
import * as node from "../src/node_mod.ts";
import { NodeStore } from "../src/store/node/node_store.ts";
import * as entry from "../src/format/entry.ts";
import * as ckpt from "../src/format/ckpt.ts";
import * as safetensors from "../src/format/safetensors.ts";

Deno.test("node_mod.ts exports mod.ts's API, the same values, plus NodeStore and the format layer", () => {
  const denoNames = Object.keys(deno).sort();
  const nodeNames = Object.keys(node).sort();
  // Plus NodeStore and the format layer (the first npm entry's API).
  const extra = [
    "NodeStore",
    ...Object.keys(entry),
    ...Object.keys(ckpt),
    ...Object.keys(safetensors),
  ].filter((n) => !denoNames.includes(n)).sort();
  deepEqual(nodeNames.filter((n) => !denoNames.includes(n)), extra);
  deepEqual(denoNames.filter((n) => !nodeNames.includes(n)), []);
  for (const name of denoNames) {
    equal(
      (node as Record<string, unknown>)[name],
      (deno as Record<string, unknown>)[name],
      name,
    );
  }
  equal(node.NodeStore, NodeStore);
});

Deno.test("under Deno, importing node_mod.ts leaves plain paths to localStore", () => {
  equal(node.storeFor("/tmp/x.ckpt"), deno.localStore);
});
