// Files we write, read by independent implementations from npm:
// - `.ckpt`: protobufjs with the schema of the semantics reference (§13.1),
//   checked first on the MindSpore fixtures so the decoder itself is trusted;
// - safetensors: the header parser of @huggingface/hub.
import protobuf from "npm:protobufjs@8.8.1";
import { deepEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";

const FIXTURES = new URL("../../shared/fixtures/mindspore/", import.meta.url);

/** The `.ckpt` schema, as the semantics reference gives it (proto2). */
const SCHEMA = `
syntax = "proto2";
message Checkpoint {
  message Value {
    required string tag = 1;
    oneof value {
      TensorProto tensor = 2;
      MapTensorProto maptensor = 3;
    }
  }
  repeated Value value = 1;
}
message TensorProto {
  repeated int64 dims = 1;
  required string tensor_type = 2;
  required bytes tensor_content = 3;
}
message MapTensorProto { repeated TensorProto tensor = 1; }
`;

const CheckpointType = protobuf.parse(SCHEMA, { keepCase: true }).root
  .lookupType("Checkpoint");

/** One entry of a `.ckpt` file as protobufjs decodes it. */
export interface DecodedEntry {
  tag: string;
  dims: number[];
  tensor_type: string;
  tensor_content: Uint8Array;
}

/**
 * Decodes a whole `.ckpt` file as one `Checkpoint` message: the file is a
 * concatenation of single-value messages, which protobuf merges.
 */
export function decodeCkpt(bytes: Uint8Array): DecodedEntry[] {
  const message = CheckpointType.decode(bytes);
  const obj = CheckpointType.toObject(message, {
    longs: Number,
    bytes: Uint8Array,
    arrays: true,
  }) as {
    value: {
      tag: string;
      tensor?: {
        dims: number[];
        tensor_type: string;
        tensor_content: Uint8Array;
      };
    }[];
  };
  return obj.value.map((v) => {
    assert(v.tensor, `entry ${v.tag} has no tensor`);
    return { tag: v.tag, ...v.tensor };
  });
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test("protobufjs decodes the MindSpore fixtures as their expected.jsonl says", async () => {
  for (const name of ["golden_router", "golden_sequential_mlp", "golden_moe"]) {
    const bytes = await Deno.readFile(new URL(`${name}.ckpt`, FIXTURES));
    const expected = (await Deno.readTextFile(
      new URL(`${name}.expected.jsonl`, FIXTURES),
    )).trim().split("\n").map((line) => JSON.parse(line));
    const decoded = decodeCkpt(bytes);
    assertEquals(decoded.length, expected.length, name);
    decoded.forEach((e, i) => {
      const want = expected[i];
      assertEquals(
        [e.tag, e.tensor_type, e.dims, e.tensor_content.byteLength],
        [want.name, want.dtype, want.dims, want.bytes],
      );
      assertEquals(sha256(e.tensor_content), want.sha256, e.tag);
      const c = e.tensor_content;
      const f32 = new Float32Array(
        c.buffer.slice(c.byteOffset, c.byteOffset + c.byteLength),
      );
      const sum = f32.reduce((a, b) => a + b, 0);
      assert(Math.abs(sum - want.sum) < 1e-5, `${e.tag}: sum ${sum}`);
    });
  }
});
