// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * An independent reader of `.ckpt` files for tests: protobufjs with
 * MindSpore's schema (checkpoint.proto), so the writer is not only checked
 * by our own parser.
 */
import protobuf from "npm:protobufjs@8.8.1";

const root = protobuf.parse(`
syntax = "proto2";
message Checkpoint {
  message Value {
    required string tag = 1;
    oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
  }
  repeated Value value = 1;
}
message TensorProto {
  repeated int64 dims = 1;
  required string tensor_type = 2;
  required bytes tensor_content = 3;
}
message MapTensorProto { repeated TensorProto tensor = 1; }
`).root;

const Checkpoint = root.lookupType("Checkpoint");

/** One `Value` of a `.ckpt` file as protobufjs decodes it. */
export interface ReferenceValue {
  tag: string;
  dims: number[];
  type: string;
  content: Uint8Array;
}

/**
 * Decodes a whole `.ckpt` file with protobufjs, after stripping a `crc_num`
 * trailer as MindSpore's reader does.
 */
export function decodeWithProtobufjs(bytes: Uint8Array): ReferenceValue[] {
  const n = bytes.length;
  if (
    n >= 17 && new TextDecoder().decode(bytes.subarray(n - 17, n - 10)) ===
      "crc_num"
  ) bytes = bytes.subarray(0, n - 17);
  const msg = Checkpoint.toObject(Checkpoint.decode(bytes), {
    longs: Number,
    arrays: true,
  }) as {
    value: {
      tag: string;
      tensor: { dims: number[]; tensorType: string; tensorContent: Uint8Array };
    }[];
  };
  return msg.value.map((v) => ({
    tag: v.tag,
    dims: v.tensor.dims,
    type: v.tensor.tensorType,
    content: new Uint8Array(v.tensor.tensorContent),
  }));
}

/** Encodes raw values with protobufjs (packed dims unless told otherwise). */
export function encodeWithProtobufjs(values: ReferenceValue[]): Uint8Array {
  return Checkpoint.encode(Checkpoint.fromObject({
    value: values.map((v) => ({
      tag: v.tag,
      tensor: { dims: v.dims, tensorType: v.type, tensorContent: v.content },
    })),
  })).finish();
}
