// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Positional writes (ByteSink.writeAt): the local store's sink writes at
// offsets on several handles, and the encrypting sink writes its blocks at
// their offsets, several at once. The files must be byte for byte those of
// the ordered writer.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  atomicWrite,
  type ByteSink,
  checksumFile,
  createEncryptingSink,
  type EncMode,
  loadCheckpoint,
  saveCheckpoint,
  type Tensor,
} from "../mod.ts";
import { MemorySink, orderedStore, pattern } from "./_crypto_helpers.ts";
import { _positional } from "../src/core/_positional.ts";
import {
  listDir,
  smallFileSystem,
  spawnChild,
  unmount,
  withTempDir,
} from "./_helpers.ts";

const MODES: [EncMode, number][] = [
  ["AES-GCM", 32],
  ["AES-CBC", 16],
  ["SM4-CBC", 16],
];

/**
 * Runs `fn` with `crypto.getRandomValues` giving a fixed sequence, so that
 * two encryptions of the same bytes choose the same IVs and can be compared
 * byte for byte. Only 16-byte requests (IVs) are fixed: the temporary
 * file's name stays random.
 */
async function fixedIvs<T>(fn: () => Promise<T>): Promise<T> {
  const original = crypto.getRandomValues;
  let n = 0;
  crypto.getRandomValues = (<V extends ArrayBufferView | null>(array: V) => {
    if (array === null || array.byteLength !== 16) {
      return original.call(crypto, array as ArrayBufferView) as V;
    }
    {
      const bytes = new Uint8Array(
        array.buffer,
        array.byteOffset,
        array.byteLength,
      );
      for (let i = 0; i < bytes.length; i++) bytes[i] = (n * 31 + i) & 0xff;
      n++;
    }
    return array;
  }) as typeof crypto.getRandomValues;
  try {
    return await fn();
  } finally {
    crypto.getRandomValues = original;
  }
}

/**
 * A sink that takes positional writes only, in memory, finishing them in a
 * shuffled order (each after a random short delay).
 */
class ShuffledSink implements ByteSink {
  ranges: [number, Uint8Array][] = [];
  write(): Promise<void> {
    return Promise.reject(new Error("write() on a positional sink"));
  }
  async writeAt(position: number, chunk: Uint8Array): Promise<void> {
    const copy = chunk.slice();
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
    this.ranges.push([position, copy]);
  }
  bytes(): Uint8Array {
    const end = Math.max(0, ...this.ranges.map(([at, b]) => at + b.length));
    const out = new Uint8Array(end);
    const covered = new Uint8Array(end);
    for (const [at, b] of this.ranges) {
      out.set(b, at);
      for (let i = at; i < at + b.length; i++) covered[i]! += 1;
    }
    ok(covered.every((c) => c === 1), "every byte written exactly once");
    return out;
  }
}

/** Streams `plain` into an encrypting sink over `inner` in odd chunks. */
async function encryptInto(
  inner: ByteSink,
  plain: Uint8Array,
  mode: EncMode,
  key: Uint8Array,
  pieceSize: number,
): Promise<void> {
  const sink = createEncryptingSink(inner, { key, mode, pieceSize });
  const cuts = [1, 4097, 3 * pieceSize + 7, 13, pieceSize - 1, 2 * pieceSize];
  let at = 0;
  for (let i = 0; at < plain.length; i++) {
    const n = cuts[i % cuts.length]!;
    await sink.write(plain.subarray(at, at + n));
    at += n;
  }
  await sink.finish();
}

Deno.test("the positional writer's files equal the ordered writer's for GCM, CBC and SM4, multi-block and odd sizes, small and large pieces", async () => {
  await withTempDir(async (dir) => {
    for (const [mode, keyLength] of MODES) {
      const key = pattern(keyLength, 7);
      // 1000-byte pieces are gathered into 4 MiB writes; 256 KiB + 3 pieces
      // are written block by block.
      for (const pieceSize of [1000, 256 * 1024 + 3]) {
        const plain = pattern(5 * pieceSize + 12_345, pieceSize);
        const ordered = new MemorySink();
        await fixedIvs(() => encryptInto(ordered, plain, mode, key, pieceSize));
        const shuffled = new ShuffledSink();
        await fixedIvs(() =>
          encryptInto(shuffled, plain, mode, key, pieceSize)
        );
        const what = `${mode}, pieces of ${pieceSize}`;
        deepEqual(shuffled.bytes(), ordered.bytes(), `${what}: in memory`);
        const path = `${dir}/${mode}-${pieceSize}.bin`;
        const written = await fixedIvs(() =>
          atomicWrite(path, async (sink) => {
            ok(
              typeof sink.writeAt === "function",
              "the local sink has writeAt",
            );
            await encryptInto(sink, plain, mode, key, pieceSize);
          })
        );
        deepEqual(await Deno.readFile(path), ordered.bytes(), `${what}: file`);
        equal(written.bytes, ordered.bytes().length);
        equal(written.checksum, await checksumFile(path), what);
      }
    }
    deepEqual(
      (await listDir(dir)).filter((n) => n.endsWith(".tmp")),
      [],
      "no temporary file left",
    );
  });
});

Deno.test("saveCheckpoint writes the same encrypted bytes through positional and ordered writes (both formats, multi-block tensors of odd sizes), and they load", async () => {
  await withTempDir(async (dir) => {
    const network = new Map<string, Tensor>([
      ["big", {
        dtype: "Float32",
        shape: [786_437],
        data: new Float32Array(786_437).map((_, i) => i),
      }],
      ["odd", { dtype: "UInt8", shape: [3, 7], data: pattern(21, 3) }],
      ["mid", {
        dtype: "Float64",
        shape: [131_073],
        data: new Float64Array(131_073).fill(0.5),
      }],
    ]);
    for (const [mode, keyLength] of MODES) {
      for (const format of ["ckpt", "safetensors"] as const) {
        const key = pattern(keyLength, 9);
        const a = `${dir}/a-${mode}.${format}`;
        const b = `${dir}/b-${mode}.${format}`;
        const positional = await fixedIvs(() =>
          saveCheckpoint(a, network, { encKey: key, encMode: mode, format })
        );
        const ordered = await fixedIvs(() =>
          saveCheckpoint(b, network, {
            encKey: key,
            encMode: mode,
            format,
            store: orderedStore,
          })
        );
        deepEqual(
          await Deno.readFile(a),
          await Deno.readFile(b),
          `${mode} ${format}`,
        );
        equal(positional.checksum, ordered.checksum);
        equal(positional.bytes, ordered.bytes);
        const loaded = await loadCheckpoint(a, { decKey: key, decMode: mode });
        deepEqual(loaded.get("big"), network.get("big"));
        deepEqual(loaded.get("odd"), network.get("odd"));
      }
    }
  });
});

Deno.test("the local sink's positional writes: a gap or an overlap fails the commit and keeps the old file; write and writeAt do not mix", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f.bin`;
    await atomicWrite(path, (sink) => sink.write(new Uint8Array([9])));
    for (
      const ranges of [
        [[0, 4], [5, 3]], // gap
        [[0, 4], [3, 3]], // overlap
        [[1, 4]], // does not start at 0
      ]
    ) {
      await rejects(
        atomicWrite(path, async (sink) => {
          await Promise.all(
            ranges.map(([at, n]) => sink.writeAt!(at!, new Uint8Array(n!))),
          );
        }),
        /positional writes (left a gap|overlap)/,
      );
      deepEqual(await Deno.readFile(path), new Uint8Array([9]));
    }
    await rejects(
      atomicWrite(path, async (sink) => {
        await sink.writeAt!(0, new Uint8Array(2));
        await sink.write(new Uint8Array(2));
      }),
      /write\(\) after writeAt\(\)/,
    );
    await rejects(
      atomicWrite(path, async (sink) => {
        await sink.write(new Uint8Array(2));
        await sink.writeAt!(2, new Uint8Array(2));
      }),
      /writeAt\(\) after write\(\)/,
    );
    await rejects(
      atomicWrite(path, (sink) => sink.writeAt!(-1, new Uint8Array(2))),
      RangeError,
    );
    deepEqual(await listDir(dir), ["f.bin"]);
    // Ranges written out of order, many at once, commit with the checksum
    // of the whole.
    const whole = pattern(10_000_000, 5);
    const cuts = [0, 1, 4096, 3_000_001, 3_000_002, 7_777_777, 10_000_000];
    const written = await atomicWrite(path, async (sink) => {
      const parts = cuts.slice(1).map((end, i) => [cuts[i]!, end] as const)
        .reverse();
      await Promise.all(
        parts.map(([start, end]) =>
          sink.writeAt!(start, whole.subarray(start, end))
        ),
      );
    });
    deepEqual(await Deno.readFile(path), whole);
    equal(written.checksum, await checksumFile(path));
    equal(written.bytes, whole.length);
  });
});

const CHILD = fileURLToPath(
  new URL("./_positional_fail_child.ts", import.meta.url),
);
const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test({
  name:
    "a disk that fills up midway through a positional encrypted save: a typed error, no unhandled rejection, no temporary file, the earlier checkpoint intact (child process)",
  sanitizeResources: false,
  fn: async () => {
    const dir = await smallFileSystem("24m");
    if (dir === null) {
      console.log("    skipped: cannot mount a tmpfs here (needs root)");
      return;
    }
    try {
      const child = spawnChild(CHILD, dir, [dir], ROOT);
      const { code, stdout, stderr } = await child.output();
      const err = new TextDecoder().decode(stderr);
      equal(err.includes("Uncaught"), false, err);
      equal(code, 0, err);
      const lines = new TextDecoder().decode(stdout).trim().split("\n");
      equal(lines.pop(), "done", err);
      const outcomes = lines.map((l) => JSON.parse(l));
      equal(outcomes.length, 3);
      for (const o of outcomes) {
        equal(o.code, "ENOSPC", JSON.stringify(o));
        ok(/no space left/.test(o.message), o.message);
        deepEqual(o.files, ["earlier.ckpt", "filler"], JSON.stringify(o));
        equal(o.earlierLoads, true);
      }
    } finally {
      await unmount(dir);
    }
  },
});

Deno.test("plain saves with appending writes cut into parts written side by side (split) give the ordered bytes and checksum", async () => {
  await withTempDir(async (dir) => {
    const network = new Map<string, Tensor>([
      ["big", {
        dtype: "Float32",
        shape: [786_437],
        data: new Float32Array(786_437).map((_, i) => i),
      }],
      ["odd", { dtype: "UInt8", shape: [3, 7], data: pattern(21, 3) }],
    ]);
    for (const format of ["ckpt", "safetensors"] as const) {
      const a = `${dir}/a.${format}`;
      const b = `${dir}/b.${format}`;
      const saved = { ..._positional };
      let ordered;
      let split;
      try {
        _positional.split = 0;
        ordered = await saveCheckpoint(b, network, { format });
        _positional.split = 4096;
        split = await saveCheckpoint(a, network, { format });
      } finally {
        Object.assign(_positional, saved);
      }
      deepEqual(await Deno.readFile(a), await Deno.readFile(b), format);
      equal(split.checksum, ordered.checksum);
      equal(split.bytes, ordered.bytes);
    }
  });
});
