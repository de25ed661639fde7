// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Timers that do not hold the process open, under Deno and Node.js.
 *
 * @module
 */

/**
 * Lets a timer not hold the process open: Node.js's timers are objects with
 * `unref()`, Deno's are numbers given to `Deno.unrefTimer`.
 */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const t = timer as unknown as { unref?: () => void };
  if (typeof t === "object" && t !== null && typeof t.unref === "function") {
    t.unref();
    return;
  }
  (globalThis as unknown as { Deno?: { unrefTimer(id: unknown): void } })
    .Deno
    ?.unrefTimer(timer);
}
