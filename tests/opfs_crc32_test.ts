// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The OPFS store's checksum pieces against zlib: the CRCs of parts joined
// with crc32Combine, and ParallelCrc32 over mixed chunk sizes. Under Deno the helper Worker cannot start (Deno has module
// Workers only), so ParallelCrc32 computes in place here; the browser test
// covers the helper.

import { crc32 } from "node:zlib";
import { equal } from "node:assert/strict";
import { crc32Combine } from "../src/core/_crc32.ts";
import { ParallelCrc32 } from "../src/store/opfs/_parallel_crc32.ts";

const bytes = new Uint8Array(65_536 + 13).map((_, i) =>
  (i * 2_654_435_761) >>> 24
);

Deno.test("crc32Combine joins the CRCs of two parts", () => {
  for (const cut of [0, 1, 8, 4097, bytes.length - 1, bytes.length]) {
    const a = bytes.subarray(0, cut);
    const b = bytes.subarray(cut);
    equal(
      crc32Combine(crc32(a), crc32(b), b.length),
      crc32(bytes),
      `cut ${cut}`,
    );
  }
});

Deno.test("ParallelCrc32 gives zlib's checksum string over mixed chunks", async () => {
  const big = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => i * 7);
  const crc = new ParallelCrc32(true);
  for (
    const [from, to] of [[0, 10], [10, 2_000_000], [2_000_000, big.length]]
  ) {
    await crc.update(big.subarray(from, to));
  }
  equal(
    await crc.digest(),
    `crc32:${crc32(big).toString(16).padStart(8, "0")}`,
  );
});
