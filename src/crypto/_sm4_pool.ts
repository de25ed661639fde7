// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * SM4-CBC for framing pieces, run in module Workers (one per core, at most
 * four) so that pieces are encrypted in parallel and the JS thread is never
 * blocked by SM4. Inputs are copied into pooled buffers that are transferred
 * to a worker and back, with the output buffer, so a stream of pieces
 * allocates no fresh memory once the pool is warm. Small inputs, and
 * platforms where a worker cannot start, run on the calling thread.
 */

import { type Sm4, sm4 } from "./sm4.ts";
import type { Sm4WorkerReply, Sm4WorkerRequest } from "./_sm4_worker.ts";
import { giveBuffer, takeBuffer } from "./_buffer_pool.ts";

/** Inputs up to this size are processed on the calling thread. */
const _INLINE_MAX = 64 * 1024;

/** Milliseconds without work after which the workers are stopped. */
const _IDLE_MS = 1000;

function _capacity(n: number): number {
  return Math.ceil((n + 16) / 65536) * 65536;
}

interface _Pending {
  resolve(out: Uint8Array): void;
  reject(error: Error): void;
}

interface _Slot {
  worker: Worker;
  busy: number;
}

/** The SM4 piece operations, in workers when possible. */
export class Sm4Pool {
  #key: Uint8Array<ArrayBuffer>;
  #inline: Sm4;
  #slots: _Slot[] | null = null;
  #starting: Promise<_Slot[] | null> | null = null;
  #workersFailed = false;
  #pending = new Map<number, _Pending & { slot: _Slot }>();
  #nextId = 1;
  #destroyed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(key: Uint8Array) {
    this.#key = new Uint8Array(key);
    this.#inline = sm4(key);
  }

  /** Encrypts (or decrypts) `input`; it is copied before this returns. */
  run(
    op: "encrypt" | "decrypt",
    input: Uint8Array,
    iv: Uint8Array,
  ): Promise<Uint8Array> {
    if (this.#destroyed) {
      return Promise.reject(
        new TypeError("Cannot use SM4-CBC cipher: it was destroyed"),
      );
    }
    if (input.byteLength <= _INLINE_MAX) return this.#runInline(op, input, iv);
    this.#cancelIdleStop();
    const inputBuffer = takeBuffer(_capacity(input.byteLength));
    new Uint8Array(inputBuffer).set(input);
    const job = {
      op,
      iv: new Uint8Array(iv),
      inputBuffer,
      inputLength: input.byteLength,
    };
    return this.#workers().then((slots) => {
      const view = new Uint8Array(job.inputBuffer, 0, job.inputLength);
      if (this.#destroyed) {
        giveBuffer(job.inputBuffer);
        throw new TypeError("Cannot use SM4-CBC cipher: it was destroyed");
      }
      if (slots === null) {
        const out = this.#runInline(job.op, view, job.iv);
        return out.finally(() => giveBuffer(job.inputBuffer));
      }
      return this.#post(slots, job);
    });
  }

  #runInline(
    op: "encrypt" | "decrypt",
    input: Uint8Array,
    iv: Uint8Array,
  ): Promise<Uint8Array> {
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

  #post(
    slots: _Slot[],
    job: {
      op: "encrypt" | "decrypt";
      iv: Uint8Array;
      inputBuffer: ArrayBuffer;
      inputLength: number;
    },
  ): Promise<Uint8Array> {
    const slot = slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.#nextId++;
    const output = takeBuffer(_capacity(job.inputLength));
    const message: Sm4WorkerRequest = {
      type: "run",
      id,
      op: job.op,
      iv: job.iv,
      input: job.inputBuffer,
      inputLength: job.inputLength,
      output,
    };
    slot.busy++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, slot });
      slot.worker.postMessage(message, [job.inputBuffer, output]);
    });
  }

  /** Gives an output of {@linkcode run} back for reuse. */
  recycle(output: Uint8Array): void {
    if (output.byteOffset === 0 && output.buffer instanceof ArrayBuffer) {
      giveBuffer(output.buffer);
    }
  }

  /** Stops the workers and wipes the key. */
  destroy(): void {
    this.#destroyed = true;
    this.#terminate();
    this.#inline.destroy();
    this.#key.fill(0);
    for (const p of this.#pending.values()) {
      p.reject(new TypeError("Cannot use SM4-CBC cipher: it was destroyed"));
    }
    this.#pending.clear();
  }

  /**
   * The workers, started when needed; `null` when workers cannot run here
   * (then the caller works inline). Resolves once every worker has loaded.
   */
  #workers(): Promise<_Slot[] | null> {
    if (this.#starting !== null) return this.#starting;
    if (this.#workersFailed || typeof Worker === "undefined") {
      return Promise.resolve(null);
    }
    const count = Math.max(
      1,
      Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 2),
    );
    const slots: _Slot[] = [];
    const started: Promise<void>[] = [];
    try {
      const url = new URL("./_sm4_worker.ts", import.meta.url);
      for (let i = 0; i < count; i++) {
        const worker = new Worker(url, { type: "module" });
        const slot = { worker, busy: 0 };
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
        const key: Sm4WorkerRequest = { type: "key", key: this.#key.slice() };
        worker.postMessage(key);
      }
    } catch {
      for (const slot of slots) slot.worker.terminate();
      this.#workersFailed = true;
      return Promise.resolve(null);
    }
    this.#slots = slots;
    this.#starting = Promise.all(started).then(
      () => (this.#slots === slots ? slots : null),
      () => null,
    );
    return this.#starting;
  }

  #reply(reply: Sm4WorkerReply): void {
    giveBuffer(reply.input);
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    pending.slot.busy--;
    if (reply.length < 0) {
      giveBuffer(reply.output);
      pending.reject(new Error("SM4-CBC decryption failed"));
    } else {
      pending.resolve(new Uint8Array(reply.output, 0, reply.length));
    }
    if (this.#pending.size === 0) this.#scheduleIdleStop();
  }

  #workerFailed(): void {
    this.#workersFailed = true;
    this.#terminate();
    for (const p of this.#pending.values()) {
      p.reject(new Error("SM4-CBC worker failed"));
    }
    this.#pending.clear();
  }

  /**
   * Idle workers keep a process alive, so they are stopped after a second
   * without work (and restarted when work comes). The timer itself does not
   * keep the process alive where the runtime can say so.
   */
  #scheduleIdleStop(): void {
    this.#cancelIdleStop();
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#pending.size === 0) this.#terminate();
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
