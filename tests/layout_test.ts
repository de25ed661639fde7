import { equal, throws as assertThrows } from "node:assert/strict";
import {
  checkpointFileName,
  CheckpointLayout,
  checkPrefix,
  resolvePrefix,
  stepInEpoch,
} from "../mod.ts";

Deno.test("main files are {prefix}_rank_R-{epoch}_{stepInEpoch}.ckpt under checkpoint/rank_R", () => {
  const layout = new CheckpointLayout("./output", { prefix: "llama", rank: 3 });
  equal(layout.prefix, "llama_rank_3");
  equal(layout.checkpointDir, "output/checkpoint/rank_3");
  equal(
    layout.mainFile(2, 10),
    "output/checkpoint/rank_3/llama_rank_3-2_10.ckpt",
  );
  equal(layout.metaFile, "output/checkpoint/rank_3/meta.json");
  equal(
    layout.networkFile,
    "output/checkpoint_network/rank_3/llama_rank_3-network.ckpt",
  );
  equal(
    layout.trainableFile,
    "output/checkpoint_trainable/rank_3/llama_rank_3-trainable_params.ckpt",
  );
});

Deno.test("safetensors files take the format's extension", () => {
  const layout = new CheckpointLayout("d", { format: "safetensors" });
  equal(
    layout.mainFile(1, 1),
    "d/checkpoint/rank_0/CKP_rank_0-1_1.safetensors",
  );
  equal(
    layout.networkFile,
    "d/checkpoint_network/rank_0/CKP_rank_0-network.safetensors",
  );
  // Breakpoints stay .ckpt, as in the original.
  equal(
    layout.breakpointFile(1, 1, []),
    "d/checkpoint/rank_0/CKP_rank_0-1_1_breakpoint.ckpt",
  );
});

Deno.test("an empty prefix gives _rank_R, as in the original", () => {
  equal(new CheckpointLayout("d").prefix, "CKP_rank_0");
  equal(new CheckpointLayout("d", { prefix: "" }).prefix, "_rank_0");
});

Deno.test("the step in the epoch wraps at the epoch size", () => {
  equal(stepInEpoch(1, 4), 1);
  equal(stepInEpoch(4, 4), 4);
  equal(stepInEpoch(5, 4), 1);
  equal(stepInEpoch(7, 1), 1);
  equal(checkpointFileName("P", 2, 3, "ckpt"), "P-2_3.ckpt");
});

Deno.test("collision suffix: _1 after an unsuffixed run, highest + 1 after suffixed ones", () => {
  const p = "CKP_rank_0";
  equal(resolvePrefix(p, []), p);
  equal(resolvePrefix(p, ["CKP_rank_0-1_1.ckpt"]), "CKP_rank_0_1");
  equal(resolvePrefix(p, ["CKP_rank_0-1_1.safetensors"]), "CKP_rank_0_1");
  equal(resolvePrefix(p, ["CKP_rank_0_1-1_1.ckpt"]), "CKP_rank_0_2");
  equal(
    resolvePrefix(p, [
      "CKP_rank_0-1_1.ckpt",
      "CKP_rank_0_4-1_1.ckpt",
      "CKP_rank_0_2-3_3.ckpt",
    ]),
    "CKP_rank_0_5",
  );
});

Deno.test("collision suffix ignores breakpoints, non-checkpoints, letters and other prefixes", () => {
  const p = "CKP_rank_0";
  equal(
    resolvePrefix(p, [
      "CKP_rank_0-1_1_breakpoint.ckpt",
      "CKP_rank_0-1_1.tmp",
      "meta.json",
      "CKP_rank_0-graph.meta",
      "CKP_rank_0_x-1_1.ckpt",
      "CKP_rank_0a-1_1.ckpt",
      "OTHER_rank_0-1_1.ckpt",
      "CKP_rank_0_1.ckpt",
    ]),
    p,
  );
});

Deno.test("breakpoint prefixes are suffixed against breakpoint files only", () => {
  const layout = new CheckpointLayout("d", { names: ["CKP_rank_0-1_1.ckpt"] });
  equal(layout.prefix, "CKP_rank_0_1");
  equal(layout.basePrefix, "CKP_rank_0");
  equal(
    layout.breakpointFile(2, 5, ["CKP_rank_0-1_1.ckpt"]),
    "d/checkpoint/rank_0/CKP_rank_0-2_5_breakpoint.ckpt",
  );
  equal(
    layout.breakpointFile(2, 5, ["CKP_rank_0-1_3_breakpoint.ckpt"]),
    "d/checkpoint/rank_0/CKP_rank_0_1-2_5_breakpoint.ckpt",
  );
});

Deno.test("a prefix cannot leave its folder", () => {
  for (const bad of ["a/b", "a\\b", "..", "x..y", "a\0"]) {
    assertThrows(() => checkPrefix(bad), RangeError);
    assertThrows(() => new CheckpointLayout("d", { prefix: bad }), RangeError);
  }
  assertThrows(() => checkPrefix(3), TypeError);
  equal(checkPrefix("ok.name"), "ok.name");
});
