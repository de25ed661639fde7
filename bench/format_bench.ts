// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `deno task bench bench/format_bench.ts`: saving and loading a 128 MiB
 * Float32 network (the 1 GiB benchmark network scaled by 1/8) against raw
 * I/O of the same bytes, and the encoders alone against a plain copy. Each
 * group's baseline is the raw operation, so `deno bench` prints the ratio.
 * The last group compares the checksum candidates. The 1 GiB figures come
 * from `deno task bench:save`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { loadCheckpoint, saveCheckpoint } from "../mod.ts";
import type { ByteSink } from "../src/core/io.ts";
import { encodeCkpt } from "../src/format/ckpt.ts";
import { encodeSafetensors } from "../src/format/safetensors.ts";
import { Crc32 } from "../src/store/_checksum.ts";
import { benchNetwork, rawRead, rawWrite } from "./_network.ts";

const { network, bytes } = benchNetwork(1 / 8);
const entries = [...network].map(([name, value]) => ({ name, value }));
const dir = await Deno.makeTempDir({ prefix: "ckpt_format_bench_" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});

// Files to read, written once.
await saveCheckpoint(`${dir}/read.ckpt`, network);
await saveCheckpoint(`${dir}/read.safetensors`, network, {
  format: "safetensors",
});
await rawWrite(`${dir}/read.raw`, bytes);

let n = 0;
Deno.bench("raw write loop + fsync", {
  group: "save 128 MiB",
  baseline: true,
}, async () => {
  await rawWrite(`${dir}/w${n++}.raw`, bytes);
});
Deno.bench("saveCheckpoint .ckpt", { group: "save 128 MiB" }, async () => {
  await saveCheckpoint(`${dir}/w${n++}.ckpt`, network);
});
Deno.bench("saveCheckpoint safetensors", {
  group: "save 128 MiB",
}, async () => {
  await saveCheckpoint(`${dir}/w${n++}.safetensors`, network, {
    format: "safetensors",
  });
});

Deno.bench("raw read into one buffer", {
  group: "load 128 MiB",
  baseline: true,
}, async () => {
  await rawRead(`${dir}/read.raw`);
});
Deno.bench("loadCheckpoint .ckpt", { group: "load 128 MiB" }, async () => {
  await loadCheckpoint(`${dir}/read.ckpt`);
});
Deno.bench("loadCheckpoint safetensors", {
  group: "load 128 MiB",
}, async () => {
  await loadCheckpoint(`${dir}/read.safetensors`);
});

// The encoders alone, into a sink that copies into a reused (touched) buffer.
const target = new Uint8Array(bytes.length + (1 << 20));
function copySink(): ByteSink {
  let at = 0;
  return {
    write(chunk) {
      target.set(chunk, at % (target.length - chunk.length));
      at += chunk.length;
      return Promise.resolve();
    },
  };
}
Deno.bench("copy the tensor bytes (4 MiB pieces)", {
  group: "encode 128 MiB in memory",
  baseline: true,
}, async () => {
  const sink = copySink();
  for (let at = 0; at < bytes.length; at += 4 << 20) {
    await sink.write(bytes.subarray(at, at + (4 << 20)));
  }
});
Deno.bench("encodeCkpt", { group: "encode 128 MiB in memory" }, async () => {
  await encodeCkpt(copySink(), entries);
});
Deno.bench("encodeSafetensors", {
  group: "encode 128 MiB in memory",
}, async () => {
  await encodeSafetensors(copySink(), entries);
});

// The checksum candidates, over the same 128 MiB in 4 MiB pieces.
Deno.bench("CRC-32, node:zlib (chosen)", {
  group: "checksum 128 MiB",
  baseline: true,
}, () => {
  const crc = new Crc32();
  for (let at = 0; at < bytes.length; at += 4 << 20) {
    crc.update(bytes.subarray(at, at + (4 << 20)));
  }
  crc.digest();
});
Deno.bench("SHA-256, node:crypto", { group: "checksum 128 MiB" }, () => {
  const h = createHash("sha256");
  for (let at = 0; at < bytes.length; at += 4 << 20) {
    h.update(bytes.subarray(at, at + (4 << 20)));
  }
  h.digest("hex");
});
Deno.bench("SHA-256, Web Crypto per 4 MiB piece, concurrent", {
  group: "checksum 128 MiB",
}, async () => {
  const pieces: Promise<ArrayBuffer>[] = [];
  for (let at = 0; at < bytes.length; at += 4 << 20) {
    pieces.push(
      crypto.subtle.digest("SHA-256", bytes.subarray(at, at + (4 << 20))),
    );
  }
  await Promise.all(pieces);
});
const CRC_TABLE = (() => {
  const t = new Int32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const p = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (p >>> 8) ^ t[p & 255]!;
    }
  }
  return t;
})();
Deno.bench("CRC-32, TypeScript slicing-by-8", {
  group: "checksum 128 MiB",
}, () => {
  const w = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  const t = CRC_TABLE;
  let crc = ~0;
  for (let i = 0; i + 1 < w.length; i += 2) {
    const a = w[i]! ^ crc, b = w[i + 1]!;
    crc = t[1792 + (a & 255)]! ^ t[1536 + ((a >>> 8) & 255)]! ^
      t[1280 + ((a >>> 16) & 255)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + (b & 255)]! ^ t[512 + ((b >>> 8) & 255)]! ^
      t[256 + ((b >>> 16) & 255)]! ^ t[b >>> 24]!;
  }
  if (crc === 42) console.log(crc);
});
