// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The demo page (examples/browser/) in real headless Chromium: TensorFlow.js
// (from npm, bundled and served on 127.0.0.1) trains in a Worker while a
// CheckpointMonitor saves into OPFS. A run is interrupted by reloading the
// page once three checkpoints exist; the reloaded page resumes from the
// newest one and must reach exactly the losses and weights of an
// uninterrupted run; the newest checkpoint, downloaded from OPFS, must load
// with the Deno loader to the same weights. Also reports the page's longest
// frame gap while a bigger model's checkpoints are written (not asserted:
// no test asserts a time), and saves a screenshot of the resumed page.
// Needs /usr/bin/chromium (scripts/chromium.sh); without it the test is
// ignored, unless CI is set.

import { deepEqual, equal, ok } from "node:assert/strict";
import { CHROMIUM, hasChromium, launchChromium } from "./browser/_harness.ts";
import type { Page } from "./browser/_harness.ts";
import { buildDemo, serveDemo } from "../examples/browser/serve.ts";
import { loadCheckpoint, type Tensor } from "../mod.ts";

const available = hasChromium();
const inCi = Deno.env.get("CI") !== undefined && Deno.env.get("CI") !== "";
if (!available && !inCi) {
  console.log(
    `browser_demo_test: ${CHROMIUM} is missing, so the demo test is ignored (run scripts/chromium.sh; with CI set it fails instead)`,
  );
}

/** Where the test leaves its screenshot of the demo (docs/browser-demo.png came from it). */
const SCREENSHOT = "/tmp/ckpt_browser_demo.png";

/** What the demo page publishes (examples/browser/page.ts). */
interface DemoState {
  initialEpoch: number | null;
  losses: Record<string, number>;
  saves: { file: string; step: number; bytes: number; ms: number }[];
  maxFrameGapDuringSaves: number;
  maxFrameGapOutsideSaves: number;
  medianFrameGap: number;
  frames: number;
  longestOutside: { at: number; ms: number; messages: string[] } | null;
  error: string | null;
  done: boolean;
}

function demoState(page: Page): Promise<DemoState | undefined> {
  return page.evaluate(() =>
    (globalThis as { __demo?: { state: DemoState } }).__demo?.state
  );
}

/** Polls the page's state until `until` holds (or the page fails). */
async function waitFor(
  page: Page,
  until: (s: DemoState) => boolean,
  what: string,
  seconds = 300,
): Promise<DemoState> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const s = await demoState(page);
    if (s?.error) throw new Error(`the demo page failed: ${s.error}`);
    if (s !== undefined && until(s)) return s;
    if (Date.now() > end) {
      throw new Error(`the demo did not get to "${what}" in ${seconds} s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The final weights the demo's Worker sent, by name. */
async function weights(page: Page): Promise<Record<string, number[]>> {
  const w = await page.evaluate(() =>
    (globalThis as unknown as {
      __demo: { weights(): Record<string, number[]> | null };
    }).__demo.weights()
  );
  ok(w !== null && Object.keys(w).length === 6, "the final weights");
  return w;
}

const EPOCHS = 12;

Deno.test({
  name:
    "the browser demo trains tfjs, checkpoints into OPFS, and after a reload resumes to the losses of an uninterrupted run",
  ignore: !available && !inCi,
  async fn() {
    if (!available) {
      throw new Error(
        `${CHROMIUM} is missing and CI is set: run scripts/chromium.sh first`,
      );
    }
    const scratch = await Deno.makeTempDir({ prefix: "ckpt_demo_" });
    try {
      const files = await buildDemo(scratch);
      await using server = serveDemo(files);
      const url = (query: string) => `${server.origin}/?${query}`;
      const browser = await launchChromium(`${scratch}/profile`);
      try {
        const page = await browser.newPage();
        await (page as unknown as {
          setViewport(v: { width: number; height: number }): Promise<void>;
        }).setViewport({ width: 1040, height: 600 });

        // 1. The uninterrupted run.
        await page.goto(url(`dir=reference&epochs=${EPOCHS}`));
        const reference = await waitFor(page, (s) => s.done, "reference done");
        const referenceWeights = await weights(page);
        equal(reference.initialEpoch, 0);
        equal(Object.keys(reference.losses).length, EPOCHS);
        equal(reference.saves.length, EPOCHS);

        // 2. The same run, its page reloaded once 3 checkpoints exist (the
        // Worker dies wherever it is, perhaps in the middle of a write).
        await page.goto(url(`dir=run&epochs=${EPOCHS}`));
        const before = await waitFor(
          page,
          (s) => s.saves.length >= 3,
          "3 checkpoints",
        );
        await page.reload();
        const resumed = await waitFor(page, (s) => s.done, "resumed done");
        const from = resumed.initialEpoch ?? 0;
        console.log(
          `  reloaded after ${before.saves.length} saves; resumed at epoch ${from}`,
        );
        ok(from >= 3 && from < EPOCHS, `resumed at epoch ${from}`);
        // Before the reload: the same losses as the reference, as far as
        // they went; after it: exactly the reference's remaining epochs.
        for (const [epoch, loss] of Object.entries(before.losses)) {
          equal(loss, reference.losses[epoch], `epoch ${epoch} before`);
        }
        const expected = Object.fromEntries(
          Object.entries(reference.losses).filter(([e]) => Number(e) > from),
        );
        deepEqual(resumed.losses, expected);
        deepEqual(await weights(page), referenceWeights);
        await page.screenshot({ path: SCREENSHOT });
        console.log(`  screenshot: ${SCREENSHOT}`);

        // 3. The newest checkpoint, downloaded, loads in Deno to the same
        // weights.
        const newest = resumed.saves.at(-1)!.file;
        const base64 = await page.evaluate(
          (path: string) =>
            (globalThis as unknown as {
              __demo: { readBase64(p: string): Promise<string> };
            }).__demo.readBase64(path),
          newest,
        );
        const local = `${scratch}/${newest.split("/").at(-1)}`;
        await Deno.writeFile(
          local,
          Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)),
        );
        const loaded = await loadCheckpoint(local);
        for (const [name, values] of Object.entries(referenceWeights)) {
          const t = loaded.get(name) as Tensor | undefined;
          ok(t !== undefined, `${name} is in ${newest}`);
          deepEqual(Array.from(t.data as Float32Array), values, name);
        }

        // 4. Frames while a bigger model (width 1024, ~8 MiB a checkpoint)
        // saves in the background.
        await page.goto(url(`dir=frames&epochs=4&width=1024`));
        const big = await waitFor(page, (s) => s.done, "frames done");
        const mib = (big.saves[0]?.bytes ?? 0) / 2 ** 20;
        console.log(
          `  frames: ${big.frames} while training ${big.saves.length} × ${
            mib.toFixed(1)
          } MiB checkpoints (writes ${
            big.saves.map((s) => s.ms.toFixed(0)).join(", ")
          } ms); longest gap ${
            big.maxFrameGapDuringSaves.toFixed(1)
          } ms during writes, ${
            big.maxFrameGapOutsideSaves.toFixed(1)
          } ms otherwise (${JSON.stringify(big.longestOutside)}), median ${
            big.medianFrameGap.toFixed(1)
          } ms`,
        );
      } finally {
        await browser.close();
      }
    } finally {
      await Deno.remove(scratch, { recursive: true });
    }
  },
});
