/**
 * When to save: the original's step and seconds triggers as a small pure
 * policy. No disk, no timers; time comes from the caller.
 *
 * @module
 */

/** Options of {@linkcode SaveTrigger}. */
export interface SaveTriggerOptions {
  /**
   * Save every N global steps; 0 turns the step trigger off.
   *
   * @default {1}
   */
  readonly saveCheckpointSteps?: number;
  /**
   * Save at the first step end more than N seconds after `startTime` or the
   * previous seconds decision; used only when `saveCheckpointSteps` is 0.
   *
   * @default {0}
   */
  readonly saveCheckpointSeconds?: number;
  /**
   * The clock reading (milliseconds) the seconds trigger starts from: the
   * monitor's construction time.
   *
   * @default {0}
   */
  readonly startTime?: number;
}

/**
 * The save trigger of the original (MindSpore's `ModelCheckpoint`):
 *
 * - with `saveCheckpointSteps = N > 0`, a save is due when
 *   `step >= lastSavedStep + N`, on a global step counter that does not
 *   restart at epoch boundaries;
 * - otherwise, with `saveCheckpointSeconds = S > 0`, a save is due when more
 *   than S seconds (strictly) passed since `startTime` or since the previous
 *   decision to save, and the timer restarts at the decision;
 * - `force` (train end) saves unless this step was just saved;
 * - the same step is never saved twice.
 *
 * A save that fails is not recorded with {@linkcode SaveTrigger.saved}, so
 * the step trigger tries again at the next step end.
 *
 * @example Every 3 steps
 * ```ts
 * import { SaveTrigger } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 * const trigger = new SaveTrigger({ saveCheckpointSteps: 3 });
 * const saved: number[] = [];
 * for (let step = 1; step <= 10; step++) {
 *   if (trigger.isDue(step, 0)) {
 *     trigger.saved(step);
 *     saved.push(step);
 *   }
 * }
 * if (trigger.isDue(10, 0, true)) saved.push(10); // train end
 * deepEqual(saved, [3, 6, 9, 10]);
 * ```
 */
export class SaveTrigger {
  #steps: number;
  #periodMs: number;
  #lastTime: number;
  #lastSavedStep = 0;

  /**
   * Makes a trigger.
   *
   * @param options The two trigger settings and the start time.
   */
  constructor(options: SaveTriggerOptions = {}) {
    this.#steps = options.saveCheckpointSteps ?? 1;
    this.#periodMs = (options.saveCheckpointSeconds ?? 0) * 1000;
    this.#lastTime = options.startTime ?? 0;
  }

  /** The step of the last recorded save (0 before any). */
  get lastSavedStep(): number {
    return this.#lastSavedStep;
  }

  /**
   * Returns whether a save is due at a step end. With the seconds trigger,
   * a `true` answer restarts the timer (the original resets it when it
   * decides, so the save's own duration counts toward the next period).
   *
   * @param step The global step that just ended.
   * @param now The clock reading, in milliseconds.
   * @param force Save anyway (train end), unless this step was just saved.
   * @returns Whether to save now.
   *
   * @example
   * ```ts
   * import { SaveTrigger } from "@ckpt/monitor";
   * import { equal } from "node:assert/strict";
   * const t = new SaveTrigger({ saveCheckpointSteps: 0, saveCheckpointSeconds: 10 });
   * equal(t.isDue(1, 10_000), false); // exactly 10 s: not more than 10
   * equal(t.isDue(2, 10_001), true);
   * equal(t.isDue(3, 15_000), false); // the timer restarted at 10_001
   * ```
   */
  isDue(step: number, now: number, force = false): boolean {
    if (step === this.#lastSavedStep) return false;
    if (this.#steps > 0) {
      return force || step >= this.#lastSavedStep + this.#steps;
    }
    if (
      this.#periodMs > 0 && (force || now - this.#lastTime > this.#periodMs)
    ) {
      this.#lastTime = now;
      return true;
    }
    return false;
  }

  /**
   * Records a committed save at a step. A resumed run also calls it with
   * the step it restarts from, so that its first save comes N steps later.
   *
   * @param step The step saved.
   *
   * @example
   * ```ts
   * import { SaveTrigger } from "@ckpt/monitor";
   * import { equal } from "node:assert/strict";
   * const t = new SaveTrigger({ saveCheckpointSteps: 5 });
   * t.saved(7);
   * equal(t.isDue(11, 0), false);
   * equal(t.isDue(12, 0), true);
   * ```
   */
  saved(step: number): void {
    this.#lastSavedStep = step;
  }
}
