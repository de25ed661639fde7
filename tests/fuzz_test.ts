// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual as assertEquals, equal, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { spawnChild, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_fuzz_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SEED = 20261205;
const MUTANTS = 2000;
/** Every RESUME_EVERY-th mutant also goes through resume and the CLI. */
const RESUME_EVERY = 10;
// A larger run by hand (every mutant through resume and the CLI too):
//   deno run --allow-read=.,/tmp/f --allow-write=/tmp/f tests/_fuzz_child.ts \
//     /tmp/f <seed> <mutants> 1

Deno.test(`${MUTANTS} seeded mutants of plain and encrypted files (every ${RESUME_EVERY}th also through findResumeCheckpoint, resume and the CLI): typed errors only, none over 5 s, and no file we wrote loads or resumes with other values`, async () => {
  await withTempDir(async (dir) => {
    // A child with Deno's default handling: an unhandled rejection ends it.
    const child = spawnChild(
      CHILD,
      dir,
      [dir, String(SEED), String(MUTANTS), String(RESUME_EVERY)],
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
    // Resume and the command line saw theirs: most resumes fell back to the
    // intact older file, and every command ran each time.
    const o = summary.outcomes as Record<string, number>;
    const sum = (prefix: string) =>
      Object.entries(o).filter(([k]) => k.startsWith(prefix))
        .reduce((n, [, v]) => n + v, 0);
    const resumeCases = MUTANTS / RESUME_EVERY;
    for (const op of ["find:", "resume:", "cli inspect:", "cli verify:"]) {
      equal(sum(op), resumeCases, `${op} ${JSON.stringify(o)}`);
    }
    equal(sum("cli latest:"), resumeCases);
    ok((o["resume: older"] ?? 0) > resumeCases / 2, JSON.stringify(o));
  });
});
