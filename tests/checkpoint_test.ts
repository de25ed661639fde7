// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  checksumFile,
  CorruptCheckpointError,
  loadCheckpoint,
  type Network,
  openCheckpoint,
  saveCheckpoint,
  type SaveCheckpointOptions,
  type Tensor,
} from "../mod.ts";
import { listDir, withTempDir } from "./_helpers.ts";

const w: Tensor = {
  dtype: "Float32",
  shape: [2],
  data: new Float32Array([1, 2]),
};

Deno.test("saveCheckpoint returns the size and a checksum that checksumFile recomputes, for both formats", async () => {
  await withTempDir(async (dir) => {
    for (const format of ["ckpt", "safetensors"] as const) {
      const path = `${dir}/m.${format}`;
      const saved = await saveCheckpoint(path, { w }, { format });
      equal(saved.path, path);
      equal(saved.bytes, (await Deno.stat(path)).size);
      ok(/^crc32:[0-9a-f]{8}$/.test(saved.checksum), saved.checksum);
      equal(await checksumFile(path), saved.checksum);
      equal((await Deno.stat(path)).mode! & 0o777, 0o400);
    }
  });
});

Deno.test("saveCheckpoint replaces an earlier read-only checkpoint of the same name", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    await saveCheckpoint(path, { w });
    const v2: Tensor = { dtype: "Int8", shape: [1], data: new Int8Array([9]) };
    await saveCheckpoint(path, { v2 });
    deepEqual([...(await loadCheckpoint(path)).keys()], ["v2"]);
    deepEqual(await listDir(dir), ["m.ckpt"]);
  });
});

Deno.test("saveCheckpoint accepts a Map, a record or an iterable of parameters and keeps their order", async () => {
  await withTempDir(async (dir) => {
    const b: Tensor = { dtype: "Int8", shape: [], data: new Int8Array([3]) };
    const networks: Network[] = [
      new Map([["z", w], ["a", b]]),
      { z: w, a: b },
      [{ name: "z", ...w }, { name: "a", ...b, requiresGrad: false }],
    ];
    for (const [i, network] of networks.entries()) {
      await saveCheckpoint(`${dir}/${i}.ckpt`, network);
      deepEqual([...(await loadCheckpoint(`${dir}/${i}.ckpt`)).keys()], [
        "z",
        "a",
      ]);
    }
  });
});

Deno.test("bad arguments to saveCheckpoint are TypeError/RangeError naming the value, and write nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/x.ckpt`;
    const cases: [
      unknown,
      unknown,
      SaveCheckpointOptions | undefined,
      ErrorConstructor,
      RegExp,
    ][] = [
      [
        42,
        { w },
        undefined,
        TypeError,
        /path must be a string, received number 42/,
      ],
      ["", { w }, undefined, RangeError, /path must be non-empty/],
      [
        path,
        7,
        undefined,
        TypeError,
        /expected an iterable of parameters, a Map or a record, received number 7/,
      ],
      [
        path,
        { "a\0b": w },
        undefined,
        RangeError,
        /without NUL, received "a\\u0000b"/,
      ],
      [
        path,
        { w: { dtype: "Float32", shape: [3], data: new Float32Array(2) } },
        undefined,
        RangeError,
        /needs 3 elements, data has 2/,
      ],
      [
        path,
        { w: { dtype: "Float32", shape: [2], data: [1, 2] } },
        undefined,
        TypeError,
        /needs a Float32Array, received an array/,
      ],
      [
        path,
        { w: { dtype: "Float8", shape: [2], data: new Uint8Array(2) } },
        undefined,
        TypeError,
        /unknown dtype string "Float8"/,
      ],
      [
        path,
        { w },
        { format: "npz" as "ckpt" },
        RangeError,
        /format must be "ckpt" or "safetensors", received "npz"/,
      ],
      [
        path,
        { w },
        { splitSize: 0 },
        RangeError,
        /splitSize must be a positive integer, received number 0/,
      ],
      [
        path,
        { w },
        { fileMode: -1 },
        RangeError,
        /fileMode must be an integer from 0 to 0o777, received -1/,
      ],
      [
        path,
        { w },
        { appendInfo: { x: null as unknown as string } },
        TypeError,
        /appendInfo "x" must be a number, bigint, boolean, string or Tensor, received null/,
      ],
      [
        path,
        { w },
        { appendInfo: { x: 2n ** 63n } },
        RangeError,
        /does not fit in Int64, received 9223372036854775808/,
      ],
      [
        path,
        { w },
        { appendInfo: { x: 1e20 } },
        RangeError,
        /integer outside Int64, received 100000000000000000000/,
      ],
      [
        path,
        { w },
        { appendInfo: { x: "\ud800" } },
        RangeError,
        /lone surrogate/,
      ],
      [path, { w }, { appendInfo: { x: "a\0" } }, RangeError, /ends with NUL/],
      [
        path,
        { ["\udc00x"]: w },
        undefined,
        RangeError,
        /lone surrogate, which UTF-8 cannot store/,
      ],
      [
        path,
        { w },
        { appendInfo: new Map([["", 1]]) },
        RangeError,
        /appendInfo key must be non-empty/,
      ],
      [
        path,
        { w },
        { appendInfo: [1] as unknown as Record<string, number> },
        TypeError,
        /appendInfo must be a Map or a record, received an array/,
      ],
      [
        path,
        { w },
        "fast" as SaveCheckpointOptions,
        TypeError,
        /options must be an object, received string "fast"/,
      ],
    ];
    for (const [p, network, options, type, message] of cases) {
      await rejects(
        saveCheckpoint(p as string, network as Network, options),
        (e) => {
          ok(e instanceof type, `${message}: ${e}`);
          ok(message.test((e as Error).message), (e as Error).message);
          return true;
        },
      );
    }
    deepEqual(await listDir(dir), []);
  });
});

Deno.test("a CheckpointReader reads entries in any order, rejects unknown names and reads after close", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/r.ckpt`;
    await saveCheckpoint(path, { w }, { appendInfo: { s: "text" } });
    const r = await openCheckpoint(path);
    equal(await r.read("s"), "text");
    deepEqual(await r.read("w"), w);
    await rejects(r.read("nope"), /it has no entry named "nope"/);
    await r.close();
    await r.close(); // twice is fine
    await rejects(r.read("w"), /the reader is closed/);
    ok(Object.isFrozen(r.entries));
  });
});

Deno.test("loading a missing file is NotFound and a folder is a CorruptCheckpointError", async () => {
  await withTempDir(async (dir) => {
    await rejects(loadCheckpoint(`${dir}/none.ckpt`), Deno.errors.NotFound);
    await rejects(loadCheckpoint(dir), /is not a regular file/);
    await rejects(loadCheckpoint(5 as unknown as string), TypeError);
    await rejects(
      loadCheckpoint(`${dir}/none.ckpt`, { format: "zip" as "ckpt" }),
      RangeError,
    );
  });
});

Deno.test("loads are right across read-ahead windows and with concurrent reads", async () => {
  await withTempDir(async (dir) => {
    const network = new Map<string, Tensor>();
    for (let i = 0; i < 100; i++) { // 100 × ~48 KiB: more than one 4 MiB window
      network.set(`small.${i}`, {
        dtype: "Int32",
        shape: [12_000 + i],
        data: Int32Array.from({ length: 12_000 + i }, (_, k) => k * 7 + i),
      });
      if (i % 50 === 25) { // 1.6 MB: read straight into the tensor
        network.set(`big.${i}`, {
          dtype: "Float64",
          shape: [200_000],
          data: Float64Array.from({ length: 200_000 }, (_, k) => k / 3 + i),
        });
      }
    }
    for (const format of ["ckpt", "safetensors"] as const) {
      const path = `${dir}/m.${format}`;
      await saveCheckpoint(path, network, { format, splitSize: 1_000_000 });
      deepEqual(await loadCheckpoint(path), network);
      await using r = await openCheckpoint(path);
      const names = [...network.keys()].reverse();
      const values = await Promise.all(names.map((n) => r.read(n)));
      names.forEach((n, i) => deepEqual(values[i], network.get(n), n));
    }
  });
});

Deno.test("the file's check is verified by the read that completes the file, in any order, in both formats", async () => {
  await withTempDir(async (dir) => {
    const big: Tensor = {
      dtype: "Int32",
      shape: [1000],
      data: Int32Array.from({ length: 1000 }, (_, i) => i),
    };
    for (const format of ["ckpt", "safetensors"] as const) {
      const path = `${dir}/c.${format}`;
      await saveCheckpoint(path, { w, big, tail: w }, {
        format,
        fileMode: 0o600,
        appendInfo: { note: "n" },
      });
      const good = await openCheckpoint(path);
      equal(good.check, "crc32");
      for (const name of ["tail", "note", "big", "w"]) await good.read(name);
      await good.close();
      // One flipped bit inside "big": the values still parse.
      const bytes = await Deno.readFile(path);
      const at = bytes.indexOf(200 & 0xff, bytes.length / 2);
      bytes[at]! ^= 0x10;
      await Deno.writeFile(path, bytes);
      const r = await openCheckpoint(path);
      await r.readInto("big", new Uint8Array(4000)); // not yet complete
      await r.read("w");
      await r.read("note");
      await rejects(r.read("tail"), CorruptCheckpointError);
      await r.close();
      await rejects(loadCheckpoint(path), /its bytes have CRC-32/);
    }
  });
});
