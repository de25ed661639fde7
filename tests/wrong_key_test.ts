// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual as assertEquals, equal } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { spawnChild, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_wrong_key_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("a wrong CBC key, a flipped byte near a block's end, or a sink failing midway is a typed error and the process goes on", async () => {
  await withTempDir(async (dir) => {
    const child = spawnChild(CHILD, dir, [dir], ROOT);
    const { code, stdout, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    equal(err.includes("Uncaught"), false, err);
    equal(code, 0, err);
    const lines = new TextDecoder().decode(stdout).trim().split("\n");
    equal(lines.pop(), "done");
    const sinks = lines.filter((l) => l.includes("sinkFailure"));
    assertEquals(
      sinks.map((l) => JSON.parse(l).sinkFailure),
      new Array(6).fill("disk full"),
    );
    const reads = lines.filter((l) => !l.includes("sinkFailure"));
    equal(reads.length, 8);
    for (const line of reads) {
      const r = JSON.parse(line);
      assertEquals(
        [r.load, r.open, r.verify],
        ["DecryptionError", "DecryptionError", "verify:decryption"],
        line,
      );
    }
  });
});
