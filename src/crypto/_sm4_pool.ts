// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * SM4-CBC for framing pieces, run in module Workers (one per core, at most
 * four) so that pieces are encrypted in parallel and the JS thread is never
 * blocked by SM4.
 *
 * The workers are shared by every cipher of the process: they start when
 * the first large piece comes, stay for the next save or load, and are
 * stopped after {@linkcode _IDLE_MS} without work by a timer that does not
 * keep the process alive. Each message carries its key and up to
 * {@linkcode _BATCH} pieces of one cipher, so a worker encrypts two
 * independent CBC chains interleaved (`encryptCbcMany`), which is faster
 * than one chain. Inputs are copied into pooled buffers that are
 * transferred to a worker and back, with the output buffer, so a stream of
 * pieces allocates no fresh memory once the pool is warm. Small inputs, and
 * platforms where a worker cannot start, run on the calling thread.
 *
 * The workers run the bundled code of `_sm4_worker.ts`
 * (`_sm4_worker_code.ts`, made by `deno task bundle:workers`) from a
 * `blob:` URL, so starting them reads no file of the library.
 */

import { type Sm4, sm4 } from "./sm4.ts";
import type {
  Sm4WorkerPiece,
  Sm4WorkerReply,
  Sm4WorkerRequest,
} from "./_sm4_worker.ts";
import { giveBuffer, takeBuffer } from "../core/_buffer_pool.ts";
import { SM4_WORKER_CODE } from "./_sm4_worker_code.ts";

/** Inputs up to this size are processed on the calling thread. */
const _INLINE_MAX = 64 * 1024;

/** Milliseconds without work after which the shared workers are stopped. */
const _IDLE_MS = 1000;

/** Pieces per message: the chains a worker interleaves. */
const _BATCH = 2;

/** Messages in flight per worker. */
const _IN_FLIGHT = 2;

function _capacity(n: number): number {
  return Math.ceil((n + 16) / 65536) * 65536;
}

type _Op = "encrypt" | "decrypt";

interface _Job {
  owner: Sm4Pool;
  op: _Op;
  key: Uint8Array;
  iv: Uint8Array;
  inputBuffer: ArrayBuffer;
  inputLength: number;
  resolve(out: Uint8Array): void;
  reject(error: Error): void;
}

interface _Slot {
  worker: Worker;
  inFlight: number;
}

interface _Sent {
  slot: _Slot;
  jobs: _Job[];
}

/** The process-wide workers, and the pieces waiting for them. */
class _SharedWorkers {
  #slots: _Slot[] | null = null;
  #starting: Promise<_Slot[] | null> | null = null;
  #failed = false;
  #queue: _Job[] = [];
  #sent = new Map<number, _Sent>();
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  /** Whether workers are running (for tests). */
  get running(): boolean {
    return this.#slots !== null;
  }

  /** Queues a job; it settles through its callbacks. */
  submit(job: _Job): void {
    this.#cancelIdleStop();
    this.#queue.push(job);
    this.#start().then((slots) => {
      if (slots === null) this.#runQueueInline();
      else this.#pump();
    });
  }

  /** Drops the queued jobs of `owner` (its in-flight ones are ignored). */
  forget(owner: Sm4Pool, error: Error): void {
    const keep: _Job[] = [];
    for (const job of this.#queue) {
      if (job.owner === owner) {
        giveBuffer(job.inputBuffer);
        job.reject(error);
      } else keep.push(job);
    }
    this.#queue = keep;
    this.#maybeIdle();
  }

  #runQueueInline(): void {
    const jobs = this.#queue;
    this.#queue = [];
    for (const job of jobs) {
      const view = new Uint8Array(job.inputBuffer, 0, job.inputLength);
      job.owner.runInline(job.op, view, job.iv).then(job.resolve, job.reject)
        .finally(() => giveBuffer(job.inputBuffer));
    }
  }

  /** Sends queued jobs to workers with room, pairing jobs of one cipher. */
  #pump(): void {
    const slots = this.#slots;
    if (slots === null) return;
    while (this.#queue.length > 0) {
      const slot = slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      if (slot.inFlight >= _IN_FLIGHT) return;
      const first = this.#queue[0]!;
      const batch: number[] = [0];
      for (let i = 1; i < this.#queue.length && batch.length < _BATCH; i++) {
        const job = this.#queue[i]!;
        if (job.owner === first.owner && job.op === first.op) batch.push(i);
      }
      // A lone piece waits for a partner unless the worker would be idle.
      if (batch.length < _BATCH && slot.inFlight > 0) return;
      const jobs = batch.map((i) => this.#queue[i]!);
      this.#queue = this.#queue.filter((_, i) => !batch.includes(i));
      this.#post(slot, jobs);
    }
  }

  #post(slot: _Slot, jobs: _Job[]): void {
    const id = this.#nextId++;
    const transfer: ArrayBuffer[] = [];
    const pieces: Sm4WorkerPiece[] = jobs.map((job) => {
      const output = takeBuffer(_capacity(job.inputLength));
      transfer.push(job.inputBuffer, output);
      return {
        iv: job.iv,
        input: job.inputBuffer,
        inputLength: job.inputLength,
        output,
      };
    });
    const message: Sm4WorkerRequest = {
      id,
      op: jobs[0]!.op,
      key: jobs[0]!.key.slice(),
      pieces,
    };
    slot.inFlight++;
    this.#sent.set(id, { slot, jobs });
    try {
      slot.worker.postMessage(message, transfer);
    } catch (error) {
      // Nothing was transferred: the pieces fail, the buffers are ours.
      this.#sent.delete(id);
      slot.inFlight--;
      for (const piece of pieces) giveBuffer(piece.output);
      for (const job of jobs) {
        giveBuffer(job.inputBuffer);
        job.reject(
          new Error("SM4-CBC worker could not be sent a piece", {
            cause: error,
          }),
        );
      }
    }
  }

  #reply(reply: Sm4WorkerReply): void {
    const sent = this.#sent.get(reply.id);
    if (sent === undefined) return;
    this.#sent.delete(reply.id);
    sent.slot.inFlight--;
    reply.results.forEach((result, i) => {
      giveBuffer(result.input);
      const job = sent.jobs[i]!;
      if (result.length < 0 || job.owner.destroyed) {
        giveBuffer(result.output);
        job.reject(
          job.owner.destroyed
            ? _destroyedError()
            : new Error("SM4-CBC decryption failed"),
        );
      } else {
        job.resolve(new Uint8Array(result.output, 0, result.length));
      }
    });
    this.#pump();
    this.#maybeIdle();
  }

  /** The workers, started when needed; `null` when they cannot run here. */
  #start(): Promise<_Slot[] | null> {
    if (this.#starting !== null) return this.#starting;
    if (this.#failed || typeof Worker === "undefined") {
      return Promise.resolve(null);
    }
    const count = Math.max(
      1,
      Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 2),
    );
    const slots: _Slot[] = [];
    const started: Promise<void>[] = [];
    try {
      const url = _workerUrl();
      for (let i = 0; i < count; i++) {
        const worker = new Worker(url, { type: "module", name: "ckpt-sm4" });
        const slot = { worker, inFlight: 0 };
        slots.push(slot);
        started.push(
          new Promise<void>((resolve, reject) => {
            worker.onmessage = (e: MessageEvent<Sm4WorkerReply>) => {
              if (e.data.id === 0) resolve();
              else this.#reply(e.data);
            };
            worker.onerror = (e: ErrorEvent) => {
              e.preventDefault();
              reject(new Error(`SM4-CBC worker failed: ${e.message}`));
              this.#workerFailed();
            };
          }),
        );
        const hello: Sm4WorkerRequest = {
          id: 0,
          op: "encrypt",
          key: new Uint8Array(16),
          pieces: [],
        };
        worker.postMessage(hello);
      }
    } catch {
      for (const slot of slots) slot.worker.terminate();
      this.#failed = true;
      return Promise.resolve(null);
    }
    this.#slots = slots;
    const starting = Promise.all(started).then(
      () => (this.#slots === slots ? slots : null),
      () => null,
    );
    this.#starting = starting;
    return starting;
  }

  #workerFailed(): void {
    this.#failed = true;
    const sent = [...this.#sent.values()];
    this.#sent.clear();
    this.#terminate();
    for (const s of sent) {
      for (const job of s.jobs) job.reject(new Error("SM4-CBC worker failed"));
    }
    // Queued jobs run on the calling thread from now on.
    this.#runQueueInline();
  }

  #maybeIdle(): void {
    if (this.#queue.length > 0 || this.#sent.size > 0) return;
    if (this.#slots === null || this.#idleTimer !== undefined) return;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#queue.length === 0 && this.#sent.size === 0) this.#terminate();
    }, _IDLE_MS);
    const runtime = (globalThis as {
      Deno?: { unrefTimer?: (id: unknown) => void };
    }).Deno;
    runtime?.unrefTimer?.(timer);
    this.#idleTimer = timer;
  }

  #cancelIdleStop(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #terminate(): void {
    this.#cancelIdleStop();
    for (const slot of this.#slots ?? []) slot.worker.terminate();
    this.#slots = null;
    this.#starting = null;
  }
}

let _url: string | null = null;

/**
 * The workers' module: the bundled code of `_sm4_worker.ts` as a `blob:`
 * URL, so that starting a worker reads no file and needs no permission
 * beyond the process's own (`--allow-read` of the checkpoint folder only is
 * enough, wherever the library was imported from).
 */
function _workerUrl(): string {
  return _url ??= URL.createObjectURL(
    new Blob([SM4_WORKER_CODE], { type: "text/javascript" }),
  );
}

function _destroyedError(): TypeError {
  return new TypeError("Cannot use SM4-CBC cipher: it was destroyed");
}

let _shared: _SharedWorkers | null = null;

/** Whether the shared SM4 workers are running (for tests). */
export function _sm4WorkersRunning(): boolean {
  return _shared?.running ?? false;
}

/** The SM4 piece operations of one key, in the shared workers when possible. */
export class Sm4Pool {
  #key: Uint8Array<ArrayBuffer>;
  #inline: Sm4;
  #destroyed = false;

  constructor(key: Uint8Array) {
    this.#key = new Uint8Array(key);
    this.#inline = sm4(key);
  }

  /** Whether {@linkcode destroy} was called. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Encrypts (or decrypts) `input`; it is copied before this returns. */
  run(op: _Op, input: Uint8Array, iv: Uint8Array): Promise<Uint8Array> {
    if (this.#destroyed) return Promise.reject(_destroyedError());
    if (input.byteLength <= _INLINE_MAX) return this.runInline(op, input, iv);
    const inputBuffer = takeBuffer(_capacity(input.byteLength));
    new Uint8Array(inputBuffer).set(input);
    return new Promise<Uint8Array>((resolve, reject) => {
      (_shared ??= new _SharedWorkers()).submit({
        owner: this,
        op,
        key: this.#key,
        iv: new Uint8Array(iv),
        inputBuffer,
        inputLength: input.byteLength,
        resolve,
        reject,
      });
    });
  }

  /** Runs on the calling thread. */
  runInline(op: _Op, input: Uint8Array, iv: Uint8Array): Promise<Uint8Array> {
    if (this.#destroyed) return Promise.reject(_destroyedError());
    try {
      return Promise.resolve(
        op === "encrypt"
          ? this.#inline.encryptCbc(input, iv)
          : this.#inline.decryptCbc(input, iv),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Gives an output of {@linkcode run} back for reuse. */
  recycle(output: Uint8Array): void {
    if (output.byteOffset === 0 && output.buffer instanceof ArrayBuffer) {
      giveBuffer(output.buffer);
    }
  }

  /**
   * Wipes the key and rejects this cipher's queued pieces. The shared
   * workers stay for other ciphers (and stop on their own when idle).
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    _shared?.forget(this, _destroyedError());
    this.#inline.destroy();
    this.#key.fill(0);
  }
}
