// Files we write, read by independent implementations from npm:
// - `.ckpt`: protobufjs with the schema of the semantics reference (§13.1),
//   first checked on MindSpore's own files so the decoder itself is trusted;
// - safetensors: the header parser of @huggingface/hub, fed our file
//   through the `fetch` it accepts, as if the file were on the Hub.
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { parseSafetensorsMetadata } from "npm:@huggingface/hub@2.17.5";
import { deepEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  type DType,
  DTYPE_SIZE,
  loadCheckpoint,
  networkParameters,
  type Parameter,
  saveCheckpoint,
  shapeSize,
  type Tensor,
  tensorBytes,
  typedArrayFromBytes,
} from "../mod.ts";
import { tfjsNetwork, tfjsOptimizerState } from "../src/adapters/tfjs.ts";
import { decodeWithProtobufjs } from "./_protobuf_reference.ts";
import { FIXTURES, sha256, withTempDir } from "./_helpers.ts";

await tf.setBackend("cpu");

/**
 * safetensors' dtype names for ours, from the spec (peers.md §5): kept here
 * rather than imported, so the test does not trust the writer's own table.
 */
const ST_DTYPE: Record<DType, string> = {
  Bool: "BOOL",
  Int8: "I8",
  UInt8: "U8",
  Int16: "I16",
  UInt16: "U16",
  Int32: "I32",
  UInt32: "U32",
  Int64: "I64",
  UInt64: "U64",
  Float16: "F16",
  BFloat16: "BF16",
  Float32: "F32",
  Float64: "F64",
};

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(tensorBytes(t));
}

/** A tfjs model trained for a few batches, with Adam state. */
async function trainedTfjs(): Promise<Parameter[]> {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        name: "hidden",
        units: 8,
        inputShape: [4],
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        name: "out",
        units: 3,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "meanSquaredError" });
  const x = tf.tensor2d(Array.from({ length: 32 }, (_, i) => Math.sin(i)), [
    8,
    4,
  ]);
  const y = tf.tensor2d(Array.from({ length: 24 }, (_, i) => Math.cos(i)), [
    8,
    3,
  ]);
  await model.fit(x, y, {
    epochs: 2,
    batchSize: 4,
    shuffle: false,
    verbose: 0,
  });
  return [
    ...networkParameters(tfjsNetwork(model)),
    ...networkParameters(await tfjsOptimizerState(model.optimizer)),
  ];
}

/** One tensor of every dtype, with varied shapes (scalar, empty, 3-D). */
function everyDtype(): Parameter[] {
  const make = (name: string, dtype: DType, shape: number[]): Parameter => {
    const raw = new Uint8Array(shapeSize(shape) * DTYPE_SIZE[dtype]);
    for (let i = 0; i < raw.length; i++) {
      raw[i] = dtype === "Bool" ? i % 2 : (i * 37 + name.length) & 0xff;
    }
    return { name, dtype, shape, data: typedArrayFromBytes(dtype, raw) };
  };
  return [
    make("f32.matrix", "Float32", [3, 4]),
    make("f64.vector", "Float64", [5]),
    make("f16.cube", "Float16", [2, 2, 3]),
    make("bf16.row", "BFloat16", [1, 7]),
    make("i8", "Int8", [9]),
    make("u8", "UInt8", [3, 3]),
    make("i16", "Int16", [4]),
    make("u16", "UInt16", [2, 2]),
    make("i32.scalar", "Int32", []),
    make("u32", "UInt32", [6]),
    make("i64", "Int64", [2, 3]),
    make("u64", "UInt64", [2]),
    make("mask", "Bool", [10]),
    make("empty", "Float32", [0, 4]),
  ];
}

/**
 * Parses a local safetensors file with @huggingface/hub, answering its HTTP
 * range requests from the file (404 for anything else, such as config.json).
 */
async function parseWithHub(path: string, computeParametersCount = false) {
  const bytes = await Deno.readFile(path);
  const name = path.split("/").at(-1)!;
  const requests: string[] = [];
  const fakeFetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    requests.push(
      `${req.method} ${new URL(req.url).pathname} ${req.headers.get("range")}`,
    );
    if (!req.url.endsWith(`/${name}`)) {
      return Promise.resolve(new Response("not found", { status: 404 }));
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2]
      ? Math.min(Number(m[2]), bytes.length - 1)
      : bytes.length - 1;
    return Promise.resolve(
      new Response(bytes.slice(start, end + 1), {
        status: m ? 206 : 200,
        headers: {
          "Content-Range": `bytes ${start}-${end}/${bytes.length}`,
          ETag: '"local"',
        },
      }),
    );
  };
  const parsed = await parseSafetensorsMetadata({
    repo: "local/checkpoint",
    path: name,
    fetch: fakeFetch as typeof fetch,
    computeParametersCount,
  });
  assert(!parsed.sharded);
  return { parsed, bytes, requests };
}

/**
 * Checks a safetensors file against the values saved, through the header
 * @huggingface/hub parsed: dtype names, shapes, offsets that tile the data
 * buffer exactly, and the bytes at those offsets.
 */
async function checkSafetensors(path: string, saved: readonly Parameter[]) {
  const { parsed, bytes } = await parseWithHub(path);
  if (parsed.sharded) throw new Error("unexpected sharded result");
  const { __metadata__: _meta, ...tensors } = parsed.header as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  assertEquals(Object.keys(tensors).sort(), saved.map((p) => p.name).sort());
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const dataStart = 8 + headerLength;
  const spans = Object.values(tensors).map((t) => t.data_offsets).sort((a, b) =>
    a[0] - b[0]
  );
  let end = 0;
  for (const [b, e] of spans) {
    assertEquals(b, end, "offsets must tile the data buffer without gaps");
    end = e;
  }
  assertEquals(dataStart + end, bytes.length, "data buffer must end the file");
  for (const p of saved) {
    const info = tensors[p.name]!;
    assertEquals(
      [info.dtype, info.shape],
      [ST_DTYPE[p.dtype], [...p.shape]],
      p.name,
    );
    const [b, e] = info.data_offsets;
    assertEquals(
      bytes.subarray(dataStart + b, dataStart + e),
      bytesOf(p),
      p.name,
    );
  }
  return parsed.header;
}

Deno.test("the protobufjs reference decodes MindSpore's own fixtures as expected.jsonl says", async () => {
  for (const name of ["golden_router", "golden_sequential_mlp", "golden_moe"]) {
    const decoded = decodeWithProtobufjs(
      await Deno.readFile(join(FIXTURES, `${name}.ckpt`)),
    );
    const expected = (await Deno.readTextFile(
      join(FIXTURES, `${name}.expected.jsonl`),
    )).trim().split("\n").map((line) => JSON.parse(line));
    assertEquals(decoded.length, expected.length, name);
    for (const [i, e] of decoded.entries()) {
      const want = expected[i];
      assertEquals(
        [e.tag, e.type, e.dims, e.content.byteLength],
        [want.name, want.dtype, want.dims, want.bytes],
      );
      assertEquals(await sha256(e.content), want.sha256, e.tag);
      const f32 = new Float32Array(e.content.slice().buffer);
      const sum = f32.reduce((a, b) => a + b, 0);
      assert(Math.abs(sum - want.sum) < 1e-5, `${e.tag}: sum ${sum}`);
    }
  }
});

Deno.test("a tfjs model's .ckpt decodes with protobufjs tensor by tensor", async () => {
  const params = await trainedTfjs();
  await withTempDir(async (dir) => {
    const saved = await saveCheckpoint(join(dir, "tfjs.ckpt"), params, {
      appendInfo: new Map<string, number | string>([
        ["epoch_num", 2],
        ["step_num", 4],
        ["loss_scale", 0.5],
        ["run", "tfjs interop"],
      ]),
    });
    const decoded = decodeWithProtobufjs(await Deno.readFile(saved.path));
    assertEquals(decoded.map((v) => v.tag), [
      ...params.map((p) => p.name),
      "epoch_num",
      "step_num",
      "loss_scale",
      "run",
    ]);
    params.forEach((p, i) => {
      const v = decoded[i]!;
      // MindSpore writes no dims for a scalar (the Adam step counter).
      assertEquals([v.type, v.dims], [p.dtype, [...p.shape]], p.name);
      assertEquals(v.content, bytesOf(p), p.name);
    });
    const tail = decoded.slice(params.length);
    assertEquals(tail.map((v) => [v.type, v.dims]), [
      ["Int64", []],
      ["Int64", []],
      ["Float32", []],
      ["str", [0]],
    ]);
    assertEquals(new BigInt64Array(tail[1]!.content.slice().buffer)[0], 4n);
    assertEquals(new Float32Array(tail[2]!.content.slice().buffer)[0], 0.5);
    const utf32 = new Uint32Array(tail[3]!.content.slice().buffer);
    assertEquals(String.fromCodePoint(...utf32), "tfjs interop");
  });
});

Deno.test("a tfjs model's safetensors file parses with @huggingface/hub, bytes at its offsets", async () => {
  const params = await trainedTfjs();
  await withTempDir(async (dir) => {
    const path = join(dir, "tfjs.safetensors");
    await saveCheckpoint(path, params, {
      format: "safetensors",
      appendInfo: { run: "tfjs interop", epoch_num: 2 },
    });
    const epoch: Parameter = {
      name: "epoch_num",
      dtype: "Int64",
      shape: [],
      data: new BigInt64Array([2n]),
    };
    const header = await checkSafetensors(path, [...params, epoch]);
    const meta = header.__metadata__ as Record<string, string>;
    assertEquals(Object.keys(meta), ["run", "ckpt.crc32"]);
    assertEquals(meta.run, "tfjs interop");
    // And our own loader agrees with what hub parsed.
    const loaded = await loadCheckpoint(path);
    assertEquals(loaded.get("hidden/kernel"), {
      dtype: "Float32",
      shape: [4, 8],
      data: params[0]!.data,
    });
  });
});

Deno.test("every dtype we write as safetensors parses with @huggingface/hub", async () => {
  const params = everyDtype();
  await withTempDir(async (dir) => {
    const path = join(dir, "all.safetensors");
    await saveCheckpoint(path, params, { format: "safetensors" });
    await checkSafetensors(path, params);
    // hub's parameter count (per dtype) agrees with the shapes.
    const { parsed } = await parseWithHub(path, true);
    assert(!parsed.sharded);
    assertEquals(parsed.parameterCount?.F32, 12);
    assertEquals(parsed.parameterCount?.BF16, 7);
  });
});
