// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: option checks shared by CheckpointConfig and CheckpointMonitor.

import { describeValue as describe } from "./_describe.ts";

const WHAT = "Cannot configure checkpoints";

/**
 * Checks a non-negative count: a non-number (a boolean included) is a
 * TypeError; a negative, non-finite, unsafe or (when `integer`) fractional
 * number a RangeError. `what` starts the message.
 */
export function checkCount(
  value: unknown,
  option: string,
  integer: boolean,
  what: string = WHAT,
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${what}: option "${option}" must be a number, received ${
        describe(value)
      }`,
    );
  }
  const ok = integer
    ? Number.isSafeInteger(value) && value >= 0
    : Number.isFinite(value) && value >= 0;
  if (!ok) {
    throw new RangeError(
      `${what}: option "${option}" must be a non-negative ${
        integer ? "integer" : "finite number"
      }, received ${describe(value)}`,
    );
  }
  return value;
}

/**
 * Checks an integer of at least `min` (and at most `max`, when given): a
 * non-number is a TypeError; a fraction, an unsafe integer or one out of
 * range a RangeError. `what` says what could not be done; `name` names the
 * value (`option "x"`).
 */
export function checkInteger(
  value: unknown,
  name: string,
  min: number,
  what: string = WHAT,
  max?: number,
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${what}: ${name} must be a number, received ${describe(value)}`,
    );
  }
  if (!Number.isSafeInteger(value) || value < min || value > (max ?? value)) {
    throw new RangeError(
      `${what}: ${name} must be ${
        max !== undefined
          ? `an integer from ${min} to ${max}`
          : min === 1
          ? "a positive integer"
          : min === 0
          ? "a non-negative integer"
          : `an integer of at least ${min}`
      }, received ${describe(value)}`,
    );
  }
  return value;
}

/** Checks a boolean option. */
export function checkBoolean(value: unknown, option: string): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(
      `${WHAT}: option "${option}" must be a boolean, received ${
        describe(value)
      }`,
    );
  }
  return value;
}

/** Checks a string option against a list of allowed values. */
export function checkChoice<T extends string>(
  value: unknown,
  option: string,
  choices: readonly T[],
): T {
  if (typeof value !== "string") {
    throw new TypeError(
      `${WHAT}: option "${option}" must be a string, received ${
        describe(value)
      }`,
    );
  }
  if (!(choices as readonly string[]).includes(value)) {
    throw new RangeError(
      `${WHAT}: option "${option}" must be one of ${
        choices.map((c) => `"${c}"`).join(", ")
      }, received ${describe(value)}`,
    );
  }
  return value as T;
}

/** Throws a TypeError for option keys that are not in `known`. */
export function checkKnownKeys(
  options: object,
  known: ReadonlySet<string>,
  renames: Readonly<Record<string, string>>,
): void {
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const hint = renames[key] ?? nearestKey(key, known);
    throw new TypeError(
      `${WHAT}: unknown option "${key}"${
        hint === undefined ? "" : `; did you mean "${hint}"?`
      }`,
    );
  }
}

/** Every policy option (those a CheckpointConfig covers). */
export const CONFIG_KEYS: readonly string[] = [
  "saveCheckpointSteps",
  "saveCheckpointSeconds",
  "keepCheckpointMax",
  "keepCheckpointPerNMinutes",
  "retentionScope",
  "integratedSave",
  "saveNetworkParams",
  "saveTrainableParams",
  "asyncSave",
  "savedNetwork",
  "appendInfo",
  "encKey",
  "encMode",
  "exceptionSave",
  "globalBatchSize",
  "format",
];

/** The original's snake_case names, for a helpful error. */
export const SNAKE_NAMES: Readonly<Record<string, string>> = {
  save_checkpoint_steps: "saveCheckpointSteps",
  save_checkpoint_seconds: "saveCheckpointSeconds",
  keep_checkpoint_max: "keepCheckpointMax",
  keep_checkpoint_per_n_minutes: "keepCheckpointPerNMinutes",
  integrated_save: "integratedSave",
  save_network_params: "saveNetworkParams",
  save_trainable_params: "saveTrainableParams",
  async_save: "asyncSave",
  saved_network: "savedNetwork",
  append_info: "appendInfo",
  enc_key: "encKey",
  enc_mode: "encMode",
  exception_save: "exceptionSave",
  global_batch_size: "globalBatchSize",
  checkpoint_format: "format",
  ckpt_directory: "directory",
};

/**
 * The known key a mistyped one most likely meant: the same letters but for
 * case and `_`, else at most two edits away (one for short names); `undefined`
 * when none is that close.
 */
function nearestKey(
  key: string,
  known: ReadonlySet<string>,
): string | undefined {
  const fold = (k: string) => k.toLowerCase().replaceAll("_", "");
  const folded = fold(key);
  let best: string | undefined;
  let bestDistance = key.length < 6 ? 2 : 3;
  for (const candidate of known) {
    const d = editDistance(folded, fold(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length]!;
}
