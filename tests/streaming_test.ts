// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok } from "node:assert/strict";
import type { ByteSink, Tensor } from "../mod.ts";
import { encodeCkpt } from "../src/format/ckpt.ts";
import { encodeSafetensors } from "../src/format/safetensors.ts";
import type { EncodeEntry } from "../src/format/entry.ts";

/** A sink that records each chunk's buffer and a copy of its bytes. */
function recordingSink(): ByteSink & {
  chunks: { buffer: ArrayBufferLike; length: number }[];
  bytes(): Uint8Array;
} {
  const chunks: { buffer: ArrayBufferLike; length: number }[] = [];
  const copies: Uint8Array[] = [];
  return {
    chunks,
    write(chunk) {
      chunks.push({ buffer: chunk.buffer, length: chunk.byteLength });
      copies.push(chunk.slice());
      return Promise.resolve();
    },
    bytes() {
      const out = new Uint8Array(copies.reduce((a, c) => a + c.length, 0));
      let at = 0;
      for (const c of copies) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
  };
}

const MiB = 1024 * 1024;
const big: Tensor = {
  dtype: "Float32",
  shape: [3 * MiB], // 12 MiB
  data: new Float32Array(3 * MiB).fill(0.5),
};
const small = (i: number): Tensor => ({
  dtype: "Float32",
  shape: [1000],
  data: new Float32Array(1000).fill(i),
});
const entries: EncodeEntry[] = [
  { name: "a", value: small(1) },
  { name: "big", value: big },
  { name: "b", value: small(2) },
  { name: "s", value: "text" },
];

for (
  const [label, encode] of [
    [".ckpt", (s: ByteSink) => encodeCkpt(s, entries)],
    ["safetensors", (s: ByteSink) => encodeSafetensors(s, entries)],
  ] as const
) {
  Deno.test(`the ${label} writer streams large tensors from the caller's memory and reuses one buffer for the rest`, async () => {
    const first = recordingSink();
    await encode(first);
    const second = recordingSink();
    await encode(second);
    deepEqual(second.bytes(), first.bytes());
    // The 12 MiB tensor arrives as views of its own buffer, 4 MiB at most each.
    const direct = first.chunks.filter((c) => c.buffer === big.data.buffer);
    deepEqual(direct.map((c) => c.length), [4 * MiB, 4 * MiB, 4 * MiB]);
    // Everything else went through one staging buffer, the same in both saves.
    const staged = new Set(
      [...first.chunks, ...second.chunks]
        .filter((c) => c.buffer !== big.data.buffer)
        .map((c) => c.buffer),
    );
    equal(staged.size, 1);
    ok([...staged][0]!.byteLength <= 4 * MiB);
  });
}
