// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** Shared by the async-save benchmarks: a large Float32 model and helpers. */

import type { Parameter, StepContext } from "../mod.ts";

/** Bytes in a MiB. */
export const MiB = 1024 * 1024;

/**
 * A model of `totalMiB` MiB of Float32 in tensors of at most 64 MiB, every
 * page written once (as a trained model's would be).
 */
export function bigModel(totalMiB: number): Parameter<"Float32">[] {
  const params: Parameter<"Float32">[] = [];
  let left = totalMiB * MiB / 4;
  for (let i = 0; left > 0; i++) {
    const n = Math.min(left, 16 * MiB);
    const data = new Float32Array(n);
    for (let j = 0; j < n; j += 1024) data[j] = i + j;
    params.push({
      name: `layer${i}.weight`,
      dtype: "Float32",
      shape: [n],
      data,
    });
    left -= n;
  }
  return params;
}

/** A step context for the model at `step`. */
export function stepContext(
  network: Parameter[],
  step: number,
): StepContext {
  return { step, epoch: 1, stepsPerEpoch: 1_000_000, network };
}

/** Copies the model into `dst`, tensor after tensor (the snapshot's floor). */
export function copyInto(network: Parameter[], dst: Uint8Array): void {
  let at = 0;
  for (const p of network) {
    const src = new Uint8Array(
      p.data.buffer,
      p.data.byteOffset,
      p.data.byteLength,
    );
    dst.set(src, at);
    at += src.byteLength;
  }
}

/** A buffer of `bytes` with every page already touched. */
export function touchedBuffer(bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  b.fill(1);
  return b;
}

/** The median of some numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The q-quantile (0..1) of some numbers. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
