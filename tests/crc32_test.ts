// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The portable CRC-32 (used where the runtime has no zlib, e.g. a browser)
// agrees with zlib's own, which `gzip` and Python's `zlib.crc32` compute.

import { equal } from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, crc32Portable } from "../src/core/_crc32.ts";

Deno.test("the portable CRC-32 equals zlib's on known and random inputs, any split", () => {
  const text = new TextEncoder().encode("123456789");
  equal(crc32Portable(text), 0xcbf43926); // the standard check value
  equal(crc32Portable(new Uint8Array(0)), 0);
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  for (const n of [1, 7, 8, 9, 63, 64, 65, 1000, 100_003]) {
    const bytes = Uint8Array.from({ length: n }, random);
    equal(crc32Portable(bytes), zlibCrc32(bytes) >>> 0, `length ${n}`);
    const cut = Math.floor(n / 3);
    equal(
      crc32Portable(bytes.subarray(cut), crc32Portable(bytes.subarray(0, cut))),
      zlibCrc32(bytes) >>> 0,
      `length ${n} in two pieces`,
    );
  }
  equal(crc32(text), 0xcbf43926);
  equal(crc32(text.subarray(4), crc32(text.subarray(0, 4))), 0xcbf43926);
});
