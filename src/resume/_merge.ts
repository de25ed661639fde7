// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the merge of `mergeSlicedCheckpoints` and of a monitor's
// `integratedSave`, on files whose slice layouts are known.

import { checkSlice, SliceAssembler } from "../tensor/_slices.ts";
import {
  type CheckpointEntry,
  type CheckpointFormat,
  type CheckpointReader,
  openCheckpoint,
  saveCheckpoint,
  type SaveResult,
} from "../checkpoint/checkpoint.ts";
import type { EncMode } from "../crypto/cipher.ts";
import { CorruptCheckpointError } from "../core/errors.ts";
import { storeFor } from "../store/resolve.ts";
import type { CheckpointStore } from "../store/store.ts";
import { checkRecorded } from "../checkpoint/_recorded.ts";
import {
  DTYPE_SIZE,
  type ParameterSlice,
  type Tensor,
  typedArrayFromBytes,
} from "../tensor/types.ts";
import { formatShape, sameShape } from "../tensor/_shape.ts";

/** One rank's file, with its layout and, when known, what it must match. */
export interface MergeInput {
  readonly file: string;
  readonly slices: SliceLayout;
  readonly recorded?: { readonly bytes: number; readonly checksum: string };
}

/** How to read the inputs and write the merged file. */
/** The slice layout of one rank's file: parameter name to slice. */
export type SliceLayout = Readonly<Record<string, ParameterSlice>>;

/** What `mergeSlicedCheckpoints` wrote. */
export interface MergeSlicedResult extends SaveResult {
  /** The parameters assembled from slices, in file order. */
  readonly merged: readonly string[];
}

export interface MergeOptions {
  readonly read: {
    readonly decKey?: Uint8Array;
    readonly decMode?: EncMode;
    readonly store?: CheckpointStore;
  };
  readonly write: {
    readonly store?: CheckpointStore;
    readonly format: CheckpointFormat;
    readonly encKey?: Uint8Array;
    readonly encMode?: EncMode;
    readonly fileMode?: number;
  };
}

const ACTION = "Cannot merge sliced checkpoints";

/** Where each entry name is, per file (undefined: the file lacks it). */
interface Held {
  readonly entries: (CheckpointEntry | undefined)[];
  readonly slices: (ParameterSlice | undefined)[];
}

/**
 * The merge itself, on files whose layouts are known. Opens every file
 * first (so a file deleted meanwhile, e.g. by another rank's retention,
 * stays readable), checks each against what its `meta.json` recorded,
 * then assembles and writes.
 */
export async function mergeSlices(
  inputs: readonly MergeInput[],
  outPath: string,
  options: MergeOptions,
): Promise<MergeSlicedResult> {
  const readers: CheckpointReader[] = [];
  try {
    for (const input of inputs) {
      readers.push(await openCheckpoint(input.file, options.read));
    }
    for (const input of inputs) {
      if (input.recorded === undefined) continue;
      const mismatch = await checkRecorded(
        storeFor(input.file, options.read.store),
        input.file,
        input.recorded,
      );
      if (mismatch !== null) {
        throw new CorruptCheckpointError(input.file, mismatch.reason);
      }
    }

    // Every name, in the order the files list them (the first file first).
    const held = new Map<string, Held>();
    for (const [r, reader] of readers.entries()) {
      for (const e of reader.entries) {
        let h = held.get(e.name);
        if (h === undefined) {
          h = { entries: [], slices: [] };
          held.set(e.name, h);
        }
        h.entries[r] = e;
      }
      for (const [name, slice] of Object.entries(inputs[r]!.slices)) {
        const h = held.get(name);
        if (h?.entries[r] === undefined) {
          throw new RangeError(
            `${ACTION}: the layout of "${inputs[r]!.file}" records a slice of ${
              JSON.stringify(name)
            }, which the file lacks`,
          );
        }
        h.slices[r] = checkSlice(
          slice,
          h.entries[r].shape,
          `${JSON.stringify(name)} in "${inputs[r]!.file}"`,
        );
      }
    }
    if (![...held.values()].some((h) => h.slices.some((s) => s))) {
      throw new RangeError(
        `${ACTION}: none of the ${inputs.length} files records a sliced parameter, so there is nothing to merge`,
      );
    }

    const values = new Map<string, Tensor | string>();
    const merged: string[] = [];
    let scratch = new Uint8Array(0);
    for (const [name, h] of held) {
      if (!h.slices.some((s) => s)) {
        values.set(name, await readUnsliced(name, h, inputs, readers));
        continue;
      }
      const { dtype, globalShape } = sliceFacts(name, h, inputs);
      const what = `parameter ${JSON.stringify(name)}`;
      const assembler = new SliceAssembler(
        what,
        globalShape,
        DTYPE_SIZE[dtype],
      );
      for (const [r, e] of h.entries.entries()) {
        if (e === undefined) continue;
        if (scratch.byteLength < e.byteLength) {
          scratch = new Uint8Array(e.byteLength);
        }
        const bytes = scratch.subarray(0, e.byteLength);
        await readers[r]!.readInto(name, bytes);
        const slice = h.slices[r] ??
          { globalShape, offset: globalShape.map(() => 0) };
        assembler.add(
          bytes,
          e.shape,
          slice,
          `rank ${r} ("${inputs[r]!.file}")`,
        );
      }
      const data = typedArrayFromBytes(dtype, assembler.finish());
      values.set(name, { dtype, shape: globalShape, data } as Tensor);
      merged.push(name);
    }
    // Every value as append info: the file keeps the first file's order.
    const saved = await saveCheckpoint(outPath, [], {
      ...options.write,
      appendInfo: values,
    });
    return { ...saved, merged };
  } finally {
    for (const reader of readers) await reader.close();
  }
}

/** An entry no file slices: the same in every file, read from the first. */
async function readUnsliced(
  name: string,
  h: Held,
  inputs: readonly MergeInput[],
  readers: readonly CheckpointReader[],
): Promise<Tensor | string> {
  const first = h.entries.findIndex((e) => e !== undefined);
  const e0 = h.entries[first]!;
  for (let r = 0; r < inputs.length; r++) {
    const e = h.entries[r];
    if (e === undefined) {
      throw new RangeError(
        `${ACTION}: ${JSON.stringify(name)} is not sliced and is in "${
          inputs[first]!.file
        }" but not in "${inputs[r]!.file}"`,
      );
    }
    if (e.dtype !== e0.dtype || !sameShape(e.shape, e0.shape)) {
      throw new RangeError(
        `${ACTION}: ${
          JSON.stringify(name)
        } is not sliced, yet it is ${e0.dtype} ${formatShape(e0.shape)} in "${
          inputs[first]!.file
        }" and ${e.dtype} ${formatShape(e.shape)} in "${inputs[r]!.file}"`,
      );
    }
  }
  return await readers[first]!.read(name);
}

/** The dtype and global shape every file must agree on for a sliced name. */
function sliceFacts(
  name: string,
  h: Held,
  inputs: readonly MergeInput[],
): { dtype: Exclude<CheckpointEntry["dtype"], "str">; globalShape: number[] } {
  const what = `parameter ${JSON.stringify(name)}`;
  const r0 = h.slices.findIndex((s) => s !== undefined);
  const globalShape = [...h.slices[r0]!.globalShape];
  const dtype = h.entries[r0]!.dtype;
  if (dtype === "str") {
    throw new RangeError(
      `${ACTION}: ${what} is a string in "${
        inputs[r0]!.file
      }"; only tensors can be sliced`,
    );
  }
  for (const [r, e] of h.entries.entries()) {
    if (e === undefined) continue;
    const file = inputs[r]!.file;
    if (e.dtype !== dtype) {
      throw new RangeError(
        `${ACTION}: ${what} is ${dtype} in "${
          inputs[r0]!.file
        }" and ${e.dtype} in "${file}"`,
      );
    }
    const s = h.slices[r];
    if (s !== undefined && !sameShape(s.globalShape, globalShape)) {
      throw new RangeError(
        `${ACTION}: ${what} has global shape ${formatShape(globalShape)} in "${
          inputs[r0]!.file
        }" and ${formatShape(s.globalShape)} in "${file}"`,
      );
    }
    if (s === undefined && !sameShape(e.shape, globalShape)) {
      throw new RangeError(
        `${ACTION}: ${what} is sliced in "${
          inputs[r0]!.file
        }", but "${file}" holds it with shape ${
          formatShape(e.shape)
        } and no slice (neither the global shape ${
          formatShape(globalShape)
        } nor a recorded slice)`,
      );
    }
  }
  return { dtype, globalShape };
}
