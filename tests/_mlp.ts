// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A small deterministic model for resume tests: a 2-layer MLP (tanh) fitted
 * with Adam on seeded synthetic data, in plain TypeScript. Every batch
 * depends only on (epoch, step in epoch) and Adam's bias correction on the
 * optimizer's own `global_step`, so a resumed run can match an
 * uninterrupted one bit for bit.
 */

import type { Parameter } from "../mod.ts";

export const IN = 3, HIDDEN = 8, SAMPLES = 96, BATCH = 16;
export const STEPS_PER_EPOCH = SAMPLES / BATCH;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const X = new Float64Array(SAMPLES * IN);
const Y = new Float64Array(SAMPLES);
{
  const r = prng(11);
  for (let i = 0; i < SAMPLES; i++) {
    for (let j = 0; j < IN; j++) X[i * IN + j] = r() * 2 - 1;
    Y[i] = Math.cos(X[i * IN]! * 2) - X[i * IN + 1]! * X[i * IN + 2]!;
  }
}

/** The network and the optimizer's state, each a list of parameters. */
export interface Mlp {
  readonly params: Parameter<"Float32">[];
  readonly optimizer: Parameter[];
}

/** A freshly initialised model (always the same). */
export function makeMlp(): Mlp {
  const r = prng(5);
  const p = (name: string, shape: number[], scale: number) => ({
    name,
    dtype: "Float32" as const,
    shape,
    data: Float32Array.from(
      { length: shape.reduce((a, b) => a * b, 1) },
      () => (r() * 2 - 1) * scale,
    ),
  });
  const params = [
    p("l1.weight", [HIDDEN, IN], 0.8),
    p("l1.bias", [HIDDEN], 0),
    p("l2.weight", [1, HIDDEN], 0.5),
    p("l2.bias", [1], 0),
  ];
  const optimizer: Parameter[] = [];
  for (const tag of ["adam_m", "adam_v"]) {
    for (const q of params) {
      optimizer.push({
        name: `${tag}.${q.name}`,
        dtype: "Float32",
        shape: q.shape,
        data: new Float32Array(q.data.length),
        requiresGrad: false,
      });
    }
  }
  optimizer.push({
    name: "global_step",
    dtype: "Int32",
    shape: [1],
    data: new Int32Array(1),
    requiresGrad: false,
  });
  return { params, optimizer };
}

/** One Adam step on batch (epoch, stepInEpoch); returns the loss. */
export function mlpStep(m: Mlp, epoch: number, stepInEpoch: number): number {
  const [w1, b1, w2, b2] = m.params.map((p) => p.data);
  const g = m.params.map((p) => new Float64Array(p.data.length));
  const h = new Float64Array(HIDDEN);
  const r = prng(epoch * 7919);
  const order = Array.from({ length: SAMPLES }, (_, i) => i);
  for (let i = SAMPLES - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let loss = 0;
  for (let k = (stepInEpoch - 1) * BATCH; k < stepInEpoch * BATCH; k++) {
    const i = order[k]!;
    let out = b2![0]!;
    for (let u = 0; u < HIDDEN; u++) {
      let s = b1![u]!;
      for (let j = 0; j < IN; j++) s += w1![u * IN + j]! * X[i * IN + j]!;
      h[u] = Math.tanh(s);
      out += w2![u]! * h[u]!;
    }
    const err = out - Y[i]!;
    loss += err * err / BATCH;
    const d = 2 * err / BATCH;
    g[3]![0]! += d;
    for (let u = 0; u < HIDDEN; u++) {
      g[2]![u]! += d * h[u]!;
      const dh = d * w2![u]! * (1 - h[u]! * h[u]!);
      g[1]![u]! += dh;
      for (let j = 0; j < IN; j++) g[0]![u * IN + j]! += dh * X[i * IN + j]!;
    }
  }
  const gs = m.optimizer.at(-1)!.data as Int32Array;
  const t = ++gs[0]!;
  const n = m.params.length;
  m.params.forEach((p, pi) => {
    const mm = m.optimizer[pi]!.data as Float32Array;
    const vv = m.optimizer[n + pi]!.data as Float32Array;
    for (let e = 0; e < p.data.length; e++) {
      const ge = g[pi]![e]!;
      mm[e] = 0.9 * mm[e]! + 0.1 * ge;
      vv[e] = 0.999 * vv[e]! + 0.001 * ge * ge;
      const mh = mm[e]! / (1 - 0.9 ** t);
      const vh = vv[e]! / (1 - 0.999 ** t);
      p.data[e] = p.data[e]! - 0.02 * mh / (Math.sqrt(vh) + 1e-8);
    }
  });
  return loss;
}
