// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: saveCheckpoint (re-exported by checkpoint.ts).

import type { ByteSink } from "../core/io.ts";
import { createEncryptingSink } from "../crypto/framing.ts";
import {
  type Network,
  networkParameters,
  type Tensor,
} from "../tensor/types.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { checkInteger } from "../core/_validate.ts";
import type { EncodeEntry } from "../format/entry.ts";
import { DEFAULT_SPLIT_SIZE, encodeCkpt } from "../format/ckpt.ts";
import {
  encodeSafetensors,
  SAFETENSORS_CHECK_KEY,
} from "../format/safetensors.ts";
import { checkAppendValue } from "../tensor/_append.ts";
import { storeFor } from "../store/resolve.ts";
import { checkFileMode, checkPath } from "../store/_paths.ts";

import {
  type AppendInfo,
  checkCipherOptions,
  checkFormat,
  checkOptions,
  type CheckpointFormat,
  type SaveCheckpointOptions,
  type SaveResult,
} from "./_common.ts";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot save checkpoint: ${what} must be a string, received ${
        describe(name)
      }`,
    );
  }
  if (name.length === 0 || name.includes("\0")) {
    throw new RangeError(
      `Cannot save checkpoint: ${what} must be non-empty and without NUL, received ${
        JSON.stringify(name)
      }`,
    );
  }
  return name;
}

function int64Scalar(value: bigint, key: string): Tensor {
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new RangeError(
      `Cannot save checkpoint: appendInfo "${key}" does not fit in Int64, received ${value}`,
    );
  }
  return { dtype: "Int64", shape: [], data: new BigInt64Array([value]) };
}

/** Converts one append-info value the way MindSpore does. */
function appendValue(
  key: string,
  raw: unknown,
  format: CheckpointFormat,
): Tensor | string {
  const value = checkAppendValue(
    raw,
    "Cannot save checkpoint",
    `appendInfo "${key}"`,
  );
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) {
        throw new RangeError(
          `Cannot save checkpoint: appendInfo "${key}" holds a lone surrogate, received ${
            describe(value)
          }`,
        );
      }
      if (format === "ckpt" && value.endsWith("\0")) {
        throw new RangeError(
          `Cannot save checkpoint: appendInfo "${key}" ends with NUL, which .ckpt strings (numpy unicode) drop, received ${
            describe(value)
          }`,
        );
      }
      return value;
    case "bigint":
      return int64Scalar(value, key);
    case "number":
      if (Number.isInteger(value)) {
        if (Math.abs(value) >= 2 ** 63) {
          throw new RangeError(
            `Cannot save checkpoint: appendInfo "${key}" is an integer outside Int64, received ${value}`,
          );
        }
        return int64Scalar(BigInt(value), key);
      }
      return { dtype: "Float32", shape: [], data: new Float32Array([value]) };
    case "boolean":
      return {
        dtype: "Bool",
        shape: [],
        data: new Uint8Array([value ? 1 : 0]),
      };
    default:
      return value;
  }
}

/**
 * The entries of a save, in file order: the network's parameters, then the
 * append info (a key equal to an earlier name replaces its value in place).
 */
function collectEntries(
  network: Network,
  appendInfo: AppendInfo | undefined,
  format: CheckpointFormat,
  check: boolean,
): EncodeEntry[] {
  const values = new Map<string, Tensor | string>();
  for (const p of networkParameters(network)) {
    values.set(p.name, { dtype: p.dtype, shape: p.shape, data: p.data });
  }
  if (appendInfo !== undefined) {
    let pairs: Iterable<[unknown, unknown]>;
    if (appendInfo instanceof Map) pairs = appendInfo;
    else if (
      typeof appendInfo === "object" && appendInfo !== null &&
      !Array.isArray(appendInfo)
    ) {
      pairs = Object.entries(appendInfo);
    } else {
      throw new TypeError(
        `Cannot save checkpoint: appendInfo must be a Map or a record, received ${
          describe(appendInfo)
        }`,
      );
    }
    for (const [key, value] of pairs) {
      const name = checkName(key, "an appendInfo key");
      values.set(name, appendValue(name, value, format));
    }
  }
  if (format === "safetensors" && values.has("__metadata__")) {
    throw new RangeError(
      `Cannot save checkpoint as safetensors: the name "__metadata__" is reserved`,
    );
  }
  if (
    format === "safetensors" && check &&
    typeof values.get(SAFETENSORS_CHECK_KEY) === "string"
  ) {
    throw new RangeError(
      `Cannot save checkpoint as safetensors: the string name "${SAFETENSORS_CHECK_KEY}" is reserved for the file's check`,
    );
  }
  for (const name of values.keys()) {
    if (!name.isWellFormed()) {
      throw new RangeError(
        `Cannot save checkpoint: name ${
          JSON.stringify(name)
        } holds a lone surrogate, which UTF-8 cannot store`,
      );
    }
  }
  return Array.from(values, ([name, value]) => ({ name, value }));
}

/**
 * Saves a network's parameters (and append info) to a checkpoint file,
 * durably and atomically (see {@linkcode atomicWrite}): the bytes stream
 * from the tensors' typed arrays to a temporary file in bounded pieces,
 * which is fsynced and renamed over `path`. In `.ckpt` the bytes are those
 * MindSpore writes for the same values, with `crc_check=True`'s trailer
 * and a 2-byte mark before them (unless `check: false`: then exactly
 * MindSpore's bytes).
 *
 * @param path The file to write; its folder must exist.
 * @param network The parameters: an iterable of parameters, a `Map` or a
 *   record of name to tensor.
 * @param options Options.
 * @returns The path, size and checksum of the file.
 * @throws {TypeError} When an argument has the wrong type (the message
 *   names it and the value).
 * @throws {RangeError} When a value is out of range: an empty name or one
 *   with NUL, a shape that disagrees with the data, an unknown format, an
 *   unknown `encMode` or an `encKey` of the wrong length for it.
 *
 * @example Save two tensors and an epoch number
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const saved = await saveCheckpoint(`${dir}/net.ckpt`, {
 *     "dense.weight": { dtype: "Float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 *     "dense.bias": { dtype: "Float32", shape: [2], data: new Float32Array([0, 1]) },
 *   }, { appendInfo: { epoch_num: 3, note: "first run" } });
 *   const loaded = await loadCheckpoint(saved.path);
 *   assertEquals([...loaded.keys()], ["dense.weight", "dense.bias", "epoch_num", "note"]);
 *   assertEquals(loaded.get("note"), "first run");
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @example Encrypt with AES-256-GCM, as MindSpore's `enc_key` does
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "@ckpt/monitor";
 * import { deepEqual as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const key = crypto.getRandomValues(new Uint8Array(32));
 *   const w = { dtype: "Float32", shape: [2], data: new Float32Array([1, 2]) } as const;
 *   await saveCheckpoint(`${dir}/secret.ckpt`, { w }, { encKey: key, encMode: "AES-GCM" });
 *   const m = await loadCheckpoint(`${dir}/secret.ckpt`, { decKey: key, decMode: "AES-GCM" });
 *   assertEquals(m.get("w"), w);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function saveCheckpoint(
  path: string,
  network: Network,
  options: SaveCheckpointOptions = {},
): Promise<SaveResult> {
  checkPath(path, "save checkpoint");
  checkOptions(options, "save checkpoint");
  const format = checkFormat(options.format ?? "ckpt", "save checkpoint");
  const splitSize = checkInteger(
    options.splitSize ?? DEFAULT_SPLIT_SIZE,
    "splitSize",
    1,
    "Cannot save checkpoint",
  );
  const fileMode = checkFileMode(options.fileMode ?? 0o400, "save checkpoint");
  const cipher = checkCipherOptions(
    options.encKey,
    options.encMode,
    "encKey",
    "encMode",
    "save checkpoint",
  );
  const check = options.check ?? true;
  if (typeof check !== "boolean") {
    throw new TypeError(
      `Cannot save checkpoint: check must be a boolean, received ${
        describe(check)
      }`,
    );
  }
  const entries = collectEntries(network, options.appendInfo, format, check);
  const encode = (sink: ByteSink): Promise<void> =>
    format === "ckpt"
      ? encodeCkpt(sink, entries, { splitSize, check })
      : encodeSafetensors(sink, entries, { check });
  // The one place the sink is chosen: an encrypting sink wraps `fileSink`.
  // The checksum stays over the bytes on disk (the ciphertext).
  const store = storeFor(path, options.store);
  const written = await store.write(path, async (fileSink) => {
    if (cipher === null) return await encode(fileSink);
    const sink = createEncryptingSink(fileSink, cipher);
    try {
      await encode(sink);
      await sink.finish();
    } catch (error) {
      sink.abort();
      throw error;
    } finally {
      cipher.key.fill(0);
    }
  }, {
    fileMode,
    ...(options.overwrite === undefined
      ? {}
      : { overwrite: options.overwrite }),
    ...(options.onWritten === undefined
      ? {}
      : { onWritten: options.onWritten }),
  });
  return { path, bytes: written.bytes, checksum: written.checksum };
}

/** Works out the format from the extension, else the first bytes. */
