// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Random-access reads of one object by ranged GETs. The object is seen as
 * blocks of `blockSize` bytes; a read fetches the blocks it touches (up to
 * `concurrency` GETs at once), and when reads go forward (each starting in
 * or right after the block where the last one ended) the next `readAhead`
 * blocks are fetched before they are asked for. Every GET carries
 * `If-Match` with the ETag seen when the object was opened, so a reader
 * never mixes bytes of two versions of an object. Internal.
 *
 * @module
 */

import type { StoreReader } from "../store.ts";
import type { S3Client } from "./_client.ts";

/** Limits how many tasks run at once. */
class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#max) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#active--;
    }
  }
}

/** What an {@linkcode S3Reader} reads and how. */
export interface S3ReaderInit {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly path: string;
  readonly size: number;
  readonly etag: string | null;
  readonly blockSize: number;
  readonly concurrency: number;
  readonly readAhead: number;
}

/** An open object. */
export class S3Reader implements StoreReader {
  readonly path: string;
  readonly size: number;
  readonly #init: S3ReaderInit;
  readonly #limiter: Limiter;
  /** Fetched or fetching blocks, oldest first. */
  readonly #blocks = new Map<number, Promise<Uint8Array>>();
  readonly #pending = new Set<Promise<unknown>>();
  /** The last block the previous read touched (-1: a read at 0 goes forward). */
  #lastBlock = -1;
  #closed = false;

  constructor(init: S3ReaderInit) {
    this.#init = init;
    this.path = init.path;
    this.size = init.size;
    this.#limiter = new Limiter(init.concurrency);
  }

  #fetch(index: number): Promise<Uint8Array> {
    const { blockSize, client, bucket, key, etag } = this.#init;
    const start = index * blockSize;
    const end = Math.min(this.size, start + blockSize) - 1;
    const task = this.#limiter.run(async () => {
      const headers: Record<string, string> = {
        range: `bytes=${start}-${end}`,
      };
      if (etag !== null) headers["if-match"] = etag;
      const reply = await client.send({
        method: "GET",
        bucket,
        key,
        headers,
        action: `read bytes ${start}-${end} of`,
        accept: [412],
      });
      if (reply.status === 412) {
        throw new Error(
          `Cannot read "${this.path}": the object was replaced while it was open`,
        );
      }
      if (reply.body.byteLength !== end - start + 1) {
        throw new Error(
          `Cannot read "${this.path}": asked for bytes ${start}-${end}, got ${reply.body.byteLength} bytes`,
        );
      }
      return reply.body;
    });
    this.#pending.add(task);
    // Seen by whoever awaits the block; marked handled for read-ahead
    // blocks that nobody asks for.
    task.catch(() => {}).finally(() => this.#pending.delete(task));
    return task;
  }

  #block(index: number): Promise<Uint8Array> {
    let block = this.#blocks.get(index);
    if (block === undefined) {
      const fetched = this.#fetch(index);
      block = fetched;
      this.#blocks.set(index, fetched);
      // A failed block is fetched again by the next read that needs it.
      fetched.catch(() => {
        if (this.#blocks.get(index) === fetched) this.#blocks.delete(index);
      });
      // Bounded cache: drop the oldest blocks beyond what may be in use.
      const limit = this.#init.concurrency + this.#init.readAhead + 2;
      for (const old of this.#blocks.keys()) {
        if (this.#blocks.size <= limit) break;
        if (old !== index) this.#blocks.delete(old);
      }
    }
    return block;
  }

  /** Reads `into.byteLength` bytes at `position`. */
  async readAt(position: number, into: Uint8Array): Promise<void> {
    if (this.#closed) {
      throw new Error(`Cannot read "${this.path}": the reader is closed`);
    }
    const length = into.byteLength;
    if (
      !Number.isSafeInteger(position) || position < 0 ||
      position + length > this.size
    ) {
      throw new RangeError(
        `Cannot read ${length} bytes at ${position} of "${this.path}": the object has ${this.size} bytes`,
      );
    }
    if (length === 0) return;
    const { blockSize, readAhead } = this.#init;
    const first = Math.floor(position / blockSize);
    const last = Math.floor((position + length - 1) / blockSize);
    const forward = first === this.#lastBlock || first === this.#lastBlock + 1;
    this.#lastBlock = last;
    const blocks: Promise<Uint8Array>[] = [];
    for (let i = first; i <= last; i++) blocks.push(this.#block(i));
    if (forward) {
      const end = Math.ceil(this.size / blockSize);
      for (let i = last + 1; i <= last + readAhead && i < end; i++) {
        this.#block(i);
      }
    }
    for (let i = first; i <= last; i++) {
      const bytes = await blocks[i - first]!;
      const blockStart = i * blockSize;
      const from = Math.max(position, blockStart);
      const to = Math.min(position + length, blockStart + bytes.byteLength);
      into.set(
        bytes.subarray(from - blockStart, to - blockStart),
        from - position,
      );
      // A block read to its end is done with when reads go forward.
      if (to === blockStart + bytes.byteLength) this.#blocks.delete(i);
    }
  }

  /** Waits for the GETs in flight, then refuses further reads. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#pending]);
    this.#blocks.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
