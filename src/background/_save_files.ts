// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * What one background save writes: the caller's files checked, their
 * tensors listed in a fixed order for the snapshot arena, and each file
 * described by reference to the snapshot (the wire format), with the store
 * that will write it.
 *
 * @module
 */

import type { SaveCheckpointOptions } from "../checkpoint/checkpoint.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { fileStore } from "../store/_file_store.ts";
import { storeFor } from "../store/resolve.ts";
import type { CheckpointStore } from "../store/store.ts";
import {
  type Network,
  networkParameters,
  type Parameter,
  type Tensor,
} from "../tensor/types.ts";
import { checkAppendValue } from "../tensor/_append.ts";
import type { WireAppend, WireFile, WireParam } from "./_save_wire.ts";
import type { Snapshot } from "./snapshot.ts";

/** One file of a background save. */
export interface SaveQueueFile {
  /** Where to write it; its folder must exist when the save runs. */
  readonly path: string;
  /** The tensors to save (copied when the save is queued). */
  readonly network: Network;
  /**
   * The options of `saveCheckpoint`. Tensors in `appendInfo` are copied
   * with the network. For a file of the local store, every other option is
   * passed to the Worker by structured clone (an encryption key included);
   * a file of any other store is written on the caller's thread (see
   * {@linkcode SaveQueue}).
   *
   * @default {{}}
   */
  readonly options?: SaveCheckpointOptions;
}

/** A file of a save, its tensors numbered in the list a snapshot copies. */
interface FileLayout {
  path: string;
  params: Parameter[];
  /** Index of the first parameter in the tensor list. */
  first: number;
  append?: [string, { index: number } | WireAppend][];
  options: Omit<SaveCheckpointOptions, "appendInfo" | "store" | "onWritten">;
  /** The store option as given (resolved against the path when described). */
  store: CheckpointStore | undefined;
}

/** A file ready to write: its wire form and where it goes. */
export interface PlannedFile {
  /** The file by reference to the snapshot, as the Worker gets it. */
  readonly wire: WireFile;
  /** The store that writes it. */
  readonly store: CheckpointStore;
  /** Whether that is the local file system (then the Worker writes it). */
  readonly local: boolean;
}

function invalid(what: string, value: unknown): TypeError {
  return new TypeError(
    `Cannot save in the background: ${what}, received ${describe(value)}`,
  );
}

/** Checks one file and appends its tensors to `tensors`. */
function layoutFile(file: SaveQueueFile, i: number, tensors: Tensor[]) {
  if (typeof file !== "object" || file === null) {
    throw invalid(`file ${i} must be an object`, file);
  }
  if (typeof file.path !== "string") {
    throw invalid(`file ${i} path must be a string`, file.path);
  }
  const params = networkParameters(file.network);
  const first = tensors.length;
  tensors.push(...params);
  // A caller's onWritten cannot cross to the Worker (the queue sets its own).
  const { appendInfo, store, onWritten: _onWritten, ...options } =
    file.options ?? {};
  const layout: FileLayout = {
    path: file.path,
    params,
    first,
    options,
    store,
  };
  if (appendInfo === undefined) return layout;
  const append: [string, { index: number } | WireAppend][] = [];
  const pairs = appendInfo instanceof Map
    ? [...appendInfo]
    : Object.entries(appendInfo);
  for (const [key, value] of pairs) {
    const checked = checkAppendValue(
      value,
      `Cannot save "${file.path}" in the background`,
      `appendInfo "${key}"`,
    );
    if (typeof checked === "object") {
      append.push([key, { index: tensors.length }]);
      tensors.push(checked);
    } else {
      append.push([key, { value: checked }]);
    }
  }
  return { ...layout, append };
}

/**
 * Checks the files and lists the tensors a snapshot of them copies, in a
 * fixed order (so the arena lays them out the same way every time).
 */
function collect(
  files: readonly SaveQueueFile[],
): { layouts: FileLayout[]; tensors: Tensor[] } {
  if (!Array.isArray(files)) {
    throw invalid("files must be an array", files);
  }
  const tensors: Tensor[] = [];
  const layouts = files.map((file, i) => layoutFile(file, i, tensors));
  return { layouts, tensors };
}

/**
 * The tensors a save of `files` copies, in the order a snapshot takes them.
 *
 * @throws {TypeError} When a file or option is malformed.
 */
export function tensorsOf(files: readonly SaveQueueFile[]): Tensor[] {
  return collect(files).tensors;
}

/**
 * Whether any of `files` goes to the local store, which only the save Worker
 * writes (a queue whose files all go elsewhere, such as a browser's OPFS,
 * never starts the Worker). A malformed file counts as local: the save then
 * fails where it always did.
 */
export function writesLocally(files: readonly SaveQueueFile[]): boolean {
  return files.some((file) => {
    try {
      return storeFor(file.path, file.options?.store) === fileStore();
    } catch {
      return true;
    }
  });
}

/**
 * Describes each file by reference to a snapshot of its tensors taken
 * earlier (by {@linkcode tensorsOf}'s order, possibly of the same files at
 * other paths), with the store that writes it.
 *
 * @throws {TypeError} When a file or option is malformed, or the files
 * have another number of tensors than the snapshot.
 */
export function describeFiles(
  files: readonly SaveQueueFile[],
  snapshot: Snapshot,
): PlannedFile[] {
  const { layouts, tensors } = collect(files);
  if (tensors.length !== snapshot.refs.length) {
    throw new TypeError(
      `Cannot save in the background: the files have ${tensors.length} tensors, the snapshot taken for them ${snapshot.refs.length}`,
    );
  }
  return layouts.map((l): PlannedFile => {
    const params = l.params.map((p, j): WireParam => {
      const ref = snapshot.refs[l.first + j]!;
      return p.requiresGrad === undefined
        ? { ...ref, name: p.name }
        : { ...ref, name: p.name, requiresGrad: p.requiresGrad };
    });
    const appendInfo = l.append?.map(([key, v]): [string, WireAppend] =>
      "index" in v ? [key, { tensor: snapshot.refs[v.index]! }] : [key, v]
    );
    const wire: WireFile = {
      path: l.path,
      params,
      ...(appendInfo && { appendInfo }),
      options: l.options,
    };
    const store = storeFor(l.path, l.store);
    return { wire, store, local: store === fileStore() };
  });
}
