// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The OPFS store in real headless Chromium: the store conformance checks on
// a page's main thread and in a dedicated Worker, against the built
// dist/browser/ckpt.js; the files survive a reload and a browser restart;
// a full quota is a clear error. Needs /usr/bin/chromium
// (scripts/chromium.sh); without it the test is ignored, unless CI is set.

import { deepEqual } from "node:assert/strict";
import {
  buildPage,
  CHROMIUM,
  hasChromium,
  launchChromium,
  type Page,
  serveStatic,
} from "./browser/_harness.ts";
import type { CheckResult } from "./browser/_conformance.ts";

const available = hasChromium();
const inCi = Deno.env.get("CI") !== undefined && Deno.env.get("CI") !== "";
if (!available && !inCi) {
  console.log(
    `browser_opfs_test: ${CHROMIUM} is missing, so the OPFS tests are ignored (run scripts/chromium.sh; with CI set they fail instead)`,
  );
}

/** Reads the outcome the page publishes; fails on a page error. */
async function outcome(
  page: Page,
): Promise<CheckResult[]> {
  const out = await page.evaluate(() =>
    (globalThis as { __result?: Promise<unknown> }).__result
  ) as { results?: CheckResult[]; error?: string } | undefined;
  if (out?.results === undefined) {
    throw new Error(`the page failed: ${out?.error ?? "no result published"}`);
  }
  return out.results;
}

function assertAllPassed(results: CheckResult[], min: number): void {
  const failed = results.filter((r) => !r.ok).map((r) =>
    `${r.name}: ${r.detail}`
  );
  deepEqual(
    failed,
    [],
    `${failed.length} of ${results.length} browser checks failed:\n${
      failed.join("\n")
    }`,
  );
  if (results.length < min) {
    throw new Error(
      `only ${results.length} checks ran, expected ${min} or more`,
    );
  }
}

Deno.test({
  name:
    "OpfsStore conforms in Chromium (page and Worker), persists, and reports a full quota",
  ignore: !available && !inCi,
  async fn() {
    if (!available) {
      throw new Error(
        `${CHROMIUM} is missing and CI is set: run scripts/chromium.sh first`,
      );
    }
    const scratch = await Deno.makeTempDir({ prefix: "ckpt_browser_" });
    const phases: string[] = [];
    let t0 = performance.now();
    const phase = (name: string) => {
      const t = performance.now();
      phases.push(`${name} ${((t - t0) / 1000).toFixed(1)} s`);
      t0 = t;
    };
    try {
      const files = await buildPage({
        "tests/browser/_page.ts": "page.js",
        "tests/browser/_worker.ts": "worker.js",
      }, scratch);
      phase("build");
      await using server = serveStatic(files);
      const profile = `${scratch}/profile`;
      const url = (phase: string) => `${server.origin}/?phase=${phase}`;

      let browser = await launchChromium(profile);
      phase("launch");
      try {
        const page = await browser.newPage();
        await page.goto(url("conformance"));
        const results = await outcome(page);
        phase("conformance");
        for (const r of results.filter((r) => r.name.startsWith("storage"))) {
          console.log(`  ${r.name}`);
        }
        // 10 checks in each of 4 contexts, and the storage report.
        assertAllPassed(results, 4 * 10 + 1);

        await page.goto(url("reload"));
        assertAllPassed(await outcome(page), 4);
        await page.reload();
        assertAllPassed(await outcome(page), 4);
        phase("reloads");
      } finally {
        await browser.close();
      }

      // A new browser on the same profile: the files were on disk.
      browser = await launchChromium(profile);
      try {
        const page = await browser.newPage();
        await page.goto(url("reload"));
        assertAllPassed(await outcome(page), 4);
        phase("restart");

        // A quota just above what the origin uses: an 8 MiB write fails.
        const usage = await page.evaluate(async () => {
          const storage = (navigator as unknown as {
            storage: { estimate(): Promise<{ usage?: number }> };
          }).storage;
          return (await storage.estimate()).usage ?? 0;
        });
        const cdp = await page.createCDPSession();
        await cdp.send("Storage.overrideQuotaForOrigin", {
          origin: server.origin,
          quotaSize: usage + 2 * 1024 * 1024,
        });
        await page.goto(url("quota"));
        assertAllPassed(await outcome(page), 2);
        await cdp.detach();
        phase("quota");
      } finally {
        await browser.close();
      }
      console.log(`  ${phases.join(", ")}`);
    } finally {
      await Deno.remove(scratch, { recursive: true });
    }
  },
});
