// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The Node.js figure of issue 15: a save of 1 GiB through the npm
 * package's NodeStore vs `fs.writeFile` + fsync of the same bytes, under
 * Node.js, rounds interleaved in one run (bench/_node_save.mjs). Two
 * pairs, each a baseline and the store writing the same bytes: the raw
 * 1 GiB fed to `NodeStore.write` in 4 MiB pieces (temporary file, CRC-32,
 * chmod, fsync, rename, folder fsync), and a real `.ckpt` save of a 1 GiB
 * Float32 tensor (`encodeCkpt` into `NodeStore.write`) against
 * `fs.writeFile` + fsync of that file's bytes. Builds the package first
 * (`dist/npm`).
 *
 * Run: `npx --yes deno@2.9.6 task bench:node [--mib=1024] [--rounds=5]`
 *
 * @module
 */
import { join } from "node:path";
import { buildNpm, ROOT } from "../scripts/build_npm.ts";

const args = Object.fromEntries(
  Deno.args.map((a) => a.replace(/^--/, "").split("=") as [string, string]),
);
const mib = Number(args.mib ?? 1024);
const rounds = Number(args.rounds ?? 5);

const pkg = await buildNpm();
const work = join(ROOT, "dist", ".bench-node");
await Deno.mkdir(work, { recursive: true });
try {
  const child = new Deno.Command("node", {
    args: [
      join(ROOT, "bench", "_node_save.mjs"),
      pkg,
      work,
      String(mib),
      String(rounds),
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await child.status;
  if (!status.success) Deno.exit(status.code);
} finally {
  await Deno.remove(work, { recursive: true });
}
