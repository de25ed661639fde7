// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual as assertEquals, equal, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { spawnChild, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_fuzz_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SEED = 20261205;
const MUTANTS = 2000;

Deno.test(`${MUTANTS} seeded mutants of plain and encrypted files: typed errors only, none over 5 s, and no file we wrote loads other values`, async () => {
  await withTempDir(async (dir) => {
    // A child with Deno's default handling: an unhandled rejection ends it.
    const child = spawnChild(
      CHILD,
      dir,
      [dir, String(SEED), String(MUTANTS)],
      ROOT,
    );
    const { code, stdout, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    equal(err.includes("Uncaught"), false, err);
    equal(code, 0, err);
    const summary = JSON.parse(new TextDecoder().decode(stdout));
    assertEquals(summary.failures, []);
    equal(summary.cases, MUTANTS);
    ok(summary.maxMs < 5000, `slowest case ${summary.maxMs} ms`);
    ok(summary.maxRssMiB < 1024, `RSS reached ${summary.maxRssMiB} MiB`);
    // Every way of reading saw every mutant, and most were refused.
    let refused = 0;
    for (
      const [k, n] of Object.entries(summary.outcomes as Record<string, number>)
    ) {
      if (k.startsWith("load:") && k !== "load: loaded") refused += n;
    }
    ok(refused > MUTANTS / 2, JSON.stringify(summary.outcomes));
  });
});
