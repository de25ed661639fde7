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

/** The CRC-32 one bit at a time: the definition, to check the tables by. */
function bitwise(bytes: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("the portable CRC-32 (slicing by 16 over aligned words) is right at every alignment, length and seed", () => {
  let seed = 987654321;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const backing = Uint8Array.from({ length: 4096 + 16 }, random);
  for (let offset = 0; offset < 8; offset++) {
    for (
      const n of [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 66, 67, 79, 80, 81]
        .concat([127, 128, 129, 255, 256, 1000, 1023, 4096])
    ) {
      const bytes = backing.subarray(offset, offset + n);
      const want = zlibCrc32(bytes) >>> 0;
      equal(crc32Portable(bytes), want, `offset ${offset}, length ${n}`);
      equal(bitwise(bytes), want, `bitwise, offset ${offset}, length ${n}`);
      const start = (random() << 24 | random() << 16 | random()) >>> 0;
      equal(
        crc32Portable(bytes, start),
        zlibCrc32(bytes, start) >>> 0,
        `offset ${offset}, length ${n}, seed ${start}`,
      );
    }
  }
  // Random lengths and cuts over a view of a bigger buffer.
  const big = Uint8Array.from({ length: 300_000 }, random);
  for (let round = 0; round < 40; round++) {
    const from = random() * 37 + random();
    const to = from + ((random() << 8 | random()) * 3);
    const bytes = big.subarray(from, to);
    const cut = Math.floor(bytes.length * random() / 256);
    equal(
      crc32Portable(bytes.subarray(cut), crc32Portable(bytes.subarray(0, cut))),
      zlibCrc32(bytes) >>> 0,
      `bytes ${from}..${to} cut at ${cut}`,
    );
  }
});
