// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the one way a shape is compared and written in messages.

/**
 * A shape as messages write it: `[2, 3]`; `[]` for a scalar. An unknown
 * dimension (tfjs's `null`) is written as `null`.
 */
export function formatShape(shape: readonly (number | null)[]): string {
  return `[${shape.join(", ")}]`;
}

/** Whether two shapes have the same dimensions (an unknown one matches none). */
export function sameShape(
  a: readonly number[],
  b: readonly (number | null)[],
): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
