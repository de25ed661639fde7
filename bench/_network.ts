// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The benchmark network: Float32 tensors (a few large, many small) that are
 * views into ONE contiguous, already touched buffer, so that a raw write of
 * that buffer writes exactly the same tensor bytes from the same memory.
 */
import type { Tensor } from "../mod.ts";

const MiB = 1024 * 1024;

/** A network and the one buffer all its tensors view. */
export interface BenchNetwork {
  network: Map<string, Tensor>;
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Makes a network of `scale` GiB of Float32: large tensors of 384, 192, 192
 * and 64 MiB, then 1024 tensors of 160 KiB and 2048 of 16 KiB (times
 * `scale`).
 */
export function benchNetwork(scale = 1): BenchNetwork {
  const sizes: number[] = [384 * MiB, 192 * MiB, 192 * MiB, 64 * MiB];
  for (let i = 0; i < 1024; i++) sizes.push(160 * 1024);
  for (let i = 0; i < 2048; i++) sizes.push(16 * 1024);
  const scaled = sizes.map((s) => Math.max(4, Math.floor((s * scale) / 4) * 4));
  const total = scaled.reduce((a, b) => a + b, 0);
  const buffer = new ArrayBuffer(total);
  const all = new Float32Array(buffer);
  for (let i = 0; i < all.length; i += 1024) all[i] = i * 1e-6; // touch every page
  const network = new Map<string, Tensor>();
  let at = 0;
  for (const [i, size] of scaled.entries()) {
    const n = size / 4;
    const name = i < 4 ? `layers.${i}.big.weight` : `layers.${i}.small.weight`;
    network.set(name, {
      dtype: "Float32",
      shape: [n],
      data: new Float32Array(buffer, at, n),
    });
    at += size;
  }
  return { network, bytes: new Uint8Array(buffer) };
}

/** Writes `bytes` raw: one write loop of 4 MiB chunks, then fsync. */
export async function rawWrite(path: string, bytes: Uint8Array): Promise<void> {
  using file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  for (let at = 0; at < bytes.length; at += 4 * MiB) {
    const chunk = bytes.subarray(at, Math.min(bytes.length, at + 4 * MiB));
    let done = 0;
    while (done < chunk.length) done += await file.write(chunk.subarray(done));
  }
  await file.sync();
}

/**
 * Reads a whole file raw: one buffer of the file's size, filled by a read
 * loop (the same fresh-memory cost a load pays for its tensors).
 */
export async function rawRead(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const { size } = await file.stat();
  const out = new Uint8Array(size);
  let done = 0;
  while (done < size) {
    const n = await file.read(out.subarray(done));
    if (n === null) throw new Error(`${path} ended early`);
    done += n;
  }
  return out;
}
