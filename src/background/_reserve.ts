// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Preparing the snapshot arena in the save Worker without needing the
 * training thread: the Worker allocates each slab, touches its pages and
 * posts it on a port of its own, counting what it posted in shared memory;
 * the queue takes the slabs with `receiveMessageOnPort` only (no listener,
 * so no message is ever half-way to an event where a synchronous take
 * cannot see it): from a timer while its thread is free, and all at once
 * when a snapshot is due. A training loop that only
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
 * A snapshot due before the reservation is complete finishes it together
 * with the Worker rather than alone: each slab is claimed once, by a
 * compare-and-swap in the reservation's `claims` (one word per slab), the
 * Worker from the first slab up, the queue from the last slab down, and
 * both touch fresh pages at once (two threads touch fresh memory ~1.6x as
 * fast as one on our machines).
 *
 * @module
 */

import { receiveMessageOnPort } from "node:worker_threads";
import { unrefTimer } from "./_unref_timer.ts";
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
/** How long a synchronous take waits for a slab posted but not there yet. */
const TRAIL_MS = 50;

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
  /** Shared, one word per slab: 0 free, else who claimed it. */
  readonly claims: Int32Array;
}

const BY_WORKER = 1;
const BY_QUEUE = 2;

/**
 * A new buffer of `size` bytes with every page touched (written) once, or
 * as far as `go()` (asked every MiB) allowed.
 */
function touched(size: number, go: () => boolean): ArrayBuffer {
  const buffer = new ArrayBuffer(size);
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < size; i += PAGE) {
    if (i % STOP_CHECK === 0 && !go()) break;
    bytes[i] = 0;
  }
  return buffer;
}

/** Worker → queue, on the reservation port: a slab, or the end. */
export type WireReserved =
  | {
    readonly run: number;
    readonly index: number;
    readonly buffer: ArrayBuffer;
  }
  | WireReserveDone;

/** The end of a reservation: how many slabs it posted, and why it failed. */
interface WireReserveDone {
  readonly run: number;
  readonly done: true;
  readonly posted: number;
  readonly error?: WireError;
}

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
  const { run, sizes, claims } = request;
  Atomics.store(ctl, BUSY, run);
  Atomics.store(ctl, POSTED, 0);
  const go = () => Atomics.load(ctl, RUN) === run;
  let error: WireError | undefined;
  try {
    for (const [index, size] of sizes.entries()) {
      if (!go()) break;
      if (size === 0) continue;
      // The queue took this one and those after it: the end.
      if (Atomics.compareExchange(claims, index, 0, BY_WORKER) !== 0) break;
      const buffer = touched(size, go);
      port.postMessage({ run, index, buffer }, [buffer]);
      Atomics.add(ctl, POSTED, 1);
    }
  } catch (e) {
    error = toWire(e);
  } finally {
    Atomics.store(ctl, FINISHED, run);
    Atomics.store(ctl, BUSY, 0);
    Atomics.notify(ctl, BUSY);
  }
  const posted = Atomics.load(ctl, POSTED);
  port.postMessage(
    error === undefined
      ? { run, done: true, posted }
      : { run, done: true, posted, error },
    [],
  );
}

/** The queue's end of a reservation port (a `node:worker_threads` port). */
export interface ReservePort {
  close(): void;
}

/** Milliseconds between looks at the port while the thread is free. */
const POLL_MS = 10;

interface Current {
  readonly run: number;
  readonly sizes: readonly number[];
  readonly claims: Int32Array;
  received: number;
  /** The end, when it came before all the slabs it counts. */
  done?: WireReserveDone;
  readonly onSlab: (index: number, buffer: ArrayBuffer) => void;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The queue's side of one Worker's reservations: one at a time, each slab
 * handed to `onSlab` in order, from a timer or when
 * {@linkcode SlabReserver.finish} or {@linkcode SlabReserver.stop} takes
 * them synchronously.
 */
export class SlabReserver {
  readonly #port: ReservePort;
  readonly #ctl: Int32Array;
  #runs = 0;
  #current: Current | null = null;
  #timer: ReturnType<typeof setInterval> | undefined = undefined;

  /** Reads `port` (never listened to: nothing keeps the process alive). */
  constructor(port: ReservePort, ctl: Int32Array) {
    this.#port = port;
    this.#ctl = ctl;
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
    this.#poll(); // Drops what an ended reservation posted late.
    const run = ++this.#runs;
    Atomics.store(this.#ctl, RUN, run);
    const claims = new Int32Array(new SharedArrayBuffer(4 * sizes.length));
    const own = [...sizes];
    const ended = new Promise<void>((resolve, reject) => {
      this.#current = {
        run,
        sizes: own,
        claims,
        received: 0,
        onSlab,
        resolve,
        reject,
      };
    });
    this.#timer = setInterval(() => this.#poll(), POLL_MS);
    unrefTimer(this.#timer);
    return { request: { run, sizes: own, claims }, ended };
  }

  /**
   * Waits for `ended`, looking at the port meanwhile from a timer that
   * keeps the process alive (the reservation alone does not).
   */
  async keepAlive(ended: Promise<void>): Promise<void> {
    const timer = setInterval(() => this.#poll(), POLL_MS);
    try {
      await ended;
    } finally {
      clearInterval(timer);
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
    Atomics.store(this.#ctl, RUN, 0);
    this.#collect(current, performance.now() + timeoutMs);
    this.#end(current);
  }

  /**
   * Completes the reservation now, on this thread and the Worker's at
   * once: claims the slabs the Worker has not reached, from the last one
   * down, and touches them while the Worker finishes its own; then hands
   * every slab to `onSlab` in order. Waits at most `timeoutMs` for the
   * Worker (after that its slab is left to the snapshot).
   */
  finish(timeoutMs: number): void {
    const current = this.#current;
    if (current === null) return;
    const { sizes, claims, run } = current;
    const deadline = performance.now() + timeoutMs;
    const mine: [number, ArrayBuffer][] = [];
    let shared = false;
    for (let index = sizes.length - 1; index >= 0; index--) {
      const size = sizes[index]!;
      if (size === 0) continue;
      if (Atomics.compareExchange(claims, index, 0, BY_QUEUE) !== 0) {
        shared = true; // The Worker has this one and those before it.
        break;
      }
      mine.push([index, touched(size, () => true)]);
    }
    let until = deadline;
    if (!shared || !this.#waitIdle(run, deadline)) {
      // Nothing is the Worker's, or time is up: it stops where it is (it
      // looks every MiB), and what it posted is still taken.
      Atomics.store(this.#ctl, RUN, 0);
      until = Math.max(deadline, performance.now() + 1000);
    }
    this.#collect(current, until);
    for (let i = mine.length - 1; i >= 0; i--) {
      current.onSlab(mine[i]![0], mine[i]![1]);
    }
    Atomics.store(this.#ctl, RUN, 0);
    this.#end(current);
  }

  /** Waits until the Worker is not touching slabs of `run`; false on time-out. */
  #waitIdle(run: number, deadline: number): boolean {
    const ctl = this.#ctl;
    while (Atomics.load(ctl, BUSY) === run) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(ctl, BUSY, run, left);
    }
    return true;
  }

  /**
   * Takes, synchronously, every slab the Worker posted for `current` once
   * it has left the reservation (waiting for that until `deadline`).
   */
  #collect(current: Current, deadline: number): void {
    const ctl = this.#ctl;
    if (!this.#waitIdle(current.run, deadline)) return;
    if (Atomics.load(ctl, FINISHED) !== current.run) return; // Not started.
    const posted = Atomics.load(ctl, POSTED);
    // A slab is posted before it is counted, so it is there; should it
    // trail by a moment all the same, the caller does without it soon.
    const trail = Math.min(deadline, performance.now() + TRAIL_MS);
    while (this.#current === current && current.received < posted) {
      const got = receiveMessageOnPort(this.#port as never);
      if (got !== undefined) {
        this.#take(got.message as WireReserved);
        continue;
      }
      if (performance.now() >= trail) break;
      Atomics.wait(ctl, POSTED, posted, 1);
    }
  }

  /** The Worker is gone: the reservation ends with what came. */
  close(): void {
    Atomics.store(this.#ctl, RUN, 0);
    const current = this.#current;
    if (current !== null) this.#end(current);
    this.#port.close();
  }

  /** Takes what has arrived, without waiting (stale slabs are dropped). */
  #poll(): void {
    for (;;) {
      const got = receiveMessageOnPort(this.#port as never);
      if (got === undefined) return;
      this.#take(got.message as WireReserved);
    }
  }

  #take(message: WireReserved): void {
    const current = this.#current;
    // A slab of an ended reservation (stopped meanwhile) is dropped.
    if (current === null || message.run !== current.run) return;
    if ("done" in message) {
      current.done = message;
    } else {
      current.received++;
      current.onSlab(message.index, message.buffer);
    }
    const done = current.done;
    if (done !== undefined && current.received >= done.posted) {
      this.#end(current, done.error);
    }
  }

  #end(current: Current, error?: WireError): void {
    if (this.#current !== current) return;
    this.#current = null;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (error === undefined) current.resolve();
    else current.reject(fromWire(error));
  }
}
