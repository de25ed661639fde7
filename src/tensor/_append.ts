// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: validation and resolution of MindSpore's `append_info` list.

import { describeValue as describe } from "../core/_describe.ts";
import { type AppendValue, validateTensor } from "./types.ts";

/**
 * Validates an `appendInfo` list (the original's shape: `"epoch_num"`,
 * `"step_num"` and at most one record) and resolves it into the ordered map
 * the original builds: `epoch_num` and `step_num` first when listed as
 * strings (starting at 0), then the record's entries in order; a record key
 * equal to an earlier one replaces its value and keeps its position.
 */
export function resolveAppendInfo(
  items: unknown,
  option = "appendInfo",
): Map<string, AppendValue> {
  if (!Array.isArray(items)) {
    throw new TypeError(
      `Cannot use option "${option}": expected an array of "epoch_num", "step_num" and at most one record, received ${
        describe(items)
      }`,
    );
  }
  const out = new Map<string, AppendValue>();
  let records = 0;
  for (const item of items as unknown[]) {
    if (typeof item === "string") {
      if (item !== "epoch_num" && item !== "step_num") {
        throw new RangeError(
          `Cannot use option "${option}": a string item must be "epoch_num" or "step_num", received ${
            describe(item)
          }`,
        );
      }
      if (!out.has(item)) out.set(item, 0);
      continue;
    }
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw new TypeError(
        `Cannot use option "${option}": items must be "epoch_num", "step_num" or a record, received ${
          describe(item)
        }`,
      );
    }
    if (++records > 1) {
      throw new TypeError(
        `Cannot use option "${option}": it may hold at most one record, received ${records}`,
      );
    }
    const entries: Iterable<[unknown, unknown]> = item instanceof Map
      ? item.entries()
      : Object.entries(item);
    for (const [key, value] of entries) {
      if (typeof key !== "string") {
        throw new TypeError(
          `Cannot use option "${option}": record keys must be strings, received ${
            describe(key)
          }`,
        );
      }
      if (key.length === 0 || key.includes("\0")) {
        throw new RangeError(
          `Cannot use option "${option}": record keys must be non-empty and without NUL, received ${
            JSON.stringify(key)
          }`,
        );
      }
      out.set(key, checkOptionValue(value, `${option}.${key}`));
    }
  }
  return out;
}

/**
 * Checks one append-info value, the one check of its kind (the monitor's
 * option, `saveCheckpoint` and a background save all call it): a string,
 * boolean, bigint or number is returned as is, an object must be a valid
 * tensor ({@linkcode validateTensor}); anything else is a TypeError. What a
 * use adds on top stays with it: the option's finite numbers, a file
 * format's Int64 range and strings.
 *
 * @param action What could not be done (`Cannot save checkpoint`).
 * @param subject Names the value (`appendInfo "epoch"`).
 */
export function checkAppendValue(
  value: unknown,
  action: string,
  subject: string,
): AppendValue {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
    case "number":
      return value;
    case "object":
      if (value !== null) return validateTensor(value, subject);
  }
  throw new TypeError(
    `${action}: ${subject} must be a number, bigint, boolean, string or Tensor, received ${
      describe(value)
    }`,
  );
}

/** An option's record value: as {@linkcode checkAppendValue}, numbers finite. */
function checkOptionValue(value: unknown, what: string): AppendValue {
  const checked = checkAppendValue(
    value,
    "Cannot configure checkpoints",
    `option "${what}"`,
  );
  if (typeof checked === "number" && !Number.isFinite(checked)) {
    throw new RangeError(
      `Cannot use option "${what}": a number must be finite, received ${
        describe(value)
      }`,
    );
  }
  return checked;
}
