// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the one way a shape is compared and written in messages.

/** A shape as messages write it: `[2, 3]`; `[]` for a scalar. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Whether two shapes have the same dimensions. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
