// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `convert <in> <out>`: rewrites a checkpoint as `.ckpt` or safetensors,
 * encrypting, decrypting or changing its cipher on the way. The output is
 * committed atomically (as every checkpoint the library saves), so a
 * failure leaves nothing behind.
 *
 * @module
 */

import { basename, extname, resolve } from "node:path";
import type { AppendValue, Parameter } from "../tensor/types.ts";
import { saveCheckpoint } from "../checkpoint/checkpoint.ts";
import type { EncMode } from "../crypto/cipher.ts";
import { type CliDecrypt, openInput } from "./_input.ts";
import {
  type CliIO,
  formatBytes,
  InputError,
  Progress,
  statOrNull,
  UsageError,
} from "./_util.ts";

/** Options of {@linkcode convert}. */
export interface ConvertOptions extends CliDecrypt {
  /** Output format (else from the output's extension). */
  format?: "ckpt" | "safetensors";
  /** Key to encrypt the output with. */
  encKey?: Uint8Array;
  /** Cipher of the output. @default {"AES-GCM"} */
  encMode?: EncMode;
  /** Replace an existing output file. */
  force?: boolean;
}

/** What `convert` wrote. */
export interface ConvertResult {
  /** The input file. */
  input: string;
  /** The output file. */
  output: string;
  /** The output format. */
  format: "ckpt" | "safetensors";
  /** The output's cipher, or `null`. */
  cipher: EncMode | null;
  /** Entries written. */
  entries: number;
  /** The output's size. */
  bytes: number;
  /** The output's checksum. */
  checksum: string;
}

/**
 * Converts a checkpoint file.
 *
 * @param input The file to read.
 * @param output The file to write.
 * @param options Format, keys and modes, overwrite.
 * @param io Where progress goes (on a terminal only).
 * @returns What was written.
 */
export async function convert(
  input: string,
  output: string,
  options: ConvertOptions,
  io: CliIO,
): Promise<ConvertResult> {
  const ext = extname(output).slice(1);
  const format = options.format ??
    (ext === "ckpt" || ext === "safetensors" ? ext : undefined);
  if (format === undefined) {
    throw new UsageError(
      `cannot tell the output format from ${
        JSON.stringify(output)
      }: name it .ckpt or .safetensors, or pass --format`,
    );
  }
  if (options.encKey !== undefined && format === "safetensors") {
    throw new InputError(
      "safetensors files cannot be encrypted (MindSpore's framing is for .ckpt only); write a .ckpt",
    );
  }
  if (resolve(input) === resolve(output)) {
    throw new InputError("the output must be another file than the input");
  }
  const existing = await statOrNull(output);
  if (existing?.kind === "directory") {
    throw new InputError(
      `${JSON.stringify(output)} is a folder, not a file name`,
    );
  }
  if (existing !== null && !options.force) {
    throw new InputError(
      `${JSON.stringify(output)} exists; pass --force to replace it`,
    );
  }

  const { reader } = await openInput(input, options, true);
  // safetensors' 8-bit floats read as raw UInt8: writing them back would
  // silently relabel them.
  const f8 = reader!.entries.find((e) => e.fileDtype.startsWith("F8"));
  if (f8 !== undefined) {
    await reader!.close();
    throw new InputError(
      `${
        JSON.stringify(f8.name)
      } is ${f8.fileDtype}, which a converted file would store as UInt8; not converting`,
    );
  }
  const params: Parameter[] = [];
  // Strings can only travel as append info; every tensor (the monitor's
  // epoch_num, step_num, … included) goes as it is, keeping dtype and order.
  const appendInfo = new Map<string, AppendValue>();
  try {
    const total = reader!.entries.reduce((n, e) => n + e.byteLength, 0);
    const progress = new Progress(io, `reading ${basename(input)}`, total);
    let done = 0;
    try {
      for (const e of reader!.entries) {
        const value = await reader!.read(e.name);
        if (typeof value === "string") {
          appendInfo.set(e.name, value);
        } else {
          params.push({ name: e.name, ...value });
        }
        done += e.byteLength;
        progress.update(done);
      }
    } finally {
      progress.done();
    }
  } finally {
    await reader!.close();
  }

  const encMode = options.encMode ?? "AES-GCM";
  // saveCheckpoint commits atomically: a failure leaves nothing at `output`.
  const saved = await saveCheckpoint(output, params, {
    format,
    ...(appendInfo.size > 0 ? { appendInfo } : {}),
    ...(options.encKey === undefined
      ? {}
      : { encKey: options.encKey, encMode }),
  });
  return {
    input,
    output,
    format,
    cipher: options.encKey === undefined ? null : encMode,
    entries: params.length + appendInfo.size,
    bytes: saved.bytes,
    checksum: saved.checksum,
  };
}

/**
 * Renders a {@linkcode ConvertResult} as plain text.
 *
 * @param r The result.
 * @returns Lines of text.
 */
export function formatConvert(r: ConvertResult): string {
  return `wrote ${r.output}: ${r.format}, ${
    r.cipher ?? "not encrypted"
  }, ${r.entries} entries, ${formatBytes(r.bytes)} (${r.checksum})`;
}
