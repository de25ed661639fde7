// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Reading a checkpoint while computing the checksum of its bytes on disk:
// the same digest as checksumFile whatever the read order, and the bytes are
// read about once when entries are read in file order.

import { equal, notEqual, ok } from "node:assert/strict";
import {
  CorruptCheckpointError,
  DecryptionError,
  type EncMode,
  type Parameter,
  saveCheckpoint,
} from "../mod.ts";
import { openVerifying } from "../src/checkpoint/_verified_open.ts";
import { countingStore, MemoryStore } from "./_memory_store.ts";

function network(): Parameter[] {
  const out: Parameter[] = [];
  for (let i = 0; i < 6; i++) {
    const data = new Float32Array(40_000 + i * 1_000);
    for (let j = 0; j < data.length; j++) data[j] = Math.sin(i * 7 + j);
    out.push({ name: `p${i}`, dtype: "Float32", shape: [data.length], data });
  }
  return out;
}

const CASES: { name: string; format?: "safetensors"; mode?: EncMode }[] = [
  { name: "plain .ckpt" },
  { name: "safetensors", format: "safetensors" },
  { name: "AES-GCM", mode: "AES-GCM" },
  { name: "AES-CBC", mode: "AES-CBC" },
  { name: "SM4-CBC", mode: "SM4-CBC" },
];

for (const c of CASES) {
  Deno.test(`a verifying read gives checksumFile's digest in any read order: ${c.name}`, async () => {
    const mem = new MemoryStore();
    const key = c.mode === undefined ? undefined : new Uint8Array(16).fill(9);
    const path = `mem://v/m.${c.format ?? "ckpt"}`;
    // Without the file's own check (as MindSpore and other writers save):
    // the case the on-disk CRC is computed for.
    const saved = await saveCheckpoint(path, network(), {
      store: mem,
      check: false,
      ...(c.format && { format: c.format }),
      ...(key && { encKey: key, encMode: c.mode! }),
    });
    const load = { ...(key && { decKey: key, decMode: c.mode! }) };
    for (const order of ["file", "reverse", "none"] as const) {
      const [store, read] = countingStore(mem);
      const v = await openVerifying(path, { ...load, store });
      const names = v.reader.entries.map((e) => e.name);
      if (order === "reverse") names.reverse();
      if (order !== "none") { for (const n of names) await v.reader.read(n); }
      equal(await v.checksum(), saved.checksum, `${order} order`);
      await v.reader.close();
      if (order === "file" && c.mode === undefined) {
        // The data once more than the parse, which reads 1 MiB windows
        // (here the whole file: its tensors are under 1 MiB each).
        equal(
          read() <= 2 * saved.bytes + 256 * 1024,
          true,
          `read ${read()} of ${saved.bytes}`,
        );
      }
    }
    // A flipped byte changes the digest, unless the open already refuses
    // the file (its own check, or AES-GCM's tags, catch it while parsing).
    const bytes = mem.files.get(path)!.bytes;
    bytes[bytes.length - 20]! ^= 0x40;
    try {
      const v = await openVerifying(path, { ...load, store: mem });
      notEqual(await v.checksum(), saved.checksum);
      await v.reader.close();
    } catch (error) {
      ok(
        error instanceof DecryptionError ||
          error instanceof CorruptCheckpointError,
        String(error),
      );
    }
  });
}

Deno.test("a file with its own check is not checksummed twice: checksum() is null", async () => {
  const mem = new MemoryStore();
  await saveCheckpoint("mem://v/c.ckpt", network(), { store: mem });
  const v = await openVerifying("mem://v/c.ckpt", { store: mem });
  equal(v.reader.check, "crc32");
  equal(await v.checksum(), null);
  await v.reader.close();
});
