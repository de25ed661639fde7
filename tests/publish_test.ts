// Copyright 2026 the @ckpt/monitor authors. MIT license.
// What `deno publish` would upload: the library, not the examples, the lock
// file, build output or the demo's output.

import { deepEqual, equal } from "node:assert/strict";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("..", import.meta.url));

Deno.test("deno publish --dry-run uploads no examples/, deno.lock, dist/, output/, tests/ or bench/", async () => {
  const out = await new Deno.Command("deno", {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  equal(out.code, 0, text);
  const files = [...text.matchAll(/file:\/\/\S+/g)]
    .map((m) => fileURLToPath(m[0]).slice(REPO.length));
  const outside = files.filter((f) => !f.startsWith("src/"));
  deepEqual(outside.sort(), [
    "LICENSE",
    "README.md",
    "browser.ts",
    "cli.ts",
    "deno.json",
    "mod.ts",
  ]);
});
