// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The queue's end of the save Worker: starts it when needed, sends one
 * request at a time, and turns a crash into a rejection. The Worker runs the
 * bundled code of `_save_worker.ts` (`_save_worker_code.ts`) from a `data:`
 * URL, so starting it reads no file: the process needs no permission beyond
 * the checkpoint folder's, wherever the library was imported from. It is a
 * `node:worker_threads` Worker because that kind can be unreferenced: while
 * no request is in flight it does not keep the process alive (a Web Worker
 * would, until ended).
 *
 * @module
 */

import {
  MessageChannel,
  receiveMessageOnPort,
  Worker as NodeWorker,
} from "node:worker_threads";
import { SAVE_WORKER_CODE } from "./_save_worker_code.ts";
import { unrefTimer } from "./_unref_timer.ts";
import type {
  WireEarly,
  WireReady,
  WireReply,
  WireSaveRequest,
  WireWritten,
} from "./_save_wire.ts";
import {
  RESERVE_CONTROL_WORDS,
  type ReservePort,
  SlabReserver,
  type WireReserveSetup,
} from "./_reserve.ts";

let bundled: URL | null = null;

/** How long a synchronous take waits for a message posted but not there yet. */
const TRAIL_MS = 50;

/** The Worker's bundled code as a `data:` URL, made once. */
function bundledUrl(): URL {
  return bundled ??= new URL(
    `data:text/javascript,${encodeURIComponent(SAVE_WORKER_CODE)}`,
  );
}

type EarlyPort = InstanceType<typeof MessageChannel>["port1"];

interface Pending {
  resolve(reply: WireReply): void;
  reject(error: Error): void;
  /** Takes the slabs given back before the commit (once). */
  written?: (buffers: ArrayBuffer[]) => void;
}

/** Options of {@linkcode SaveWorker}. */
export interface SaveWorkerOptions {
  /** Another module to run (tests that inject faults); default: the bundle. */
  readonly url?: URL;
  /**
   * Milliseconds without a request after which the Worker is ended (a later
   * request starts a new one); `Infinity` keeps it until `terminate()`.
   */
  readonly idleMs: number;
}

/** One save Worker, started on demand, one request in flight at a time. */
export class SaveWorker {
  /**
   * Whether a save Worker can start here: `false` in the browser build,
   * whose `node:worker_threads` is a stand-in (`tools/browser/`).
   */
  static readonly available: boolean =
    (NodeWorker as { browserStandIn?: boolean }).browserStandIn !== true;

  #url: URL | undefined;
  #idleMs: number;
  #worker: NodeWorker | null = null;
  /** Where this Worker gives slabs back early, read synchronously too. */
  #early: { port: EarlyPort; flag: Int32Array } | null = null;
  /** Where this Worker posts the slabs it prepares for the arena. */
  #reserver: SlabReserver | null = null;
  #pending: Pending | null = null;
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(options: SaveWorkerOptions) {
    this.#url = options.url;
    this.#idleMs = options.idleMs;
  }

  /** Whether a Worker is running (for tests). */
  get running(): boolean {
    return this.#worker !== null;
  }

  /**
   * Sends one request (starting the Worker if needed), transferring
   * `transfer`, and resolves with the answer; rejects when the Worker
   * cannot start, crashes or exits before answering.
   */
  request(
    request: WireSaveRequest,
    transfer: ArrayBuffer[],
    written?: (buffers: ArrayBuffer[]) => void,
  ): Promise<WireReply> {
    return new Promise((resolve, reject) => {
      if (this.#pending !== null) {
        reject(new TypeError("the save worker is already busy"));
        return;
      }
      try {
        const worker = this.#start();
        this.#pending = { resolve, reject };
        if (written !== undefined) {
          this.#pending.written = written;
          Atomics.store(this.#early!.flag, 0, 0);
        }
        // A request in flight keeps the process alive until it is answered.
        worker.ref();
        worker.postMessage({ ...request, id: this.#nextId++ }, transfer);
      } catch (error) {
        this.#pending = null;
        reject(error);
      }
    });
  }

  /**
   * Has the Worker (started if needed) allocate and touch slabs of the
   * given sizes (0: none at that index), one after the other, each handed
   * to `onSlab` when a timer finds it arrived or when
   * {@linkcode SaveWorker.finishReserving} or
   * {@linkcode SaveWorker.stopReserving} takes it. No other request waits
   * for it to end, and it never keeps the process alive. Settles when it has ended; rejects when the Worker could
   * not prepare a slab.
   */
  reserve(
    sizes: readonly number[],
    onSlab: (index: number, buffer: ArrayBuffer) => void,
  ): Promise<void> {
    try {
      const worker = this.#start();
      if (this.#pending === null) this.#idle(worker);
      const { request, ended } = this.#reserver!.begin(sizes, onSlab);
      worker.postMessage({ id: 0, reserve: request });
      return ended;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Whether a reservation has not ended yet. */
  get reserving(): boolean {
    return this.#reserver?.active ?? false;
  }

  /**
   * Ends the reservation now, synchronously, handing every slab the Worker
   * has prepared to its `onSlab` (waiting at most `timeoutMs` for the one
   * it is touching, which comes as far as it got).
   */
  stopReserving(timeoutMs: number): void {
    this.#reserver?.stop(timeoutMs);
  }

  /**
   * Completes the reservation now, synchronously, on this thread and the
   * Worker's at once (each slab prepared by one of them), handing every
   * slab to its `onSlab` in order. Waits at most `timeoutMs` for the
   * Worker's share.
   */
  finishReserving(timeoutMs = 10_000): void {
    this.#reserver?.finish(timeoutMs);
  }

  /**
   * Waits for a reservation's end, keeping the process alive meanwhile
   * (a reservation alone does not).
   */
  async reserved(ended: Promise<void>): Promise<void> {
    const reserver = this.#reserver;
    if (reserver === null) await ended;
    else await reserver.keepAlive(ended);
  }

  /**
   * Starts the Worker now if it is not running, so that it boots while the
   * caller does something else (e.g. copies a snapshot); it holds the
   * process open only once a request is sent.
   */
  warm(): void {
    if (this.#worker !== null) return;
    this.#idle(this.#start());
  }

  /**
   * Whether the request in flight will give its slabs back before its
   * commit and has not yet done so.
   */
  get writing(): boolean {
    return this.#pending?.written !== undefined;
  }

  /**
   * Blocks this thread until the request in flight has given its slabs
   * back (every byte written), at most `timeoutMs`; hands them to its
   * `written` callback. Returns whether they came: not when the save ended
   * without writing them all (its final answer brings them), the Worker
   * died, or the time ran out.
   */
  waitWritten(timeoutMs: number): boolean {
    const early = this.#early;
    if (!this.writing || early === null) return false;
    const deadline = performance.now() + timeoutMs;
    let trail: number | undefined;
    for (;;) {
      const left = deadline - performance.now();
      if (Atomics.load(early.flag, 0) === 0) {
        if (left <= 0) return false;
        Atomics.wait(early.flag, 0, 0, left);
        continue;
      }
      if (Atomics.load(early.flag, 0) !== 1) return false;
      // Posted before the flag was set; delivery may trail by a moment.
      const got = receiveMessageOnPort(early.port);
      if (got !== undefined) {
        this.#written(got.message as WireWritten);
        return !this.writing;
      }
      // Not there soon: the event loop took it in, and it comes as an
      // event (the caller does without it now).
      trail ??= performance.now() + TRAIL_MS;
      if (left <= 0 || performance.now() >= trail) return false;
      Atomics.wait(early.flag, 0, 1, Math.min(left, 1));
    }
  }

  /** Ends the Worker now; a request in flight is rejected. */
  terminate(): void {
    this.#crash(null);
  }

  #start(): NodeWorker {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#worker !== null) return this.#worker;
    const worker = new NodeWorker(this.#url ?? bundledUrl(), {
      name: "ckpt-save",
    });
    // Until its first message (`WireReady`) a failure is one of start-up.
    let started = false;
    const failed = () =>
      started ? "the save worker crashed" : "the save Worker could not start";
    const channel = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    channel.port1.on("message", (m: WireWritten) => this.#written(m));
    // Only a request in flight keeps the process alive.
    channel.port1.unref();
    this.#early = { port: channel.port1, flag };
    const setup: WireEarly = {
      port: channel.port2 as unknown as WireEarly["port"],
      flag,
    };
    worker.postMessage(
      { id: 0, early: setup },
      [channel.port2 as unknown as ArrayBuffer],
    );
    const slabs = new MessageChannel();
    const ctl = new Int32Array(
      new SharedArrayBuffer(4 * RESERVE_CONTROL_WORDS),
    );
    this.#reserver = new SlabReserver(
      slabs.port1 as unknown as ReservePort,
      ctl,
    );
    const reserveTo: WireReserveSetup = {
      port: slabs.port2 as unknown as WireReserveSetup["port"],
      ctl,
    };
    worker.postMessage(
      { id: 0, reserveTo },
      [slabs.port2 as unknown as ArrayBuffer],
    );
    worker.on("message", (reply: WireReply | WireReady) => {
      if ("ready" in reply) {
        started = true;
        return;
      }
      // The early slabs were posted first, on the other port: take them
      // before the answer that no longer carries them.
      if (this.#pending?.written !== undefined) this.#drainEarly();
      const pending = this.#pending;
      this.#pending = null;
      this.#idle(worker);
      pending?.resolve(reply);
    });
    worker.on("error", (error: Error) => {
      this.#crash(`${failed()}: ${error.message}`, error);
    });
    worker.on("messageerror", () => {
      this.#crash("the save worker sent a message that could not be read");
    });
    worker.on("exit", (code: number) => {
      if (this.#worker === worker) {
        this.#crash(
          started
            ? `the save worker exited with code ${code}`
            : `${failed()}: it exited with code ${code}`,
        );
      }
    });
    this.#worker = worker;
    return worker;
  }

  /** Takes early slabs posted but not delivered yet, if any were posted. */
  #drainEarly(): void {
    const early = this.#early;
    if (early !== null && Atomics.load(early.flag, 0) === 1) {
      this.waitWritten(5000);
    }
  }

  /** The slabs of the request in flight came back before its commit. */
  #written(message: WireWritten): void {
    const written = this.#pending?.written;
    if (written === undefined) return;
    delete this.#pending!.written;
    written(message.buffers);
  }

  /** Nothing in flight: the Worker no longer holds the process open. */
  #idle(worker: NodeWorker): void {
    worker.unref();
    if (!Number.isFinite(this.#idleMs)) return;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#pending !== null) return;
      // Preparing the arena is not idleness: look again later.
      if (this.reserving) this.#idle(worker);
      else this.terminate();
    }, this.#idleMs);
    unrefTimer(timer);
    this.#idleTimer = timer;
  }

  /** Ends the Worker; rejects the request in flight with `message`. */
  #crash(message: string | null, cause?: Error): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const worker = this.#worker;
    this.#worker = null;
    this.#early?.port.close();
    this.#early = null;
    this.#reserver?.close();
    this.#reserver = null;
    if (worker !== null) {
      worker.removeAllListeners();
      // Errors of a Worker being ended are of no interest.
      worker.on("error", () => {});
      Promise.resolve(worker.terminate()).catch(() => {});
    }
    const pending = this.#pending;
    this.#pending = null;
    pending?.reject(
      new Error(
        message ?? "the save worker was ended",
        cause === undefined ? undefined : { cause },
      ),
    );
  }
}
