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
 * Queue → Worker: write a file from the slabs, or allocate and touch new
 * slabs of the given sizes (0: none at that index) for the arena.
 */
export type WireRequest =
  | {
    readonly id: number;
    readonly file: WireFile;
    readonly buffers: ArrayBuffer[];
  }
  | { readonly id: number; readonly alloc: readonly number[] }
  | { readonly id: number; readonly early: WireEarly };

/** An error as sent: enough to rebuild its class and message. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** Node.js's error code (`"ENOENT"`, `"ENOSPC"`), when it has one. */
  readonly code?: string;
}

/** Worker → queue. */
export type WireReply =
  & { readonly id: number; readonly buffers: ArrayBuffer[] }
  & (
    | { readonly ok: true; readonly result: SaveResult; readonly ms: number }
    | { readonly ok: true; readonly result: null; readonly ms: number }
    | { readonly ok: false; readonly error: WireError }
  );

/** Turns an error into something structured clone keeps. */
export function toWire(error: unknown): WireError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(error.stack !== undefined && { stack: error.stack }),
      ...(typeof code === "string" && { code }),
    };
  }
  return { name: "Error", message: String(error) };
}

const BUILTIN: Record<string, ErrorConstructor> = {
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Rebuilds an error of the same class where it can: `Deno.errors.*` under
 * Deno (so `instanceof Deno.errors.NotFound` holds) and the built-in ones;
 * others become an `Error` with the same `name`. Node.js's `code` is kept.
 */
export function fromWire(wire: WireError): Error {
  const denoErrors = (globalThis as { Deno?: { errors?: unknown } }).Deno
    ?.errors as Record<string, unknown> | undefined;
  const DenoError = denoErrors?.[wire.name];
  let error: Error;
  if (typeof DenoError === "function") {
    error = new (DenoError as ErrorConstructor)(wire.message);
  } else if (Object.hasOwn(BUILTIN, wire.name)) {
    error = new BUILTIN[wire.name]!(wire.message);
  } else {
    error = new Error(wire.message);
    error.name = wire.name;
  }
  if (wire.stack !== undefined) error.stack = wire.stack;
  if (wire.code !== undefined) {
    (error as Error & { code?: string }).code = wire.code;
  }
  return error;
}

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

/** Bytes per page: writing one byte of each makes the kernel back it. */
const PAGE = 4096;

/** A new buffer whose pages have all been touched (written) once. */
function touched(size: number): ArrayBuffer {
  const buffer = new ArrayBuffer(size);
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < size; i += PAGE) bytes[i] = 0;
  return buffer;
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
 * Answers one request: allocates and touches new slabs, or writes a file
 * with `save` and returns the slabs with the result or the error.
 */
export async function answer(
  request: WireRequest,
  save: SaveFunction = saveCheckpoint,
  early: WireEarly | null = null,
): Promise<WireReply> {
  const start = performance.now();
  if ("early" in request) {
    return { id: request.id, buffers: [], ok: true, result: null, ms: 0 };
  }
  if ("alloc" in request) {
    const buffers = request.alloc.map((n) => touched(n));
    return {
      id: request.id,
      buffers,
      ok: true,
      result: null,
      ms: performance.now() - start,
    };
  }
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
  port.on("message", (request) => {
    if ("early" in request) {
      early = request.early;
      return;
    }
    // A failure to answer (an allocation or the reply itself) must not be
    // an unhandled rejection: it is thrown from a task, which the parent
    // sees as the Worker's error event and reports as a crash.
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
