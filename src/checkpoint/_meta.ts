// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: reading and checking a monitor's `meta.json` without trusting it.

import type { CheckpointStore } from "../store/store.ts";
import { isNotFound } from "../store/store.ts";
import { storeFor } from "../store/resolve.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { checkSlice } from "../tensor/_slices.ts";
import type { ParameterSlice } from "../tensor/types.ts";
import type { CheckpointMetaFile, CheckpointMetaSource } from "./layout.ts";

/** One committed file as `meta.json` lists it (what the monitor writes). */
export type MetaFileEntry = CheckpointMetaFile;

/** The fields of `meta.json` that resume and verification read. */
export interface ParsedMeta {
  readonly last_epoch: number;
  readonly last_step: number;
  readonly last_ckpt_file: string;
  /** The cipher (`null` for plain files), when the file says. */
  readonly enc_mode: string | null;
  /** The resolved prefix, when the file says. */
  readonly prefix: string | null;
  /** The rank, when the file says. */
  readonly rank: number | null;
  /**
   * The committed files with size and checksum; `null` for a MindFormers
   * `meta.json` that has only the three original keys.
   */
  readonly files: readonly MetaFileEntry[] | null;
}

/** The outcome of reading a `meta.json`. */
export type MetaRead =
  | { readonly kind: "missing" }
  | { readonly kind: "invalid"; readonly reason: string }
  | { readonly kind: "ok"; readonly meta: ParsedMeta };

/** A plain file name: no folder parts, not `.`/`..`, no NUL. */
export function isPlainName(name: unknown): name is string {
  return typeof name === "string" && name.length > 0 && name !== "." &&
    name !== ".." && !/[/\\\0]/.test(name);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Checks the parsed JSON of a `meta.json`.
 *
 * @returns The meta, or why it is not acceptable.
 */
export function checkMeta(value: unknown): MetaRead {
  const bad = (reason: string): MetaRead => ({ kind: "invalid", reason });
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return bad(`expected a JSON object, found ${describe(value)}`);
  }
  const m = value as Record<string, unknown>;
  for (const key of ["last_epoch", "last_step"]) {
    if (!isCount(m[key])) {
      return bad(
        `"${key}" must be a non-negative integer, found ${describe(m[key])}`,
      );
    }
  }
  if (!isPlainName(m.last_ckpt_file)) {
    return bad(
      `"last_ckpt_file" must be a file name without folders, found ${
        describe(m.last_ckpt_file)
      }`,
    );
  }
  let files: MetaFileEntry[] | null = null;
  if (m.files !== undefined) {
    if (!Array.isArray(m.files)) {
      return bad(`"files" must be an array, found ${describe(m.files)}`);
    }
    files = [];
    for (const [i, f] of m.files.entries()) {
      if (typeof f !== "object" || f === null) {
        return bad(`"files[${i}]" must be an object, found ${describe(f)}`);
      }
      const e = f as Record<string, unknown>;
      if (!isPlainName(e.name)) {
        return bad(
          `"files[${i}].name" must be a file name without folders, found ${
            describe(e.name)
          }`,
        );
      }
      for (const key of ["bytes", "epoch", "step", "global_step"]) {
        if (!isCount(e[key])) {
          return bad(
            `"files[${i}].${key}" must be a non-negative integer, found ${
              describe(e[key])
            }`,
          );
        }
      }
      if (typeof e.checksum !== "string" || !/^[a-z0-9]+:/.test(e.checksum)) {
        return bad(
          `"files[${i}].checksum" must be "<algorithm>:<hex>", found ${
            describe(e.checksum)
          }`,
        );
      }
      const extra = checkExtras(e, `files[${i}]`);
      if (typeof extra === "string") return bad(extra);
      files.push({
        name: e.name,
        bytes: e.bytes as number,
        checksum: e.checksum,
        epoch: e.epoch as number,
        step: e.step as number,
        global_step: e.global_step as number,
        ...extra,
      });
    }
  }
  const enc = m.enc_mode;
  if (enc !== undefined && enc !== null && typeof enc !== "string") {
    return bad(`"enc_mode" must be a string or null, found ${describe(enc)}`);
  }
  if (m.rank !== undefined && !isCount(m.rank)) {
    return bad(
      `"rank" must be a non-negative integer, found ${describe(m.rank)}`,
    );
  }
  if (m.prefix !== undefined && typeof m.prefix !== "string") {
    return bad(`"prefix" must be a string, found ${describe(m.prefix)}`);
  }
  return {
    kind: "ok",
    meta: {
      last_epoch: m.last_epoch as number,
      last_step: m.last_step as number,
      last_ckpt_file: m.last_ckpt_file,
      enc_mode: typeof enc === "string" ? enc : null,
      prefix: typeof m.prefix === "string" ? m.prefix : null,
      rank: isCount(m.rank) ? m.rank : null,
      files,
    },
  };
}

type Extras = Pick<MetaFileEntry, "rank_size" | "slices" | "sources" | "time">;

/**
 * Checks the optional fields of a file entry (`rank_size`, `slices`,
 * `sources`, `time`).
 *
 * @returns The fields present, or why one is not acceptable.
 */
function checkExtras(e: Record<string, unknown>, at: string): Extras | string {
  const out: { -readonly [K in keyof Extras]: Extras[K] } = {};
  if (e.rank_size !== undefined) {
    if (
      typeof e.rank_size !== "number" || !Number.isSafeInteger(e.rank_size) ||
      e.rank_size < 1
    ) {
      return `"${at}.rank_size" must be a positive integer, found ${
        describe(e.rank_size)
      }`;
    }
    out.rank_size = e.rank_size;
  }
  if (e.slices !== undefined) {
    if (
      typeof e.slices !== "object" || e.slices === null ||
      Array.isArray(e.slices)
    ) {
      return `"${at}.slices" must be an object, found ${describe(e.slices)}`;
    }
    const slices: Record<string, ParameterSlice> = {};
    for (const [name, value] of Object.entries(e.slices)) {
      try {
        Object.defineProperty(slices, name, {
          value: checkSlice(value, null, `"${name}"`),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } catch (error) {
        return `"${at}.slices" is malformed: ${(error as Error).message}`;
      }
    }
    out.slices = slices;
  }
  if (e.sources !== undefined) {
    if (!Array.isArray(e.sources)) {
      return `"${at}.sources" must be an array, found ${describe(e.sources)}`;
    }
    const sources: CheckpointMetaSource[] = [];
    for (const [j, src] of e.sources.entries()) {
      const r = (src ?? {}) as Record<string, unknown>;
      if (!isPlainName(r.name) || typeof r.checksum !== "string") {
        return `"${at}.sources[${j}]" must be { name, checksum }, found ${
          describe(src)
        }`;
      }
      sources.push({ name: r.name, checksum: r.checksum });
    }
    out.sources = sources;
  }
  if (e.time !== undefined) {
    if (typeof e.time !== "number" || !Number.isFinite(e.time)) {
      return `"${at}.time" must be a number, found ${describe(e.time)}`;
    }
    out.time = e.time;
  }
  return out;
}

/**
 * The largest `meta.json` read: 16 MiB, room for ~50,000 file entries. A
 * larger one (or a link to `/dev/zero`) is "invalid" at once, never read.
 */
export const MAX_META_BYTES = 16 * 1024 * 1024;

/**
 * Reads and checks a `meta.json`. A missing file is `"missing"`; one that is
 * not JSON, lacks a field, is not a regular file or is over
 * {@linkcode MAX_META_BYTES} is `"invalid"` with the reason. Other I/O
 * errors (permissions) are thrown.
 */
export async function readMeta(
  path: string,
  store: CheckpointStore = storeFor(path),
): Promise<MetaRead> {
  let text: string;
  try {
    const info = await store.stat(path);
    if (info === null) return { kind: "missing" };
    if (info.kind !== "file") {
      return {
        kind: "invalid",
        reason: info.kind === "directory"
          ? "it is a folder"
          : "it is not a regular file",
      };
    }
    if (info.size > MAX_META_BYTES) {
      return {
        kind: "invalid",
        reason:
          `it holds ${info.size} bytes, more than the ${MAX_META_BYTES} a meta.json may have`,
      };
    }
    text = new TextDecoder().decode(
      await store.readFile(path, MAX_META_BYTES),
    );
  } catch (error) {
    if (isNotFound(error)) return { kind: "missing" };
    if (error instanceof RangeError) {
      return { kind: "invalid", reason: error.message };
    }
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      kind: "invalid",
      reason: `it is not valid JSON (${(error as Error).message})`,
    };
  }
  return checkMeta(value);
}
