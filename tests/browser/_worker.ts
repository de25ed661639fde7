// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The dedicated Worker of the browser test page: runs what the page asks
// for against the built ckpt.js and posts the results back.
/// <reference lib="deno.worker" />

import {
  checkQuota,
  type ConformanceOptions,
  loadLib,
  runConformance,
} from "./_conformance.ts";

/** What the page asks for. */
type Request =
  | { kind: "conformance"; options: ConformanceOptions }
  | { kind: "quota"; label: string; options: ConformanceOptions["store"] };

self.onmessage = async (event: MessageEvent<Request>) => {
  try {
    const lib = await loadLib();
    const request = event.data;
    const results = request.kind === "conformance"
      ? await runConformance(lib, request.options)
      : [await checkQuota(lib, request.label, request.options)];
    self.postMessage({ results });
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};
