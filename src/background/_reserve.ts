// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Preparing the snapshot arena in the save Worker without needing the
 * training thread: the Worker allocates each slab, touches its pages and
 * posts it on a port of its own, counting what it posted in shared memory;
 * the queue takes the slabs as messages when its thread is free, or all at
 * once, synchronously, when a snapshot is due. A training loop that only
 * awaits settled promises never runs a task, so a reservation that needed
 * an answer on the Worker's port would stall until the first save, which
 * would then copy into fresh memory and hold back its own write request.
 *
 * The shared control words:
 * - `RUN`: the reservation allowed to go on (0: stop), written by the queue;
 * - `BUSY`: the reservation the Worker is touching (0: none);
 * - `POSTED`: slabs posted by the Worker's last reservation;
 * - `FINISHED`: the last reservation the Worker ended or skipped.
 * The Worker sets `BUSY` before it reads `RUN`, the queue clears `RUN`
 * before it reads `BUSY` (both sequentially consistent), so when the queue
 * stops a reservation either it sees the Worker at work and waits for it
 * to leave, or the Worker sees the stop before it touches anything.
 *
 * @module
 */

import { receiveMessageOnPort } from "node:worker_threads";
import { fromWire, toWire, type WireError } from "./_save_wire_error.ts";

const RUN = 0;
const BUSY = 1;
const POSTED = 2;
const FINISHED = 3;
/** Control words, in an `Int32Array` over a `SharedArrayBuffer`. */
export const RESERVE_CONTROL_WORDS = 4;

/** Bytes per page: writing one byte of each makes the kernel back it. */
const PAGE = 4096;
/** The Worker looks for a stop after each this many bytes touched. */
const STOP_CHECK = 1 << 20;

/** Where a Worker posts the slabs it prepares: set up once per Worker. */
export interface WireReserveSetup {
  /** A `node:worker_threads` MessagePort the queue may read synchronously. */
  readonly port: {
    postMessage(message: WireReserved, transfer: ArrayBuffer[]): void;
  };
  /** The shared control words (see the module's documentation). */
  readonly ctl: Int32Array;
}

/** Queue → Worker: prepare slabs of these sizes (0: none at that index). */
export interface WireReserve {
  /** The reservation's number, never 0. */
  readonly run: number;
  readonly sizes: readonly number[];
}

/** Worker → queue, on the reservation port. */
export type WireReserved =
  | {
    readonly run: number;
    readonly index: number;
    readonly buffer: ArrayBuffer;
  }
  | { readonly run: number; readonly done: true; readonly error?: WireError };

/**
 * The Worker's side: allocates and touches each slab in turn and posts it,
 * until done or told to stop (a slab stopped halfway is posted as it is:
 * the snapshot touches the rest). Never throws: a failure (an allocation
 * refused) ends the reservation with an error the queue reports.
 */
export function reserveSlabs(
  request: WireReserve,
  setup: WireReserveSetup,
): void {
  const { ctl, port } = setup;
  const { run, sizes } = request;
  Atomics.store(ctl, BUSY, run);
  Atomics.store(ctl, POSTED, 0);
  let error: WireError | undefined;
  try {
    for (const [index, size] of sizes.entries()) {
      if (Atomics.load(ctl, RUN) !== run) break;
      if (size === 0) continue;
      const buffer = new ArrayBuffer(size);
      const bytes = new Uint8Array(buffer);
      let stopped = false;
      for (let i = 0; i < size; i += PAGE) {
        if (i % STOP_CHECK === 0 && Atomics.load(ctl, RUN) !== run) {
          stopped = true;
          break;
        }
        bytes[i] = 0;
      }
      port.postMessage({ run, index, buffer }, [buffer]);
      Atomics.add(ctl, POSTED, 1);
      if (stopped) break;
    }
  } catch (e) {
    error = toWire(e);
  } finally {
    Atomics.store(ctl, FINISHED, run);
    Atomics.store(ctl, BUSY, 0);
    Atomics.notify(ctl, BUSY);
  }
  port.postMessage(
    error === undefined ? { run, done: true } : { run, done: true, error },
    [],
  );
}

/** The queue's end of a reservation port (a `node:worker_threads` port). */
export interface ReservePort {
  on(event: "message", listener: (message: WireReserved) => void): unknown;
  ref(): void;
  unref(): void;
  close(): void;
}

interface Current {
  readonly run: number;
  received: number;
  readonly onSlab: (index: number, buffer: ArrayBuffer) => void;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The queue's side of one Worker's reservations: one at a time, each slab
 * handed to `onSlab` in order, as a message or when {@linkcode SlabReserver.stop}
 * takes them synchronously.
 */
export class SlabReserver {
  readonly #port: ReservePort;
  readonly #ctl: Int32Array;
  #runs = 0;
  #current: Current | null = null;
  #waiting = 0;

  /** Listens on `port` (unreferenced: it never keeps the process alive). */
  constructor(port: ReservePort, ctl: Int32Array) {
    this.#port = port;
    this.#ctl = ctl;
    port.on("message", (m) => this.#take(m));
    port.unref();
  }

  /** Whether a reservation has not ended yet. */
  get active(): boolean {
    return this.#current !== null;
  }

  /**
   * Starts a reservation: returns the request to post to the Worker and a
   * promise that settles when it has ended (done, stopped, or the Worker
   * gone); rejects when the Worker could not prepare a slab.
   */
  begin(
    sizes: readonly number[],
    onSlab: (index: number, buffer: ArrayBuffer) => void,
  ): { request: WireReserve; ended: Promise<void> } {
    this.stop(0);
    const run = ++this.#runs;
    Atomics.store(this.#ctl, RUN, run);
    const ended = new Promise<void>((resolve, reject) => {
      this.#current = { run, received: 0, onSlab, resolve, reject };
    });
    return { request: { run, sizes: [...sizes] }, ended };
  }

  /**
   * Waits for `ended` with the port referenced, so that a caller awaiting
   * the reservation keeps the process alive until it ends.
   */
  async keepAlive(ended: Promise<void>): Promise<void> {
    if (this.#waiting++ === 0) this.#port.ref();
    try {
      await ended;
    } finally {
      if (--this.#waiting === 0) this.#port.unref();
    }
  }

  /**
   * Stops the reservation and hands every slab the Worker has posted to
   * `onSlab` now, without returning to the event loop: waits (at most
   * `timeoutMs`) for the Worker to leave the slab it is touching.
   */
  stop(timeoutMs: number): void {
    const current = this.#current;
    if (current === null) return;
    const ctl = this.#ctl;
    Atomics.store(ctl, RUN, 0);
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(ctl, BUSY) === current.run) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(ctl, BUSY, current.run, left);
    }
    if (
      Atomics.load(ctl, BUSY) !== current.run &&
      Atomics.load(ctl, FINISHED) === current.run
    ) {
      const posted = Atomics.load(ctl, POSTED);
      while (this.#current === current && current.received < posted) {
        const got = receiveMessageOnPort(this.#port as never);
        if (got !== undefined) {
          this.#take(got.message as WireReserved);
          continue;
        }
        // Posted before it was counted; delivery may trail by a moment.
        if (performance.now() >= deadline) break;
        Atomics.wait(ctl, POSTED, posted, 1);
      }
    }
    this.#end(current);
  }

  /** The Worker is gone: the reservation ends with what came. */
  close(): void {
    Atomics.store(this.#ctl, RUN, 0);
    const current = this.#current;
    if (current !== null) this.#end(current);
    this.#port.close();
  }

  #take(message: WireReserved): void {
    const current = this.#current;
    // A slab of an ended reservation (stopped meanwhile) is dropped.
    if (current === null || message.run !== current.run) return;
    if ("done" in message) {
      this.#end(current, message.error);
      return;
    }
    current.received++;
    current.onSlab(message.index, message.buffer);
  }

  #end(current: Current, error?: WireError): void {
    if (this.#current !== current) return;
    this.#current = null;
    if (error === undefined) current.resolve();
    else current.reject(fromWire(error));
  }
}
