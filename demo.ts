// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Demo: saves a small network with append info to `./output/demo.ckpt`,
 * loads it back and prints what it did.
 *
 * Run: `npx --yes deno@2.9.6 task demo`
 *
 * @module
 */

import {
  checksumFile,
  loadCheckpoint,
  openCheckpoint,
  saveCheckpoint,
  type Tensor,
} from "./mod.ts";

function describe(value: Tensor | string): string {
  if (typeof value === "string") return `str ${JSON.stringify(value)}`;
  const head = Array.from(
    (value.data as ArrayLike<number | bigint>) as (number | bigint)[],
  ).slice(0, 4).map((x) =>
    typeof x === "bigint" ? `${x}` : `${Number(x.toPrecision(6))}`
  ).join(", ");
  return `${value.dtype}[${value.shape.join(", ")}] ${head}${
    value.data.length > 4 ? ", ..." : ""
  }`;
}

await Deno.mkdir("./output", { recursive: true });
const path = "./output/demo.ckpt";

const network = new Map<string, Tensor>([
  ["dense.weight", {
    dtype: "Float32",
    shape: [4, 3],
    data: Float32Array.from({ length: 12 }, (_, i) => (i - 6) / 10),
  }],
  ["dense.bias", { dtype: "Float32", shape: [3], data: new Float32Array(3) }],
  ["global_step", { dtype: "Int32", shape: [1], data: new Int32Array([120]) }],
]);

const saved = await saveCheckpoint(path, network, {
  appendInfo: {
    epoch_num: 2,
    step_num: 120,
    loss_scale: 1024.5,
    note: "saved by the @ckpt/monitor demo",
  },
});
const mode = ((await Deno.stat(path)).mode ?? 0) & 0o777;
console.log(
  `saved ${saved.path}: ${saved.bytes} bytes, checksum ${saved.checksum},` +
    ` file mode 0o${mode.toString(8)}`,
);
console.log(`checksum recomputed from disk: ${await checksumFile(path)}`);

{
  await using reader = await openCheckpoint(path);
  console.log(`opened ${reader.path} (${reader.format}), entries:`);
  for (const e of reader.entries) {
    console.log(
      `  ${e.name.padEnd(14)} ${e.dtype.padEnd(8)} [${e.shape.join(", ")}]` +
        ` ${e.byteLength} bytes`,
    );
  }
}

const loaded = await loadCheckpoint(path);
console.log("loaded back:");
for (const [name, value] of loaded) {
  console.log(`  ${name.padEnd(14)} ${describe(value)}`);
}
