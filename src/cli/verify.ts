// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `verify <file>`: reads every entry (so every length, dtype and, for
 * encrypted files, every authentication tag is checked) and compares the
 * file's size and checksum with the `meta.json` beside it, when there is one.
 *
 * @module
 */

import { CorruptCheckpointError } from "../core/errors.ts";
import { readMeta } from "../checkpoint/_meta.ts";
import { compareRecorded } from "../checkpoint/_recorded.ts";
import { storeFor } from "../store/resolve.ts";
import {
  basenamePath as basename,
  dirnamePath as dirname,
  joinPath as join,
} from "../store/store.ts";
import { type CliDecrypt, fileSize, openInput } from "./_input.ts";
import { type CliIO, formatBytes, Progress } from "./_util.ts";

/** What `verify` found. */
export interface VerifyResult {
  /** The file. */
  path: string;
  /** Whether every check passed. */
  ok: boolean;
  /** `"ckpt"` or `"safetensors"`, or `"unknown"` when it does not parse. */
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
      /** Why `meta.json` is malformed (a failure, as in `verifyCheckpoint`). */
      malformed?: string;
      /** The size and checksum `meta.json` records. */
      expected?: { bytes: number; checksum: string };
      /** The file's size and checksum, when they match the record. */
      actual?: { bytes: number; checksum: string };
    }
    | null;
  /** What is wrong, one sentence each. */
  problems: string[];
  /** Remarks that are not failures. */
  notes: string[];
}

/**
 * Compares the file with the `meta.json` beside it, as
 * {@linkcode verifyCheckpoint} does: a malformed `meta.json` is a problem;
 * a missing one, or one that does not list the file, only a note.
 */
async function _compareMeta(
  path: string,
  bytes: number,
  problems: string[],
  notes: string[],
): Promise<VerifyResult["meta"]> {
  const metaPath = join(dirname(path), "meta.json");
  const store = storeFor(metaPath);
  const read = await readMeta(metaPath, store);
  if (read.kind === "missing") return null;
  if (read.kind === "invalid") {
    problems.push(`meta.json beside the file is malformed: ${read.reason}`);
    return { listed: false, malformed: read.reason };
  }
  const name = basename(path);
  const rec = read.meta.files?.find((f) => f.name === name);
  if (rec === undefined) {
    notes.push(`meta.json beside the file does not list ${name}`);
    return { listed: false };
  }
  const expected = { bytes: rec.bytes, checksum: rec.checksum };
  const mismatch = await compareRecorded(
    store,
    path,
    bytes,
    expected,
    "meta.json",
  );
  if (mismatch !== null) {
    problems.push(
      mismatch.reason.replace(/^it has /, "size is ").replace(/^its /, ""),
    );
    return { listed: true, expected };
  }
  return { listed: true, expected, actual: expected };
}

/**
 * Verifies a checkpoint file: the `meta.json` comparison (whether or not
 * the file parses), then every entry.
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
  const fileBytes = await fileSize(path);
  const meta = await _compareMeta(path, fileBytes, problems, notes);
  const result = (
    format: string,
    cipher: string | null,
    entries: number,
    dataBytes: number,
  ): VerifyResult => ({
    path,
    ok: problems.length === 0,
    format,
    cipher,
    entries,
    dataBytes,
    meta,
    problems,
    notes,
  });
  const input = await openInput(path, decrypt, true).catch((e) => {
    if (e instanceof CorruptCheckpointError) return e;
    throw e;
  });
  if (input instanceof CorruptCheckpointError) {
    problems.push(input.reason);
    return result("unknown", null, 0, 0);
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
  return result(input.format, input.cipher, entries, dataBytes);
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
  if (r.meta === null) {
    lines.push("  meta.json: none beside the file");
  } else if (r.meta.malformed !== undefined) {
    lines.push("  meta.json: MALFORMED");
  } else if (r.meta.listed) {
    lines.push(
      `  meta.json: ${
        r.meta.actual === undefined ? "MISMATCH" : "size and checksum match"
      } (records ${r.meta.expected!.checksum})`,
    );
  }
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}
