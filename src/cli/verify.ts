// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `verify <file>`: reads every entry (so every length, dtype and, for
 * encrypted files, every authentication tag is checked) and compares the
 * file's size and checksum with the `meta.json` beside it, when there is one.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { CorruptCheckpointError } from "../core/errors.ts";
import { checksumFile } from "../checkpoint/checkpoint.ts";
import type { CliIO } from "./_util.ts";
import { type CliDecrypt, openInput } from "./_input.ts";
import { formatBytes, Progress } from "./_util.ts";

/** What `verify` found. */
export interface VerifyResult {
  /** The file. */
  path: string;
  /** Whether every check passed. */
  ok: boolean;
  /** `"ckpt"` or `"safetensors"`. */
  format: string;
  /** The cipher, or `null`. */
  cipher: string | null;
  /** Entries read. */
  entries: number;
  /** Bytes of entry data read. */
  dataBytes: number;
  /** The comparison with `meta.json` beside the file, or `null` when there is none. */
  meta:
    | {
      /** Whether `meta.json` lists this file. */
      listed: boolean;
      /** The size and checksum `meta.json` records. */
      expected?: { bytes: number; checksum: string };
      /** The file's size and checksum. */
      actual?: { bytes: number; checksum: string };
    }
    | null;
  /** What is wrong, one sentence each. */
  problems: string[];
  /** Remarks that are not failures. */
  notes: string[];
}

async function _meta(dir: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    if (e instanceof SyntaxError) return null;
    throw e;
  }
}

/**
 * Verifies a checkpoint file.
 *
 * @param path The file.
 * @param decrypt The key and mode of an encrypted file.
 * @param io Where progress goes (on a terminal only).
 * @returns What was checked and what is wrong.
 */
export async function verify(
  path: string,
  decrypt: CliDecrypt,
  io: CliIO,
): Promise<VerifyResult> {
  const problems: string[] = [];
  const notes: string[] = [];
  const input = await openInput(path, decrypt, true).catch((e) => {
    if (e instanceof CorruptCheckpointError) return e;
    throw e;
  });
  if (input instanceof CorruptCheckpointError) {
    problems.push(input.reason);
    return {
      path,
      ok: false,
      format: "unknown",
      cipher: null,
      entries: 0,
      dataBytes: 0,
      meta: null,
      problems,
      notes,
    };
  }
  const reader = input.reader!;
  let entries = 0;
  let dataBytes = 0;
  const total = reader.entries.reduce((n, e) => n + e.byteLength, 0);
  const progress = new Progress(io, `verifying ${basename(path)}`, total);
  try {
    for (const e of reader.entries) {
      await reader.read(e.name);
      entries++;
      dataBytes += e.byteLength;
      progress.update(dataBytes);
    }
  } catch (e) {
    if (!(e instanceof CorruptCheckpointError)) throw e;
    problems.push(e.reason);
  } finally {
    progress.done();
    await reader.close();
  }

  let meta: VerifyResult["meta"] = null;
  const doc = await _meta(dirname(path));
  if (doc === null) {
    notes.push("meta.json beside the file is not valid JSON; not compared");
  } else if (doc !== undefined) {
    const files = (doc as { files?: unknown }).files;
    const name = basename(path);
    const rec = Array.isArray(files)
      ? files.find((f) => (f as { name?: unknown })?.name === name) as
        | { bytes?: unknown; checksum?: unknown }
        | undefined
      : undefined;
    if (rec === undefined) {
      meta = { listed: false };
      notes.push(`meta.json beside the file does not list ${name}`);
    } else {
      const actual = {
        bytes: input.fileBytes,
        checksum: await checksumFile(path),
      };
      const expected = {
        bytes: Number(rec.bytes),
        checksum: String(rec.checksum),
      };
      meta = { listed: true, expected, actual };
      if (actual.bytes !== expected.bytes) {
        problems.push(
          `size is ${actual.bytes} bytes, meta.json records ${expected.bytes}`,
        );
      }
      if (actual.checksum !== expected.checksum) {
        problems.push(
          `checksum is ${actual.checksum}, meta.json records ${expected.checksum}`,
        );
      }
    }
  }
  return {
    path,
    ok: problems.length === 0,
    format: input.format,
    cipher: input.cipher,
    entries,
    dataBytes,
    meta,
    problems,
    notes,
  };
}

/**
 * Renders a {@linkcode VerifyResult} as plain text.
 *
 * @param r The result.
 * @returns Lines of text.
 */
export function formatVerify(r: VerifyResult): string {
  const lines = [
    `${r.ok ? "OK" : "FAILED"}  ${r.path}`,
    `  read ${r.entries} entries, ${formatBytes(r.dataBytes)} (${r.format}, ${
      r.cipher ?? "not encrypted"
    })`,
  ];
  if (r.meta?.listed) {
    const same = r.meta.actual!.checksum === r.meta.expected!.checksum &&
      r.meta.actual!.bytes === r.meta.expected!.bytes;
    lines.push(
      `  meta.json: ${same ? "size and checksum match" : "MISMATCH"} (${
        r.meta.actual!.checksum
      })`,
    );
  } else if (r.meta === null) {
    lines.push("  meta.json: none beside the file");
  }
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}
