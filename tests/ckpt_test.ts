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
import { decodeWithProtobufjs } from "./_protobuf_reference.ts";
import { withTempDir } from "./_helpers.ts";

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/** A tiny protobuf writer for hand-made (and broken) files. */
function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
function field(no: number, body: number[]): number[] {
  return [(no << 3) | 2, ...varint(body.length), ...body];
}
function entry(tag: string, tensor: number[]): number[] {
  return field(1, [...field(1, ascii(tag)), ...field(2, tensor)]);
}
function tensorProto(
  dims: number[],
  type: string,
  content: number[],
): number[] {
  return [
    ...dims.flatMap((d) => [0x08, ...varint(d)]),
    ...field(2, ascii(type)),
    ...field(3, content),
  ];
}

async function writeBytes(
  dir: string,
  name: string,
  bytes: number[] | Uint8Array,
): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, new Uint8Array(bytes));
  return path;
}

function sample(dtype: (typeof DTYPES)[number], shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const make: Record<string, () => Tensor["data"]> = {
    Bool: () => Uint8Array.from({ length: n }, (_, i) => i % 2),
    Int8: () => Int8Array.from({ length: n }, (_, i) => i - 3),
    UInt8: () => Uint8Array.from({ length: n }, (_, i) => 250 + i),
    Int16: () => Int16Array.from({ length: n }, (_, i) => -300 * i),
    UInt16: () => Uint16Array.from({ length: n }, (_, i) => 60000 + i),
    Int32: () => Int32Array.from({ length: n }, (_, i) => -70000 * i),
    UInt32: () => Uint32Array.from({ length: n }, (_, i) => 4e9 + i),
    Int64: () =>
      BigInt64Array.from({ length: n }, (_, i) => -(2n ** 62n) + BigInt(i)),
    UInt64: () =>
      BigUint64Array.from({ length: n }, (_, i) => 2n ** 63n + BigInt(i)),
    Float16: () => Float16Array.from({ length: n }, (_, i) => i / 4 - 1),
    BFloat16: () => Uint16Array.from({ length: n }, (_, i) => 0x3f80 + i),
    Float32: () => Float32Array.from({ length: n }, (_, i) => i * 0.1 - 2),
    Float64: () => Float64Array.from({ length: n }, (_, i) => Math.PI * i),
  };
  return { dtype, shape, data: make[dtype]!() } as Tensor;
}

Deno.test("saveCheckpoint writes .ckpt bytes exactly as MindSpore lays them out, between the check's mark and trailer", async () => {
  await withTempDir(async (dir) => {
    const network = {
      w: { dtype: "Float32", shape: [2], data: new Float32Array([1, -2]) },
    } as const;
    const appendInfo = new Map<string, string | number>([["n", 5], [
      "s",
      "ab",
    ]]);
    const saved = await saveCheckpoint(`${dir}/a.ckpt`, network, {
      appendInfo,
      check: false,
    });
    const checked = await saveCheckpoint(`${dir}/b.ckpt`, network, {
      appendInfo,
    });
    const want = [
      // w: Float32 [2]
      0x0a,
      26,
      0x0a,
      1,
      ...ascii("w"),
      0x12,
      21,
      0x08,
      2,
      0x12,
      7,
      ...ascii("Float32"),
      0x1a,
      8,
      0,
      0,
      0x80,
      0x3f,
      0,
      0,
      0,
      0xc0,
      // n: Int64 scalar, no dims
      0x0a,
      22,
      0x0a,
      1,
      ...ascii("n"),
      0x12,
      17,
      0x12,
      5,
      ...ascii("Int64"),
      0x1a,
      8,
      5,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      // s: str, dims [0], UTF-32-LE
      0x0a,
      22,
      0x0a,
      1,
      ...ascii("s"),
      0x12,
      17,
      0x08,
      0,
      0x12,
      3,
      ...ascii("str"),
      0x1a,
      8,
      0x61,
      0,
      0,
      0,
      0x62,
      0,
      0,
      0,
    ];
    deepEqual(Array.from(await Deno.readFile(saved.path)), want);
    equal(saved.bytes, want.length);
    // With the check: field 15 (varint 1) first, MindSpore's crc_num
    // trailer (10-byte big-endian zlib CRC-32 of all before it) last.
    const body = [0x78, 1, ...want];
    const crc = crc32(new Uint8Array(body)) >>> 0;
    deepEqual(Array.from(await Deno.readFile(checked.path)), [
      ...body,
      ...ascii("crc_num"),
      ...[0, 0, 0, 0, 0, 0],
      crc >>> 24,
      (crc >>> 16) & 0xff,
      (crc >>> 8) & 0xff,
      crc & 0xff,
    ]);
  });
});

Deno.test("every dtype round-trips through .ckpt, including scalars and empty tensors", async () => {
  await withTempDir(async (dir) => {
    const network = new Map<string, Tensor>();
    for (const d of DTYPES) {
      network.set(`${d}.matrix`, sample(d, [2, 3]));
      network.set(`${d}.scalar`, sample(d, []));
      network.set(`${d}.empty`, sample(d, [0]));
      network.set(`${d}.empty2d`, sample(d, [3, 0]));
    }
    const saved = await saveCheckpoint(`${dir}/all.ckpt`, network);
    const loaded = await loadCheckpoint(saved.path);
    deepEqual(loaded, network);
    // protobufjs reads the same file: one entry per tensor, scalars without dims.
    const ref = decodeWithProtobufjs(await Deno.readFile(saved.path));
    deepEqual(ref.map((v) => v.tag), [...network.keys()]);
    deepEqual(ref.find((v) => v.tag === "Int32.scalar")!.dims, []);
    deepEqual(ref.find((v) => v.tag === "Int32.matrix")!.dims, [2, 3]);
  });
});

Deno.test("append info is stored after the parameters with MindSpore's conversions", async () => {
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(`${dir}/a.ckpt`, {
      w: { dtype: "Float32", shape: [1], data: new Float32Array([1]) },
    }, {
      appendInfo: {
        epoch_num: 3,
        step_num: 12345678901234n,
        loss_scale: 1024.5,
        nan: NaN,
        flag: true,
        note: "héllo 🌍",
        global_step: { dtype: "Int32", shape: [1], data: new Int32Array([7]) },
      },
    });
    const m = await loadCheckpoint(saved.path);
    deepEqual([...m.keys()], [
      "w",
      "epoch_num",
      "step_num",
      "loss_scale",
      "nan",
      "flag",
      "note",
      "global_step",
    ]);
    deepEqual(m.get("epoch_num"), {
      dtype: "Int64",
      shape: [],
      data: new BigInt64Array([3n]),
    });
    deepEqual(m.get("step_num"), {
      dtype: "Int64",
      shape: [],
      data: new BigInt64Array([12345678901234n]),
    });
    deepEqual(m.get("loss_scale"), {
      dtype: "Float32",
      shape: [],
      data: new Float32Array([1024.5]),
    });
    ok(Number.isNaN((m.get("nan") as Tensor<"Float32">).data[0]));
    deepEqual(m.get("flag"), {
      dtype: "Bool",
      shape: [],
      data: new Uint8Array([1]),
    });
    equal(m.get("note"), "héllo 🌍");
    const ref = decodeWithProtobufjs(await Deno.readFile(saved.path));
    const note = ref.find((v) => v.tag === "note")!;
    deepEqual([note.type, note.dims, note.content.byteLength], [
      "str",
      [0],
      28,
    ]); // 7 code points
  });
});

Deno.test("an append key equal to a parameter name replaces its value in place", async () => {
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(`${dir}/a.ckpt`, [
      { name: "a", dtype: "Float32", shape: [1], data: new Float32Array([1]) },
      {
        name: "global_step",
        dtype: "Int32",
        shape: [1],
        data: new Int32Array([1]),
      },
      { name: "b", dtype: "Float32", shape: [1], data: new Float32Array([2]) },
    ], { appendInfo: { epoch_num: 1, global_step: 99 } });
    const m = await loadCheckpoint(saved.path);
    deepEqual([...m.keys()], ["a", "global_step", "b", "epoch_num"]);
    deepEqual(m.get("global_step"), {
      dtype: "Int64",
      shape: [],
      data: new BigInt64Array([99n]),
    });
  });
});

Deno.test("tensors over splitSize are cut into consecutive same-name entries and joined on load", async () => {
  await withTempDir(async (dir) => {
    const big = sample("Float32", [10]); // 40 bytes
    const saved = await saveCheckpoint(`${dir}/s.ckpt`, {
      before: sample("Int8", [2]),
      big,
      after: sample("Int8", [2]),
    }, { splitSize: 12 });
    const ref = decodeWithProtobufjs(await Deno.readFile(saved.path));
    deepEqual(
      ref.map((v) => [v.tag, v.dims, v.content.byteLength]),
      [
        ["before", [2], 2],
        ["big", [10], 12],
        ["big", [10], 12],
        ["big", [10], 12],
        ["big", [10], 4],
        ["after", [2], 2],
      ],
    );
    const m = await loadCheckpoint(saved.path);
    deepEqual(m.get("big"), big);
    await using r = await openCheckpoint(saved.path);
    deepEqual(r.entries.map((e) => [e.name, e.byteLength]), [
      ["before", 2],
      ["big", 40],
      ["after", 2],
    ]);
    deepEqual(await r.read("big"), big);
  });
});

Deno.test("the .ckpt reader accepts packed dims, unknown fields and a crc_num trailer", async () => {
  await withTempDir(async (dir) => {
    const content = [1, 2, 3, 4, 5, 6];
    const packed = field(1, [
      ...field(1, ascii("p")),
      ...field(2, [
        ...field(1, [2, 3]), // packed dims [2, 3]
        0x20,
        0x07, // unknown field 4, varint
        ...field(2, ascii("UInt8")),
        ...field(3, content),
      ]),
      0x2d,
      1,
      2,
      3,
      4, // unknown field 5, fixed32
    ]);
    const crc = crc32(new Uint8Array(packed)) >>> 0;
    const trailer = [
      ...ascii("crc_num"),
      ...[0, 0, 0, 0, 0, 0],
      crc >>> 24,
      (crc >>> 16) & 0xff,
      (crc >>> 8) & 0xff,
      crc & 0xff,
    ];
    const path = await writeBytes(dir, "p.ckpt", [...packed, ...trailer]);
    const m = await loadCheckpoint(path);
    deepEqual(m.get("p"), {
      dtype: "UInt8",
      shape: [2, 3],
      data: new Uint8Array(content),
    });
    // The trailer is verified: a wrong CRC fails the load.
    const wrong = await writeBytes(dir, "w.ckpt", [
      ...packed,
      ...trailer.slice(0, -1),
      trailer.at(-1)! ^ 1,
    ]);
    await rejects(loadCheckpoint(wrong), CorruptCheckpointError);
  });
});

Deno.test("the .ckpt reader treats dims [0] as a scalar, or an empty tensor when there is no content", async () => {
  await withTempDir(async (dir) => {
    const path = await writeBytes(dir, "z.ckpt", [
      ...entry("scalar", tensorProto([0], "Int32", [7, 0, 0, 0])),
      ...entry("empty", tensorProto([0], "Int32", [])),
    ]);
    const m = await loadCheckpoint(path);
    deepEqual(m.get("scalar"), {
      dtype: "Int32",
      shape: [],
      data: new Int32Array([7]),
    });
    deepEqual(m.get("empty"), {
      dtype: "Int32",
      shape: [0],
      data: new Int32Array(0),
    });
  });
});

Deno.test("an empty network saves as mark and trailer, which loads as an empty map; a 0-byte file is refused", async () => {
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(`${dir}/e.ckpt`, []);
    equal(saved.bytes, 2 + 17);
    equal((await loadCheckpoint(saved.path)).size, 0);
    const bare = await saveCheckpoint(`${dir}/f.ckpt`, [], { check: false });
    equal(bare.bytes, 0);
    await rejects(loadCheckpoint(bare.path), CorruptCheckpointError);
  });
});

Deno.test("a .ckpt cut anywhere inside an entry is a CorruptCheckpointError naming the file", async () => {
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(`${dir}/t.ckpt`, {
      a: sample("Float32", [3]),
      b: sample("Int64", [2]),
    }, { appendInfo: { note: "x" } });
    const bytes = await Deno.readFile(saved.path);
    const ref = decodeWithProtobufjs(bytes);
    equal(ref.length, 3);
    // Entry boundaries: a cut exactly there leaves a shorter valid file.
    const boundaries = new Set<number>([0]);
    let at = 0;
    while (at < bytes.length) {
      let len = 0, shift = 1, i = at + 1;
      for (;;) {
        const b = bytes[i++]!;
        len += (b & 0x7f) * shift;
        shift *= 128;
        if (b < 0x80) break;
      }
      at = i + len;
      boundaries.add(at);
    }
    for (let cut = 1; cut < bytes.length; cut++) {
      if (boundaries.has(cut)) continue;
      const path = await writeBytes(
        dir,
        `cut${cut}.ckpt`,
        bytes.subarray(0, cut),
      );
      await rejects(loadCheckpoint(path), (e) => {
        ok(e instanceof CorruptCheckpointError, `cut at ${cut}: ${e}`);
        equal(e.path, path);
        ok(e.message.includes(path));
        return true;
      });
    }
  });
});

Deno.test("malformed .ckpt files give CorruptCheckpointError saying what is wrong", async () => {
  await withTempDir(async (dir) => {
    const cases: [string, number[], RegExp][] = [
      [
        "lying entry length",
        [0x0a, ...varint(2 ** 50), 0x0a, 1],
        /claims 1125899906842624 bytes/,
      ],
      ["varint over 2^53", [0x0a, ...varint(2n ** 60n)], /too large/],
      ["endless varint", [
        0x0a,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0x01,
      ], /longer than 10 bytes/],
      ["wrong top-level field", [0x08, 0x01], /expected entry 0/],
      [
        "wrong wire type for tag",
        field(1, [0x08, 0x01]),
        /field 1 of entry 0 has wire type 0/,
      ],
      [
        "unknown dtype",
        entry("x", tensorProto([1], "Complex64", [0, 0, 0, 0, 0, 0, 0, 0])),
        /unknown dtype "Complex64"/,
      ],
      [
        "shape/content mismatch",
        entry("x", tensorProto([3], "Float32", [0, 0, 0, 0])),
        /needs 12 bytes, its content has 4/,
      ],
      [
        "tag not UTF-8",
        field(1, [
          ...field(1, [0xff, 0xfe]),
          ...field(2, tensorProto([], "Int8", [1])),
        ]),
        /not valid UTF-8/,
      ],
      ["no tensor", field(1, field(1, ascii("x"))), /has no tensor/],
      [
        "no tag",
        field(1, field(2, tensorProto([], "Int8", [1]))),
        /has no tag/,
      ],
      ["no dtype", entry("x", field(3, [1])), /no tensor_type/],
      [
        "map tensor",
        field(1, [...field(1, ascii("m")), ...field(3, [])]),
        /map tensor/,
      ],
      [
        "tensor length past its entry",
        field(1, [...field(1, ascii("x")), 0x12, 50, 1, 2]),
        /claims 50 bytes/,
      ],
      [
        "string not multiple of 4",
        entry("s", tensorProto([0], "str", [0x61, 0, 0])),
        /not a multiple of 4/,
      ],
      ["split parts disagree", [
        ...entry("x", tensorProto([2], "Int8", [1])),
        ...entry("x", tensorProto([2], "UInt8", [2])),
      ], /disagree on the dtype/],
      ["name repeated later", [
        ...entry("x", tensorProto([], "Int8", [1])),
        ...entry("y", tensorProto([], "Int8", [1])),
        ...entry("x", tensorProto([], "Int8", [1])),
      ], /appears again/],
      [
        "invalid wire type",
        field(1, [...field(1, ascii("x")), 0x3f]),
        /invalid wire type 7/,
      ],
      [
        "packed dims over the 1 MiB cap",
        entry("x", [...field(1, new Array(1_100_000).fill(1))]),
        /packed dims of entry 0 .* over the cap of 1048576/,
      ],
      [
        "too many dims",
        entry("x", tensorProto(new Array(65).fill(1), "Int8", [1])),
        /more than 64 dims/,
      ],
    ];
    for (const [label, bytes, message] of cases) {
      const path = await writeBytes(dir, "bad.ckpt", bytes);
      await rejects(loadCheckpoint(path), (e) => {
        ok(e instanceof CorruptCheckpointError, `${label}: ${e}`);
        ok(message.test(e.reason), `${label}: ${e.reason}`);
        ok(e.message.startsWith(`Cannot read checkpoint "${path}"`), label);
        return true;
      }, label);
    }
  });
});

Deno.test("a string entry holding an invalid code point fails on read, not with a wrong value", async () => {
  await withTempDir(async (dir) => {
    const path = await writeBytes(
      dir,
      "s.ckpt",
      entry("s", tensorProto([0], "str", [0, 0xd8, 0, 0])),
    );
    await using r = await openCheckpoint(path);
    deepEqual(r.entries.map((e) => [e.name, e.dtype]), [["s", "str"]]);
    await rejects(r.read("s"), /not valid UTF-32/);
  });
});

Deno.test("a .ckpt shape [2^53 - 1, 0] is refused, and maxEntries caps the entries listed", async () => {
  await withTempDir(async (dir) => {
    const path = await writeBytes(dir, "a.ckpt", [
      ...entry("t", tensorProto([2 ** 53 - 1, 0], "Int32", [])),
    ]);
    await rejects(loadCheckpoint(path), /describe over 2\^48 bytes/);
    const three = await writeBytes(dir, "three.ckpt", [
      ...entry("a", tensorProto([1], "UInt8", [1])),
      ...entry("b", tensorProto([1], "UInt8", [2])),
      ...entry("c", tensorProto([1], "UInt8", [3])),
    ]);
    await rejects(
      loadCheckpoint(three, { maxEntries: 2 }),
      /more than 2 entries/,
    );
    equal((await loadCheckpoint(three, { maxEntries: 3 })).size, 3);
  });
});
