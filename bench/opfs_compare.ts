// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * OPFS write speed in real headless Chromium: in one dedicated Worker, the
 * same 256 MiB written through `OpfsStore.write` (sync access handle, CRC-32
 * in a helper Worker or in place, temporary name, flush, move; and once through
 * `createWritable()` instead) and through a bare `createSyncAccessHandle` loop (write at offsets, flush, close), in
 * rotating order, after one warm-up of each. Prints the times and the ratio
 * bare time / store time (1.0: the store costs nothing), of the medians and
 * of the best runs (the machine is shared: the best runs are the least
 * disturbed).
 *
 * Run: `deno task bench:opfs` (needs /usr/bin/chromium: scripts/chromium.sh).
 * Options: `--mib=256 --chunk-mib=4 --rounds=5`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  buildPage,
  CHROMIUM,
  hasChromium,
  launchChromium,
  serveStatic,
} from "../tests/browser/_harness.ts";
import type { BenchSample } from "./browser/_opfs_worker.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mib: { type: "string", default: "256" },
    "chunk-mib": { type: "string", default: "4" },
    rounds: { type: "string", default: "5" },
  },
});
const mib = Number(values.mib);
const chunkMib = Number(values["chunk-mib"]);
const rounds = Number(values.rounds);

if (!hasChromium()) {
  console.error(`${CHROMIUM} is missing: run scripts/chromium.sh first`);
  Deno.exit(1);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const scratch = await Deno.makeTempDir({ prefix: "ckpt_opfs_bench_" });
try {
  const files = await buildPage({
    "bench/browser/_opfs_page.ts": "page.js",
    "bench/browser/_opfs_worker.ts": "worker.js",
  }, scratch);
  await using server = serveStatic(files);
  const browser = await launchChromium(`${scratch}/profile`);
  try {
    const page = await browser.newPage();
    await page.goto(
      `${server.origin}/?bytes=${mib << 20}&chunk=${
        chunkMib << 20
      }&rounds=${rounds}`,
    );
    const out = await page.evaluate(() =>
      (globalThis as { __result?: Promise<unknown> }).__result
    ) as { samples?: BenchSample[]; error?: string };
    if (out.samples === undefined) {
      throw new Error(`bench failed: ${out.error}`);
    }
    const of = (kind: string) =>
      out.samples!.filter((s) => s.kind === kind).map((s) => s.ms);
    const bare = of("bare");
    const flush = median(
      out.samples.filter((s) => s.kind === "bare").map((s) => s.flushMs),
    );
    const rate = (ms: number) => ((mib / 1024) / (ms / 1000)).toFixed(2);
    const row = (label: string, xs: number[], extra = "") =>
      console.log(
        `  ${label.padEnd(34)} ${median(xs).toFixed(0).padStart(5)} ms  (${
          rate(median(xs))
        } GiB/s${extra})  [${xs.map((x) => x.toFixed(0)).join(", ")}]`,
      );
    console.log(
      `OPFS in a Worker, ${mib} MiB in ${chunkMib} MiB chunks, ${rounds} rounds (median):`,
    );
    row("bare sync-handle loop", bare, `; flush ${flush.toFixed(0)} ms`);
    for (
      const [kind, label] of [
        ["store", "OpfsStore.write (CRC in a Worker)"],
        ["store-in-place", "OpfsStore.write (CRC in place)"],
        ["store-writable", "OpfsStore.write (createWritable)"],
      ] as const
    ) {
      const xs = of(kind);
      row(label, xs);
      console.log(
        `  ${"".padEnd(34)} ratio bare/store ${
          (median(bare) / median(xs)).toFixed(2)
        }x median, ${(Math.min(...bare) / Math.min(...xs)).toFixed(2)}x best`,
      );
    }
  } finally {
    await browser.close();
  }
} finally {
  await Deno.remove(scratch, { recursive: true });
}
