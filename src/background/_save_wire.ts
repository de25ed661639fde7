// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * What the save queue and its Worker say to each other, and the Worker's
 * side of it. One request at a time: the snapshot's slabs go to the Worker
 * with each file to write and come back with the answer (transferred, never
 * copied).
 *
 * @module
 */

import {
  saveCheckpoint,
  type SaveCheckpointOptions,
  type SaveResult,
} from "../checkpoint/checkpoint.ts";
import { type TensorRef, viewTensor } from "./snapshot.ts";
import type { AppendValue, Parameter } from "../tensor/types.ts";
import { toWire, type WireError } from "./_save_wire_error.ts";
import {
  reserveSlabs,
  type WireReserve,
  type WireReserveSetup,
} from "./_reserve.ts";

export { fromWire, toWire, type WireError } from "./_save_wire_error.ts";

/** A parameter as sent: where its copy is in the snapshot. */
export interface WireParam extends TensorRef {
  readonly name: string;
  readonly requiresGrad?: boolean;
}

/** An append-info value as sent: a scalar as it is, a tensor by reference. */
export type WireAppend =
  | { readonly value: number | bigint | boolean | string }
  | { readonly tensor: TensorRef };

/** One file to write. */
export interface WireFile {
  readonly path: string;
  readonly params: readonly WireParam[];
  readonly appendInfo?: readonly (readonly [string, WireAppend])[];
  /**
   * The save options other than `appendInfo` and `store`, passed through as
   * they are (the Worker writes to the local store only).
   */
  readonly options: Omit<
    SaveCheckpointOptions,
    "appendInfo" | "store" | "onWritten"
  >;
  /**
   * Give the slabs back as soon as every byte is written, before the
   * commit: on the early port, with `flag[slot]` set to 1 (or to 2 when the
   * save ended without getting there), so the queue can wait for them
   * synchronously. The final reply then carries no slabs.
   */
  readonly early?: boolean;
}

/** Worker → queue, on the early port: the slabs, before the commit. */
export interface WireWritten {
  readonly id: number;
  readonly written: true;
  readonly buffers: ArrayBuffer[];
}

/** Where early give-backs go: set up once per Worker. */
export interface WireEarly {
  /** A `node:worker_threads` MessagePort the queue reads synchronously. */
  readonly port: {
    postMessage(message: unknown, transfer: ArrayBuffer[]): void;
  };
  /** Shared: 0 while writing, 1 once the slabs were posted, 2 if not. */
  readonly flag: Int32Array;
}

/**
 * Queue → Worker: write a file from the slabs; prepare slabs for the arena
 * (answered on the reservation port, see `_reserve.ts`); or, once per
 * Worker, where to give slabs back early and where to post reserved ones.
 */
export type WireRequest =
  | {
    readonly id: number;
    readonly file: WireFile;
    readonly buffers: ArrayBuffer[];
  }
  | { readonly id: number; readonly reserve: WireReserve }
  | { readonly id: number; readonly early: WireEarly }
  | { readonly id: number; readonly reserveTo: WireReserveSetup };

/** The requests that get an answer on the Worker's port. */
export type WireSaveRequest = Extract<WireRequest, { file: WireFile }>;

/** Worker → queue. */
export type WireReply =
  & { readonly id: number; readonly buffers: ArrayBuffer[] }
  & (
    | { readonly ok: true; readonly result: SaveResult; readonly ms: number }
    | { readonly ok: true; readonly result: null; readonly ms: number }
    | { readonly ok: false; readonly error: WireError }
  );

/** Rebuilds a file's parameters and append info as views of the slabs. */
export function unwire(
  file: WireFile,
  buffers: readonly ArrayBuffer[],
): { network: Parameter[]; options: SaveCheckpointOptions } {
  const network = file.params.map((p): Parameter => {
    const t = viewTensor(buffers, p);
    return p.requiresGrad === undefined
      ? { name: p.name, ...t }
      : { name: p.name, ...t, requiresGrad: p.requiresGrad };
  });
  const options: SaveCheckpointOptions = { ...file.options };
  if (file.appendInfo !== undefined) {
    options.appendInfo = new Map(
      file.appendInfo.map(([key, v]): [string, AppendValue] => [
        key,
        "tensor" in v ? viewTensor(buffers, v.tensor) : v.value,
      ]),
    );
  }
  return { network, options };
}

/** The Worker's side: what it does with one request. */
export type SaveFunction = typeof saveCheckpoint;

/**
 * The Worker's end of the channel: `node:worker_threads`' `parentPort`
 * (messages arrive as they were sent, not wrapped in an event).
 */
export interface SavePort {
  /** Listens for the queue's requests. */
  on(event: "message", listener: (request: WireRequest) => void): unknown;
  /** Answers, transferring the slabs back (or says it is ready). */
  postMessage(message: WireReply | WireReady, transfer: ArrayBuffer[]): void;
}

/**
 * The Worker's first message: it has started and listens. A Worker that
 * dies before it is reported as one that could not start.
 */
export interface WireReady {
  readonly ready: true;
}

/**
 * Answers one save request: writes the file with `save` and returns the
 * slabs with the result or the error (or, given back early, without them).
 */
export async function answer(
  request: WireSaveRequest,
  save: SaveFunction = saveCheckpoint,
  early: WireEarly | null = null,
): Promise<WireReply> {
  const start = performance.now();
  const { id, file, buffers } = request;
  const giveBack = file.early === true ? early : null;
  let given = false;
  const rest = (): ArrayBuffer[] => given ? [] : buffers;
  try {
    const { network, options } = unwire(file, buffers);
    const result = await save(
      file.path,
      network,
      giveBack === null ? options : {
        ...options,
        onWritten: () => {
          if (given) return;
          given = true;
          const written: WireWritten = { id, written: true, buffers };
          giveBack.port.postMessage(written, buffers);
          Atomics.store(giveBack.flag, 0, 1);
          Atomics.notify(giveBack.flag, 0);
        },
      },
    );
    return {
      id,
      buffers: rest(),
      ok: true,
      result,
      ms: performance.now() - start,
    };
  } catch (error) {
    return { id, buffers: rest(), ok: false, error: toWire(error) };
  } finally {
    if (giveBack !== null && !given) {
      Atomics.store(giveBack.flag, 0, 2);
      Atomics.notify(giveBack.flag, 0);
    }
  }
}

/**
 * Answers requests on a Worker's port: writes each file with `save` (the
 * durable {@linkcode saveCheckpoint} unless a test injects faults) and
 * sends the slabs back with the result or the error.
 */
export function serveSaves(
  port: SavePort,
  save: SaveFunction = saveCheckpoint,
): void {
  let early: WireEarly | null = null;
  let reserveTo: WireReserveSetup | null = null;
  port.on("message", (request) => {
    if ("early" in request) {
      early = request.early;
      return;
    }
    if ("reserveTo" in request) {
      reserveTo = request.reserveTo;
      return;
    }
    if ("reserve" in request) {
      if (reserveTo !== null) reserveSlabs(request.reserve, reserveTo);
      return;
    }
    // A failure to answer (the reply itself) must not be an unhandled
    // rejection: it is thrown from a task, which the parent sees as the
    // Worker's error event and reports as a crash.
    answer(request, save, early)
      .then((reply) => port.postMessage(reply, reply.buffers))
      .catch((error: unknown) =>
        setTimeout(() => {
          throw error;
        })
      );
  });
  port.postMessage({ ready: true }, []);
}
