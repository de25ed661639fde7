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

import { Worker as NodeWorker } from "node:worker_threads";
import { SAVE_WORKER_CODE } from "./_save_worker_code.ts";
import type { WireReady, WireReply, WireRequest } from "./_save_wire.ts";

let bundled: URL | null = null;

/** The Worker's bundled code as a `data:` URL, made once. */
function bundledUrl(): URL {
  return bundled ??= new URL(
    `data:text/javascript,${encodeURIComponent(SAVE_WORKER_CODE)}`,
  );
}

/**
 * Lets a timer not hold the process open: Node.js's timers are objects with
 * `unref()`, Deno's are numbers given to `Deno.unrefTimer`.
 */
function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const t = timer as unknown as { unref?: () => void };
  if (typeof t === "object" && t !== null && typeof t.unref === "function") {
    t.unref();
    return;
  }
  (globalThis as unknown as { Deno?: { unrefTimer(id: unknown): void } })
    .Deno
    ?.unrefTimer(timer);
}

interface Pending {
  resolve(reply: WireReply): void;
  reject(error: Error): void;
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
  request(request: WireRequest, transfer: ArrayBuffer[]): Promise<WireReply> {
    return new Promise((resolve, reject) => {
      if (this.#pending !== null) {
        reject(new TypeError("the save worker is already busy"));
        return;
      }
      try {
        const worker = this.#start();
        this.#pending = { resolve, reject };
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
   * Starts the Worker now if it is not running, so that it boots while the
   * caller does something else (e.g. copies a snapshot); it holds the
   * process open only once a request is sent.
   */
  warm(): void {
    if (this.#worker !== null) return;
    this.#idle(this.#start());
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
    worker.on("message", (reply: WireReply | WireReady) => {
      if ("ready" in reply) {
        started = true;
        return;
      }
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

  /** Nothing in flight: the Worker no longer holds the process open. */
  #idle(worker: NodeWorker): void {
    worker.unref();
    if (!Number.isFinite(this.#idleMs)) return;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#pending === null) this.terminate();
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
