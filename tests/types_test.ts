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

Deno.test("Float16 takes Uint16Array bit patterns, in both formats, and loads them back bit for bit", async () => {
  const {
    loadCheckpoint,
    loadParamsInto,
    openCheckpoint,
    saveCheckpoint,
    tensorBytes,
  } = await import("../mod.ts");
  const { withTempDir } = await import("./_helpers.ts");
  // 1.0, -2.0, 0.5, 65504 (largest half), NaN with a payload, -0.
  const bits = new Uint16Array([
    0x3c00,
    0xc000,
    0x3800,
    0x7bff,
    0x7e01,
    0x8000,
  ]);
  await withTempDir(async (dir) => {
    for (const format of ["ckpt", "safetensors"] as const) {
      const path = `${dir}/h.${format}`;
      await saveCheckpoint(path, {
        h: { dtype: "Float16", shape: [6], data: bits },
      }, { format });
      const back = (await loadCheckpoint(path)).get("h") as {
        dtype: string;
        data: Float16Array;
      };
      assertEquals(back.dtype, "Float16");
      assertEquals(
        Array.from(new Uint16Array(tensorBytes(back as never).slice().buffer)),
        Array.from(bits),
      );
      assertEquals(Array.from(back.data).slice(0, 4), [1, -2, 0.5, 65504]);
      // Restoring into a network that holds bit patterns copies the bits.
      for (const from of ["map", "reader"]) {
        const into = new Uint16Array(6);
        await using reader = await openCheckpoint(path);
        await loadParamsInto(
          { h: { dtype: "Float16", shape: [6], data: into } },
          from === "map" ? await loadCheckpoint(path) : reader,
        );
        assertEquals(Array.from(into), Array.from(bits), from);
      }
    }
  });
});

Deno.test("Float16 still refuses other arrays, naming both it takes", () => {
  assertThrows(
    () =>
      validateTensor(
        { dtype: "Float16", shape: [1], data: new Float32Array(1) },
        "t",
      ),
    /needs a Float16Array or a Uint16Array of bit patterns, received Float32Array\(1\)/,
  );
});

Deno.test("messages say 'an ArrayBuffer', not 'a ArrayBuffer'", () => {
  assertThrows(
    () =>
      validateTensor(
        { dtype: "Float32", shape: [1], data: new ArrayBuffer(4) },
        "t",
      ),
    /received an ArrayBuffer$/,
  );
  assertThrows(
    () =>
      validateTensor({ dtype: "Float32", shape: [1], data: new Map() }, "t"),
    /received a Map$/,
  );
});
