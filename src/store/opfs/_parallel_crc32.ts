// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The CRC-32 of a write, computed beside it: chunks of 1 MiB or more are
 * copied to a helper Worker (made from a Blob URL) that computes their CRCs
 * on another core while the writer writes them; smaller chunks are done in
 * place; the parts are joined with `crc32Combine`. Where a Worker cannot be
 * made (a Content Security Policy without `worker-src blob:`), everything is
 * computed in place. Should the helper fail during a write, that write fails
 * (nothing is committed) and the next one starts a new helper. Measured by
 * `deno task bench:opfs`.
 *
 * One helper serves every write of a realm (page or Worker) and is ended
 * after {@linkcode IDLE_MS} without work: a new Worker starts with cold
 * (interpreted) code, which made a helper per write slower than none.
 *
 * @module
 */

import {
  crc32,
  crc32Combine,
  crc32Slice16,
  crc32Tables,
} from "../../core/_crc32.ts";
import { CHECKSUM_ALGORITHM } from "../_checksum.ts";

/** Chunks at least this big go to the helper. */
const OFFLOAD_BYTES = 1024 * 1024;
/**
 * At most this many bytes wait in the helper; the writer then waits. The
 * copies' buffers come back with the answers and are reused, so a write
 * allocates about this much, however big the file.
 */
const MAX_IN_FLIGHT = 16 * 1024 * 1024;

/** A helper without work for this long is ended. */
const IDLE_MS = 30_000;

/**
 * The helper's whole source: the table arrives first (and warms the code
 * up), then buffers whose first `length` bytes are a chunk; each buffer goes
 * back with its CRC.
 */
const HELPER_SOURCE = `"use strict";
const update = (${crc32Slice16.toString()});
let table = null;
onmessage = (event) => {
  if (table === null) {
    table = event.data;
    const warm = new Uint8Array(65536);
    for (let i = 0; i < 64; i++) update(table, i, warm);
    return;
  }
  const { id, buffer, length } = event.data;
  const crc = update(table, 0, new Uint8Array(buffer, 0, length));
  postMessage({ id, crc, buffer }, [buffer]);
};
`;

/** One helper Worker; answers in the order it is asked. */
class CrcHelper {
  #worker: Worker;
  #next = 0;
  #waiting = new Map<
    number,
    { resolve: (crc: number) => void; reject: (e: Error) => void }
  >();
  #failed: Error | null = null;
  /** Buffers back from the helper, free for the next copies. */
  #free: ArrayBuffer[] = [];

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (
      event: MessageEvent<{ id: number; crc: number; buffer: ArrayBuffer }>,
    ) => {
      this.#free.push(event.data.buffer);
      const waiter = this.#waiting.get(event.data.id);
      this.#waiting.delete(event.data.id);
      waiter?.resolve(event.data.crc);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#fail(new Error(`the checksum Worker failed: ${event.message}`));
    };
    worker.postMessage(crc32Tables());
  }

  /** A helper, or `null` where Workers from Blob URLs are not allowed. */
  static create(): CrcHelper | null {
    if (typeof Worker !== "function" || typeof Blob !== "function") {
      return null;
    }
    let url: string | null = null;
    try {
      url = URL.createObjectURL(
        new Blob([HELPER_SOURCE], { type: "text/javascript" }),
      );
      return new CrcHelper(new Worker(url));
    } catch {
      return null;
    } finally {
      if (url !== null) URL.revokeObjectURL(url);
    }
  }

  /** The CRC of `chunk`, copied into a buffer the helper then owns. */
  crc(chunk: Uint8Array): Promise<number> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    const length = chunk.byteLength;
    const i = this.#free.findIndex((b) => b.byteLength >= length);
    const buffer = i >= 0
      ? this.#free.splice(i, 1)[0]!
      : new ArrayBuffer(length);
    new Uint8Array(buffer, 0, length).set(chunk);
    const id = this.#next++;
    const answer = new Promise<number>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
    });
    this.#worker.postMessage({ id, buffer, length }, [buffer]);
    return answer;
  }

  /** Whether the Worker has failed (a new one is then made). */
  get failed(): boolean {
    return this.#failed !== null;
  }

  #fail(error: Error): void {
    this.#failed = error;
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }

  close(): void {
    this.#worker.terminate();
    this.#fail(new Error("the checksum Worker was closed"));
  }
}

/** The realm's helper: `undefined` before the first try, `null` if none. */
let shared: CrcHelper | null | undefined;
let users = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

/** Takes the shared helper (making it on first use); `null` if none. */
function acquireHelper(): CrcHelper | null {
  if (idleTimer !== undefined) clearTimeout(idleTimer);
  idleTimer = undefined;
  if (shared === undefined || shared?.failed === true) {
    shared?.close();
    shared = CrcHelper.create();
    users = 0;
  }
  if (shared !== null) users++;
  return shared;
}

/** Gives the shared helper back; the last user arms its idle end. */
function releaseHelper(helper: CrcHelper): void {
  if (helper !== shared) return;
  if (--users > 0) return;
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    if (users === 0 && shared !== null && shared !== undefined) {
      shared.close();
      shared = undefined;
    }
  }, IDLE_MS);
}

/** A part of the file whose CRC is known or coming. */
interface Part {
  readonly length: number;
  readonly crc: number | Promise<number>;
}

/** A running CRC-32 over the chunks of one write, fed in order. */
export class ParallelCrc32 {
  #parts: Part[] = [];
  /** The CRC and length of the in-place run since the last offloaded part. */
  #runCrc = 0;
  #runLength = 0;
  #helper: CrcHelper | null | undefined;
  /** Offloaded parts not yet answered, oldest first. */
  #inFlight: { length: number; answered: Promise<unknown> }[] = [];
  #inFlightBytes = 0;

  /**
   * @param offload Whether big chunks may go to a helper Worker.
   */
  constructor(offload: boolean) {
    this.#helper = offload ? undefined : null;
  }

  /**
   * Feeds the next chunk; resolves once the caller may reuse it (at once,
   * or after the helper has caught up when too much is waiting).
   */
  async update(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength === 0) return;
    if (this.#helper === undefined && chunk.byteLength >= OFFLOAD_BYTES) {
      this.#helper = acquireHelper();
    }
    const helper = this.#helper;
    if (
      helper === null || helper === undefined ||
      chunk.byteLength < OFFLOAD_BYTES
    ) {
      this.#runCrc = crc32(chunk, this.#runCrc);
      this.#runLength += chunk.byteLength;
      return;
    }
    this.#endRun();
    const crc = helper.crc(chunk);
    // Settled here so that an abandoned write leaves no unhandled rejection;
    // digest() still sees the error through `crc`.
    const answered = crc.then(() => {}, () => {});
    this.#parts.push({ length: chunk.byteLength, crc });
    this.#inFlight.push({ length: chunk.byteLength, answered });
    this.#inFlightBytes += chunk.byteLength;
    while (this.#inFlightBytes > MAX_IN_FLIGHT) {
      const oldest = this.#inFlight.shift()!;
      await oldest.answered;
      this.#inFlightBytes -= oldest.length;
    }
  }

  #endRun(): void {
    if (this.#runLength === 0) return;
    this.#parts.push({ length: this.#runLength, crc: this.#runCrc });
    this.#runCrc = 0;
    this.#runLength = 0;
  }

  /** The checksum of everything fed, as `"crc32:<8 hex digits>"`. */
  async digest(): Promise<string> {
    this.#endRun();
    let crc = 0;
    try {
      for (const part of this.#parts) {
        crc = crc32Combine(crc, await part.crc, part.length);
      }
    } finally {
      this.close();
    }
    return `${CHECKSUM_ALGORITHM}:${crc.toString(16).padStart(8, "0")}`;
  }

  /** Gives the helper back, if any (also after a failed write). */
  close(): void {
    if (this.#helper !== null && this.#helper !== undefined) {
      releaseHelper(this.#helper);
    }
    this.#helper = null;
  }
}
