// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `inspect <file>`: what a checkpoint holds, without printing tensor data.
 *
 * @module
 */

import type { DType, Tensor } from "../tensor/types.ts";
import { APPEND_INFO_NAMES } from "../tensor/append_info.ts";
import { type CliDecrypt, openInput } from "./_input.ts";
import { formatBytes, formatShape, table } from "./_util.ts";

/** One entry, as `inspect` lists it. */
export interface InspectEntry {
  /** The entry's name. */
  name: string;
  /** Its dtype, or `"str"` for a string. */
  dtype: DType | "str";
  /** Its shape. */
  shape: number[];
  /** Its size in bytes. */
  bytes: number;
  /** The dtype as the file spells it (`F32`, `F8_E4M3`, `Float32`, …). */
  fileDtype: string;
}

/** What `inspect` reports. */
export interface InspectResult {
  /** The file. */
  path: string;
  /** `"ckpt"` or `"safetensors"`. */
  format: string;
  /** The file's size in bytes. */
  fileBytes: number;
  /** The cipher, or `null` for a plain file. */
  cipher: string | null;
  /** Every entry, in file order (`null` when the file is encrypted and no key was given). */
  entries: InspectEntry[] | null;
  /** Total tensor bytes. */
  tensorBytes: number;
  /** Append info: string entries and the monitor's scalar records, with their values. */
  appendInfo: Record<string, number | string | boolean | number[]>;
}

/** A small value for display (a scalar, a short vector or a string). */
export function displayValue(
  value: Tensor | string,
): number | string | boolean | number[] {
  if (typeof value === "string") return value;
  const items = Array.from(
    value.data as ArrayLike<number | bigint>,
    (v) => typeof v === "bigint" ? Number(v) : v,
  );
  if (value.dtype === "Bool") {
    return items.length === 1 ? items[0] === 1 : items;
  }
  return items.length === 1 ? items[0]! : items;
}

/**
 * Lists a checkpoint's entries, append info and cipher.
 *
 * @param path The file.
 * @param decrypt The key and mode of an encrypted file.
 * @returns What the file holds.
 */
export async function inspect(
  path: string,
  decrypt: CliDecrypt,
): Promise<InspectResult> {
  const input = await openInput(path, decrypt);
  if (input.reader === null) {
    return {
      path,
      format: input.format,
      fileBytes: input.fileBytes,
      cipher: input.cipher,
      entries: null,
      tensorBytes: 0,
      appendInfo: {},
    };
  }
  const reader = input.reader;
  try {
    const entries = reader.entries.map((e) => ({
      name: e.name,
      dtype: e.dtype,
      shape: [...e.shape],
      bytes: e.byteLength,
      fileDtype: e.fileDtype,
    }));
    const appendInfo: InspectResult["appendInfo"] = {};
    for (const e of entries) {
      const small = e.dtype === "str" ||
        (APPEND_INFO_NAMES.includes(e.name) && e.bytes <= 64);
      if (small) appendInfo[e.name] = displayValue(await reader.read(e.name));
    }
    return {
      path,
      format: reader.format,
      fileBytes: input.fileBytes,
      cipher: input.cipher,
      entries,
      tensorBytes: entries.reduce((n, e) => n + e.bytes, 0),
      appendInfo,
    };
  } finally {
    await reader.close();
  }
}

/**
 * Renders an {@linkcode InspectResult} as plain text.
 *
 * @param r The result.
 * @returns Lines of text.
 */
export function formatInspect(r: InspectResult): string {
  const lines = [
    `file:    ${r.path}`,
    `format:  ${r.format}`,
    `size:    ${formatBytes(r.fileBytes)} (${r.fileBytes} bytes)`,
    `cipher:  ${r.cipher ?? "none"}`,
  ];
  if (r.entries === null) {
    lines.push("entries: unknown (encrypted; pass --dec-key-hex to list them)");
    return lines.join("\n");
  }
  lines.push(
    `entries: ${r.entries.length} (${formatBytes(r.tensorBytes)} of data)`,
    "",
    table([
      ["name", "dtype", "shape", "bytes"],
      ...r.entries.map((e) => [
        e.name,
        // 8-bit floats read as raw bytes: say what they are.
        e.fileDtype.startsWith("F8") ? `${e.fileDtype} (as UInt8)` : e.dtype,
        formatShape(e.shape),
        String(e.bytes),
      ]),
    ]),
  );
  const info = Object.entries(r.appendInfo);
  if (info.length > 0) {
    lines.push("", "append info:");
    for (const [k, v] of info) lines.push(`  ${k} = ${JSON.stringify(v)}`);
  }
  return lines.join("\n");
}
