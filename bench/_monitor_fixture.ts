// Shared setup of the monitor benchmarks: a network of Float32 tensors and
// step contexts.
import type { Parameter, StepContext } from "../mod.ts";

/** `count` Float32 parameters of `elements` each, filled with a pattern. */
export function makeNetwork(count: number, elements: number): Parameter[] {
  return Array.from({ length: count }, (_, i) => {
    const data = new Float32Array(elements);
    for (let j = 0; j < elements; j++) data[j] = (i * 31 + j) % 97;
    return {
      name: `layer${i}.weight`,
      dtype: "Float32",
      shape: [elements],
      data,
    };
  });
}

/** The context of global step `step`. */
export function context(network: Parameter[], step: number): StepContext {
  return { step, epoch: 1, stepsPerEpoch: 1_000_000_000, network };
}

/** The median of some numbers. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
