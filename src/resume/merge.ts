// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Assembling whole tensors from the slices several ranks saved: the merge
 * step of `integratedSave`, also usable on its own, after the fact.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import {
  type MergeInput,
  type MergeSlicedResult,
  mergeSlices,
  type SliceLayout,
} from "./_merge.ts";

export type { MergeSlicedResult, SliceLayout };
import { checkSlice } from "../tensor/_slices.ts";
import type { CheckpointFormat } from "../checkpoint/checkpoint.ts";
import { type EncMode, validateCipher } from "../crypto/cipher.ts";
import { CorruptCheckpointError } from "../core/errors.ts";
import { readMeta } from "../checkpoint/_meta.ts";
import { checkPath } from "../store/_paths.ts";
import { storeFor } from "../store/resolve.ts";
import {
  basenamePath as basename,
  type CheckpointStore,
  dirnamePath as dirname,
  joinPath as join,
} from "../store/store.ts";

/** Options of {@linkcode mergeSlicedCheckpoints}. */
export interface MergeSlicedCheckpointsOptions {
  /**
   * The slice layout of each file (index = the file's index). When a
   * file's is not given, it comes from the `meta.json` beside the file,
   * which must list it (a monitor records the layout there); the file's
   * size and checksum are then checked against that entry first.
   *
   * @default {undefined}
   */
  readonly slices?: readonly (SliceLayout | undefined)[];
  /**
   * The format of the merged file.
   *
   * @default {"safetensors" when outPath ends in ".safetensors", else "ckpt"}
   */
  readonly format?: CheckpointFormat;
  /**
   * The key of encrypted input files (all files share one key and mode, as
   * a monitor's ranks do).
   *
   * @default {undefined}
   */
  readonly decKey?: Uint8Array;
  /**
   * The cipher for `decKey`.
   *
   * @default {"AES-GCM"}
   */
  readonly decMode?: EncMode;
  /**
   * Encrypts the merged file with this key, as {@linkcode saveCheckpoint}.
   *
   * @default {undefined}
   */
  readonly encKey?: Uint8Array;
  /**
   * The cipher for `encKey`.
   *
   * @default {"AES-GCM"}
   */
  readonly encMode?: EncMode;
  /**
   * Permission bits of the merged file.
   *
   * @default {0o400}
   */
  readonly fileMode?: number;
  /**
   * Where the input and merged files live. When omitted, the store is
   * chosen by each path (see {@linkcode storeFor}).
   *
   * @default {undefined}
   */
  readonly store?: CheckpointStore;
}

const ACTION = "Cannot merge sliced checkpoints";

/**
 * Assembles whole tensors from the slices that several ranks saved, and
 * writes them to one checkpoint, durably and atomically, as
 * {@linkcode saveCheckpoint} does. This is the merge a
 * {@linkcode CheckpointMonitor} runs with `integratedSave` once every rank
 * has committed a step; call it yourself to merge after the fact (for
 * example the files {@linkcode findResumeCheckpoint} returns).
 *
 * - A sliced parameter (one with a slice in some file's layout) becomes
 *   the whole tensor of its `globalShape`: each file's slice is copied to
 *   its place, one parameter at a time. Slices may overlap only with
 *   identical bytes (replicated slices); every element must be in some
 *   slice. All files must agree on its dtype and global shape; a file may
 *   lack it, or hold it whole (its shape is then the global shape).
 * - Every other entry (unsliced parameters, append info such as
 *   `epoch_num`) must be in every file with the same dtype and shape; it is
 *   taken from the first file.
 *
 * The files are read one entry at a time; the merged tensors are held in
 * memory until the file is written (the whole model once).
 *
 * @param files One checkpoint per rank, lowest rank first.
 * @param outPath The merged file; its folder must exist.
 * @param options Options.
 * @returns The path, size and checksum of the merged file, and the names
 *   assembled.
 * @throws {RangeError} When a file has no known layout, no file records a
 *   slice, or the slices do not fit together (dtype or global shape differs,
 *   a gap, an overlap with different values, an unsliced entry that
 *   differs or is missing); the message names the parameter.
 * @throws {CorruptCheckpointError} When a file differs from its `meta.json`
 *   entry or is malformed.
 * @throws {TypeError} When an argument has the wrong type.
 *
 * @example Merge two ranks' row slices of a 2×2 matrix
 * ```ts
 * import { loadCheckpoint, mergeSlicedCheckpoints, saveCheckpoint, type Tensor } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const files = [];
 *   const slices = [];
 *   for (const rank of [0, 1]) {
 *     const row = new Float32Array([rank * 2 + 1, rank * 2 + 2]);
 *     files.push((await saveCheckpoint(`${dir}/rank_${rank}.ckpt`, {
 *       w: { dtype: "Float32", shape: [1, 2], data: row },
 *     })).path);
 *     slices.push({ w: { globalShape: [2, 2], offset: [rank, 0] } });
 *   }
 *   await mergeSlicedCheckpoints(files, `${dir}/whole.ckpt`, { slices });
 *   const w = (await loadCheckpoint(`${dir}/whole.ckpt`)).get("w") as Tensor;
 *   deepEqual(w.shape, [2, 2]);
 *   deepEqual(Array.from(w.data as Float32Array), [1, 2, 3, 4]);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function mergeSlicedCheckpoints(
  files: readonly string[],
  outPath: string,
  options: MergeSlicedCheckpointsOptions = {},
): Promise<MergeSlicedResult> {
  if (!Array.isArray(files) || files.length === 0) {
    throw new TypeError(
      `${ACTION}: files must be a non-empty array of paths, received ${
        describe(files)
      }`,
    );
  }
  checkPath(outPath, "merge sliced checkpoints");
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `${ACTION}: options must be an object, received ${describe(options)}`,
    );
  }
  const given = options.slices;
  if (given !== undefined && !Array.isArray(given)) {
    throw new TypeError(
      `${ACTION}: option "slices" must be an array, received ${
        describe(given)
      }`,
    );
  }
  if (options.encKey !== undefined) {
    // Before anything is read: a wrong key must not cost a whole merge.
    validateCipher(options.encKey, options.encMode ?? "AES-GCM", {
      keyName: 'option "encKey"',
      modeName: 'option "encMode"',
    });
  }
  const inputs: MergeInput[] = [];
  for (const [i, file] of files.entries()) {
    checkPath(file, "merge sliced checkpoints");
    if (file === outPath) {
      throw new RangeError(
        `${ACTION}: the merged file would replace input "${file}"`,
      );
    }
    const layout = given?.[i];
    if (layout !== undefined) {
      inputs.push({ file, slices: checkLayout(layout, file) });
      continue;
    }
    const metaPath = join(dirname(file), "meta.json");
    const read = await readMeta(metaPath, storeFor(metaPath, options.store));
    if (read.kind === "invalid") {
      throw new CorruptCheckpointError(
        metaPath,
        `it is malformed (${read.reason}), so the slice layout of "${file}" is unknown`,
      );
    }
    const entry = read.kind === "ok"
      ? read.meta.files?.find((f) => f.name === basename(file))
      : undefined;
    if (entry === undefined) {
      throw new RangeError(
        `${ACTION}: the slice layout of "${file}" is unknown: ${metaPath} does not list it; pass it in option "slices"`,
      );
    }
    inputs.push({
      file,
      slices: entry.slices ?? {},
      recorded: { bytes: entry.bytes, checksum: entry.checksum },
    });
  }
  const { decKey, decMode, encKey, encMode, fileMode } = options;
  const format = options.format ??
    (outPath.endsWith(".safetensors") ? "safetensors" : "ckpt");
  return await mergeSlices(inputs, outPath, {
    read: {
      ...(decKey !== undefined && { decKey }),
      ...(decMode !== undefined && { decMode }),
      ...(options.store !== undefined && { store: options.store }),
    },
    write: {
      format,
      ...(options.store !== undefined && { store: options.store }),
      ...(encKey !== undefined && { encKey }),
      ...(encMode !== undefined && { encMode }),
      ...(fileMode !== undefined && { fileMode }),
    },
  });
}

function checkLayout(layout: unknown, file: string): SliceLayout {
  if (typeof layout !== "object" || layout === null || Array.isArray(layout)) {
    throw new TypeError(
      `${ACTION}: the slice layout of "${file}" must be a record of name to slice, received ${
        describe(layout)
      }`,
    );
  }
  for (const [name, slice] of Object.entries(layout)) {
    checkSlice(slice, null, `${JSON.stringify(name)} in "${file}"`);
  }
  return layout as SliceLayout;
}
