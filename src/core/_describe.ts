// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Describes a value for an error message: its type and a short rendering,
 * such as `string "abc"` or `Float64Array(3)`.
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") {
    const s = value.length > 80 ? value.slice(0, 77) + "..." : value;
    return `string ${JSON.stringify(s)}`;
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return `${typeof value} ${String(value)}`;
  }
  if (typeof value === "bigint") return `bigint ${value}n`;
  if (typeof value === "function") return "a function";
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    return "length" in value
      ? `${name}(${(value as { length: number }).length})`
      : name;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === "object") {
    const name = (value as object).constructor?.name;
    return name && name !== "Object" ? article(name) : "an object";
  }
  return typeof value;
}

/** `name` with "a" or "an" before it, by its first letter's sound. */
function article(name: string): string {
  return `${/^[AEIOU]/i.test(name) ? "an" : "a"} ${name}`;
}
