// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  CorruptCheckpointError,
  DTYPES,
  loadCheckpoint,
  openCheckpoint,
  saveCheckpoint,
  type Tensor,
} from "../mod.ts";
import { crc32 } from "node:zlib";
import { withTempDir } from "./_helpers.ts";

const enc = new TextEncoder();

/** Splits a safetensors file into its header length, JSON header and data. */
function split(
  bytes: Uint8Array,
): {
  n: number;
  header: Record<string, unknown>;
  raw: string;
  data: Uint8Array;
} {
  const n = Number(
    new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true),
  );
  const raw = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { n, header: JSON.parse(raw), raw, data: bytes.subarray(8 + n) };
}

/** Builds a safetensors file from a header object and data bytes. */
function build(
  header: unknown,
  data: number[] | Uint8Array = [],
  padTo8 = true,
): Uint8Array {
  let json = JSON.stringify(header);
  if (padTo8) { while (json.length % 8 !== 0) json += " "; }
  const h = enc.encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

async function writeBytes(
  dir: string,
  name: string,
  bytes: Uint8Array,
): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("saveCheckpoint writes safetensors to the spec: 8-byte length, space-padded JSON, tiling offsets", async () => {
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(`${dir}/m.safetensors`, {
      w: {
        dtype: "Float32",
        shape: [2, 2],
        data: new Float32Array([1, 2, 3, 4]),
      },
      b: { dtype: "Int8", shape: [3], data: new Int8Array([-1, 0, 1]) },
      h: { dtype: "Float16", shape: [1], data: new Float16Array([0.5]) },
    }, {
      format: "safetensors",
      appendInfo: { epoch_num: 2, note: "hi", ok: false },
    });
    const bytes = await Deno.readFile(saved.path);
    const { n, header, raw, data } = split(bytes);
    equal(n % 8, 0);
    ok(raw.startsWith("{"));
    equal(raw.trimEnd().length + (n - raw.trimEnd().length), n);
    ok(/^ *$/.test(raw.slice(raw.lastIndexOf("}") + 1)));
    const digits = (header.__metadata__ as Record<string, string>)[
      "ckpt.crc32"
    ]!;
    // The check: CRC-32 of the whole file with its own 8 digits as zeros.
    const zeroed = bytes.slice();
    const at = raw.indexOf(`"ckpt.crc32":"`) + `"ckpt.crc32":"`.length;
    zeroed.fill(0x30, 8 + at, 8 + at + 8);
    equal(digits, (crc32(zeroed) >>> 0).toString(16).padStart(8, "0"));
    deepEqual(header, {
      __metadata__: { note: "hi", "ckpt.crc32": digits },
      w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: "I8", shape: [3], data_offsets: [16, 19] },
      h: { dtype: "F16", shape: [1], data_offsets: [19, 21] },
      epoch_num: { dtype: "I64", shape: [], data_offsets: [21, 29] },
      ok: { dtype: "BOOL", shape: [], data_offsets: [29, 30] },
    });
    equal(data.length, 30);
    deepEqual(Array.from(data.subarray(16, 19)), [255, 0, 1]);
    const m = await loadCheckpoint(saved.path);
    deepEqual([...m.keys()], ["w", "b", "h", "epoch_num", "ok", "note"]);
    equal(m.get("note"), "hi");
    deepEqual(m.get("epoch_num"), {
      dtype: "Int64",
      shape: [],
      data: new BigInt64Array([2n]),
    });
    deepEqual(m.get("ok"), {
      dtype: "Bool",
      shape: [],
      data: new Uint8Array([0]),
    });
  });
});

Deno.test("every dtype round-trips through safetensors", async () => {
  await withTempDir(async (dir) => {
    const network = new Map<string, Tensor>();
    for (const d of DTYPES) {
      const bytes = Uint8Array.from({
        length: 6 *
          ({
            Bool: 1,
            Int8: 1,
            UInt8: 1,
            Int16: 2,
            UInt16: 2,
            Float16: 2,
            BFloat16: 2,
            Int32: 4,
            UInt32: 4,
            Float32: 4,
            Int64: 8,
            UInt64: 8,
            Float64: 8,
          } as Record<string, number>)[d]!,
      }, (_, i) => d === "Bool" ? i % 2 : (i * 37) & 255);
      const { typedArrayFromBytes } = await import("../mod.ts");
      network.set(
        `${d}.t`,
        {
          dtype: d,
          shape: [2, 3],
          data: typedArrayFromBytes(d, bytes),
        } as Tensor,
      );
      network.set(
        `${d}.empty`,
        {
          dtype: d,
          shape: [0, 4],
          data: typedArrayFromBytes(d, new Uint8Array(0)),
        } as Tensor,
      );
    }
    const saved = await saveCheckpoint(`${dir}/all.safetensors`, network, {
      format: "safetensors",
    });
    deepEqual(await loadCheckpoint(saved.path), network);
  });
});

Deno.test("safetensors F8 tensors read back as UInt8 bytes, the file dtype kept in fileDtype", async () => {
  await withTempDir(async (dir) => {
    const path = await writeBytes(
      dir,
      "f8.safetensors",
      build({
        a: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] },
        b: { dtype: "F8_E5M2", shape: [1, 1], data_offsets: [2, 3] },
      }, [0x38, 0x40, 0x3c]),
    );
    await using r = await openCheckpoint(path);
    deepEqual(r.entries.map((e) => [e.name, e.dtype, e.fileDtype, e.shape]), [
      ["a", "UInt8", "F8_E4M3", [2]],
      ["b", "UInt8", "F8_E5M2", [1, 1]],
    ]);
    deepEqual(await r.read("a"), {
      dtype: "UInt8",
      shape: [2],
      data: new Uint8Array([0x38, 0x40]),
    });
  });
});

Deno.test("the safetensors reader lists tensors in data order, accepts unpadded headers and skips metadata notes about tensors", async () => {
  await withTempDir(async (dir) => {
    const path = await writeBytes(
      dir,
      "o.safetensors",
      build(
        {
          __metadata__: { format: "ms", later: "x", q: "Int4" },
          second: { dtype: "U8", shape: [1], data_offsets: [1, 2] },
          q: { dtype: "U8", shape: [0], data_offsets: [2, 2] },
          first: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
        },
        [7, 8],
        false,
      ),
    );
    const m = await loadCheckpoint(path);
    deepEqual([...m.keys()], ["first", "second", "q", "format", "later"]);
    deepEqual(m.get("second"), {
      dtype: "UInt8",
      shape: [1],
      data: new Uint8Array([8]),
    });
  });
});

Deno.test("the format is found from the content when the extension says nothing", async () => {
  await withTempDir(async (dir) => {
    const t = {
      w: { dtype: "Int16", shape: [1], data: new Int16Array([5]) },
    } as const;
    await saveCheckpoint(`${dir}/a.bin`, t, { format: "safetensors" });
    await saveCheckpoint(`${dir}/b.bin`, t);
    await using a = await openCheckpoint(`${dir}/a.bin`);
    await using b = await openCheckpoint(`${dir}/b.bin`);
    deepEqual([a.format, b.format], ["safetensors", "ckpt"]);
    await using c = await openCheckpoint(`${dir}/a.bin`, {
      format: "safetensors",
    });
    equal(c.entries.length, 1);
  });
});

Deno.test("malformed safetensors files give CorruptCheckpointError saying what is wrong", async () => {
  await withTempDir(async (dir) => {
    const lying = new Uint8Array(16);
    new DataView(lying.buffer).setBigUint64(0, 1000n, true);
    const overCap = new Uint8Array(16);
    new DataView(overCap.buffer).setBigUint64(0, 100_000_001n, true);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    const f32 = (offs: [number, number], shape = [1]) => ({
      dtype: "F32",
      shape,
      data_offsets: offs,
    });
    const cases: [string, Uint8Array, RegExp][] = [
      ["shorter than 8 bytes", new Uint8Array(5), /fewer than the 8-byte/],
      [
        "header longer than the file",
        lying,
        /longer than the 8 bytes after it/,
      ],
      ["header over the cap", overCap, /over the cap of 100000000/],
      ["header length 2^64-1", huge, /over the cap/],
      [
        "not JSON",
        build("nope" as unknown),
        /does not start with "\{"|not valid JSON/,
      ],
      [
        "broken JSON",
        (() => {
          const b = build({ a: 1 });
          b[9] = 0x7b;
          return b;
        })(),
        /not valid JSON/,
      ],
      [
        "not UTF-8",
        (() => {
          const b = build({ a: "xx" });
          b[14] = 0xff;
          return b;
        })(),
        /not valid UTF-8/,
      ],
      [
        "array header",
        build([1, 2] as unknown),
        /does not start|not a JSON object/,
      ],
      [
        "unknown dtype",
        build({ a: { dtype: "Q7", shape: [1], data_offsets: [0, 1] } }, [0]),
        /unknown dtype "Q7"/,
      ],
      [
        "unsupported dtype",
        build(
          { a: { dtype: "C64", shape: [1], data_offsets: [0, 8] } },
          new Uint8Array(8),
        ),
        /unsupported dtype "C64"/,
      ],
      [
        "shape mismatch",
        build({ a: f32([0, 4], [2]) }, new Uint8Array(4)),
        /needs 8 bytes, data_offsets give 4/,
      ],
      [
        "bad shape",
        build({ a: f32([0, 4], [-1]) }, new Uint8Array(4)),
        /shape that is not a list/,
      ],
      [
        "bad offsets",
        build(
          { a: { dtype: "F32", shape: [1], data_offsets: [0] } },
          new Uint8Array(4),
        ),
        /data_offsets that are not/,
      ],
      [
        "reversed offsets",
        build(
          { a: { dtype: "U8", shape: [0], data_offsets: [2, 1] } },
          new Uint8Array(2),
        ),
        /reversed/,
      ],
      [
        "overlap",
        build({ a: f32([0, 4]), b: f32([2, 6]) }, new Uint8Array(6)),
        /overlaps the tensor before it/,
      ],
      [
        "gap",
        build({ a: f32([0, 4]), b: f32([6, 10]) }, new Uint8Array(10)),
        /bytes 4..6 before tensor "b" belong to no tensor/,
      ],
      [
        "trailing bytes",
        build({ a: f32([0, 4]) }, new Uint8Array(9)),
        /cover 4 data bytes but the file has 9/,
      ],
      [
        "past the end",
        build({ a: f32([0, 4]), b: f32([4, 8]) }, new Uint8Array(6)),
        /past the 6 bytes of data/,
      ],
      [
        "metadata not strings",
        build({ __metadata__: { a: 1 } }),
        /__metadata__ value of "a" is not a string/,
      ],
      [
        "metadata not an object",
        build({ __metadata__: "x" }),
        /__metadata__ is not a JSON object/,
      ],
      [
        "tensor info not an object",
        build({ a: 5 }),
        /not described by an object/,
      ],
    ];
    for (const [label, bytes, message] of cases) {
      const path = await writeBytes(dir, "bad.safetensors", bytes);
      await rejects(loadCheckpoint(path), (e) => {
        ok(e instanceof CorruptCheckpointError, `${label}: ${e}`);
        ok(message.test(e.reason), `${label}: ${e.reason}`);
        equal(e.path, path);
        return true;
      }, label);
    }
  });
});

Deno.test("a safetensors file cut at any byte is a CorruptCheckpointError", async () => {
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(`${dir}/c.safetensors`, {
      a: { dtype: "Float32", shape: [3], data: new Float32Array([1, 2, 3]) },
    }, { format: "safetensors", appendInfo: { s: "x" } });
    const bytes = await Deno.readFile(saved.path);
    for (let cut = 0; cut < bytes.length; cut++) {
      const path = await writeBytes(
        dir,
        "cut.safetensors",
        bytes.subarray(0, cut),
      );
      await rejects(
        loadCheckpoint(path),
        CorruptCheckpointError,
        `cut at ${cut}`,
      );
    }
  });
});

Deno.test("saving a tensor named __metadata__ as safetensors is a RangeError", async () => {
  await withTempDir(async (dir) => {
    await rejects(
      saveCheckpoint(`${dir}/x.safetensors`, {
        __metadata__: { dtype: "UInt8", shape: [1], data: new Uint8Array(1) },
      }, { format: "safetensors" }),
      RangeError,
    );
  });
});

/** A safetensors file whose header is the given JSON text, padded. */
function buildText(json: string, data: number[] = []): Uint8Array {
  while (json.length % 8 !== 0) json += " ";
  const h = enc.encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("safetensors headers that nest deep, repeat a key or list too many entries are refused before or right after JSON.parse", async () => {
  await withTempDir(async (dir) => {
    const t = `"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}`;
    const cases: [string, string, RegExp][] = [
      ["deep", `{"t":${"[".repeat(1_000_000)}`, /nests deeper than 3/],
      ["deep object", `{"t":{"a":{"b":{}}}}`, /nests deeper than 3/],
      ["top key twice", `{${t},${t}}`, /repeats a key/],
      [
        "metadata key twice",
        `{"__metadata__":{"a":"1","a":"2"},${t}}`,
        /repeats a key/,
      ],
      [
        "dtype twice",
        `{"t":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}`,
        /repeats a key/,
      ],
    ];
    for (const [name, json, reason] of cases) {
      const path = await writeBytes(
        dir,
        `${name}.safetensors`,
        buildText(json, [7]),
      );
      await rejects(
        loadCheckpoint(path),
        (e: unknown) =>
          e instanceof CorruptCheckpointError && reason.test(e.message),
        name,
      );
    }
    // A key inside a string value is no key; escaped quotes stay in strings.
    const fine = await writeBytes(
      dir,
      "fine.safetensors",
      buildText(`{"__metadata__":{"n":"a\\":{[[[b"},${t}}`, [7]),
    );
    equal((await loadCheckpoint(fine)).get("n"), 'a":{[[[b');
    // maxEntries caps the listing, and raises it.
    const three = await writeBytes(
      dir,
      "three.safetensors",
      build({
        a: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
        b: { dtype: "U8", shape: [1], data_offsets: [1, 2] },
        c: { dtype: "U8", shape: [1], data_offsets: [2, 3] },
      }, [1, 2, 3]),
    );
    await rejects(
      loadCheckpoint(three, { maxEntries: 2 }),
      /more than 2 entries/,
    );
    equal((await loadCheckpoint(three, { maxEntries: 3 })).size, 3);
  });
});

Deno.test("absurd shapes are refused in both formats: [2^53 - 1, 0], more than 64 dims", async () => {
  await withTempDir(async (dir) => {
    const huge = Number.MAX_SAFE_INTEGER;
    const path = await writeBytes(
      dir,
      "a.safetensors",
      build({
        t: { dtype: "U8", shape: [huge, 0], data_offsets: [0, 0] },
      }),
    );
    await rejects(loadCheckpoint(path), /describe over 2\^48 bytes/);
    const dims = await writeBytes(
      dir,
      "d.safetensors",
      build({
        t: { dtype: "U8", shape: new Array(65).fill(1), data_offsets: [0, 1] },
      }, [1]),
    );
    await rejects(loadCheckpoint(dims), /65 dims, more than 64/);
  });
});
