// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The Workers run bundled copies of their modules (`*_worker_code.ts`):
// those copies must be what `deno task bundle:workers` makes of the
// sources now, or the Workers would run old code.
import { equal } from "node:assert/strict";

Deno.test("the bundled Worker code matches its sources (else: deno task bundle:workers)", async () => {
  const root = new URL("../", import.meta.url);
  const { code, stderr } = await new Deno.Command("deno", {
    args: [
      "run",
      "--allow-read=.",
      "--allow-run=deno",
      "tools/bundle_workers.ts",
      "--check",
    ],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(new TextDecoder().decode(stderr), "");
  equal(code, 0);
});
