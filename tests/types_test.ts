import {
  deepEqual as assertEquals,
  throws as assertThrows,
} from "node:assert/strict";
import {
  DTYPE_SIZE,
  DTYPES,
  networkParameters,
  type Parameter,
  typedArrayFromBytes,
  validateTensor,
} from "../mod.ts";

Deno.test("every dtype has a size and round-trips through bytes", () => {
  for (const dtype of DTYPES) {
    const bytes = new Uint8Array(DTYPE_SIZE[dtype] * 3);
    const a = typedArrayFromBytes(dtype, bytes);
    assertEquals(a.length, 3);
  }
});

Deno.test("typedArrayFromBytes copies unaligned bytes instead of failing", () => {
  const buf = new Uint8Array(9);
  buf.set([0, 0, 128, 63], 1); // 1.0f at offset 1
  const a = typedArrayFromBytes("Float32", buf.subarray(1, 5));
  assertEquals(a[0], 1);
});

Deno.test("validateTensor rejects a shape that disagrees with the data", () => {
  assertThrows(
    () =>
      validateTensor({
        dtype: "Float32",
        shape: [3],
        data: new Float32Array(2),
      }, "t"),
    RangeError,
  );
  assertThrows(
    () =>
      validateTensor({
        dtype: "Float32",
        shape: [2],
        data: new Float64Array(2),
      }, "t"),
    TypeError,
  );
  assertThrows(
    () =>
      validateTensor(
        { dtype: "Float8", shape: [2], data: new Uint8Array(2) },
        "t",
      ),
    TypeError,
  );
});

Deno.test("networkParameters accepts iterables, maps and records in order", () => {
  const t = { dtype: "Int32" as const, shape: [1], data: new Int32Array(1) };
  const list: Parameter[] = [{ name: "b", ...t }, {
    name: "a",
    ...t,
    requiresGrad: false,
  }];
  assertEquals(networkParameters(list).map((p) => p.name), ["b", "a"]);
  assertEquals(networkParameters(list)[1]?.requiresGrad, false);
  assertEquals(
    networkParameters(new Map([["x", t], ["y", t]])).map((p) => p.name),
    ["x", "y"],
  );
  assertEquals(networkParameters({ z: t, w: t }).map((p) => p.name), [
    "z",
    "w",
  ]);
});

Deno.test("networkParameters rejects duplicate names and NUL in names", () => {
  const t = { dtype: "Int32" as const, shape: [1], data: new Int32Array(1) };
  assertThrows(
    () => networkParameters([{ name: "a", ...t }, { name: "a", ...t }]),
    RangeError,
  );
  assertThrows(() => networkParameters({ "a\0b": t }), RangeError);
  assertThrows(() => networkParameters(42 as never), TypeError);
});
