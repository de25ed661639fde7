// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The encrypting half of MindSpore's block framing: a {@linkcode ByteSink}
 * that cuts what is written into pieces, encrypts them in parallel and
 * writes the blocks in order. See `framing.ts` for the layout.
 *
 * @module
 */

import type { ByteSink } from "../core/io.ts";
import { giveBuffer, takeBuffer } from "../core/_buffer_pool.ts";
import { checkInteger } from "../core/_validate.ts";
import {
  type EncMode,
  importCipher,
  type PieceCipher,
  validateCipher,
} from "./cipher.ts";
import { _headerLength, MAGIC } from "./_block_header.ts";
import { _positional } from "../core/_positional.ts";

const MIB = 1024 * 1024;

/** The largest piece a writer may use: MindSpore's own piece size. */
export const MAX_PIECE_SIZE: number = 64 * MIB;

/**
 * The piece size {@linkcode createEncryptingSink} uses by default, per mode:
 * 2 MiB for AES-GCM and AES-CBC, 1 MiB for SM4-CBC.
 *
 * Chosen by measurement (one-off saves of 1 GiB, figures in
 * `docs/encryption.md`): with Web Crypto, 2 MiB pieces saved 10-25 % faster
 * than 1 MiB ones (half the calls and half the writes), with the JS thread's
 * longest pause 7-13 ms after a process's first save (that one: up to 32 ms);
 * 3 MiB and larger pieces were slower and
 * paused the thread longer (Web Crypto copies each call's input on the JS
 * thread); pieces of 256 KiB and less spent more in per-call overhead than
 * they saved. SM4 runs in our own Workers, two pieces per message: 1 MiB
 * keeps both busy. The framing costs 48 bytes (GCM) per piece. MindSpore's
 * reader accepts any block up to 64 MiB + 50 bytes.
 */
export const DEFAULT_PIECE_SIZE: Readonly<Record<EncMode, number>> = Object
  .freeze({
    "AES-GCM": 2 * MIB,
    "AES-CBC": 2 * MIB,
    "SM4-CBC": 1 * MIB,
  });

/**
 * Pieces {@linkcode createEncryptingSink} encrypts at the same time by
 * default: 8 (16 MiB in flight with AES pieces, 8 MiB with SM4), enough to keep
 * both cores busy while earlier blocks are being written.
 */
export const DEFAULT_CONCURRENCY: number = 8;

/**
 * Writes queued at most: gather buffers of {@linkcode _WRITE_SIZE} bytes (one
 * being filled while the others wait for, or are in, their write), or blocks
 * of {@linkcode _DIRECT_WRITE_SIZE} and more.
 */
const _WRITE_BUFFERS = 4;

/** Pieces of this size and more are written as they are, not gathered. */
const _DIRECT_WRITE_SIZE = 256 * 1024;

/**
 * Longest stretch, in milliseconds, the encrypting sink runs without letting
 * the event loop turn.
 */
const _MAX_BUSY_MS = 5;

/** Blocks of pieces up to this size are gathered into writes of this size. */
const _WRITE_SIZE = 4 * MIB;

/** Options of {@linkcode createEncryptingSink}. */
export interface EncryptingSinkOptions {
  /** The raw key: 16, 24 or 32 bytes for AES, 16 for SM4. */
  key: Uint8Array;
  /** The cipher. */
  mode: EncMode;
  /**
   * Plaintext bytes per block, 1 to 64 MiB.
   *
   * @default {DEFAULT_PIECE_SIZE[mode]}
   */
  pieceSize?: number;
  /**
   * Pieces encrypted at the same time, 1 to 64.
   *
   * @default {8}
   */
  concurrency?: number;
}

/** A {@linkcode ByteSink} that encrypts; see {@linkcode createEncryptingSink}. */
export interface EncryptingSink extends ByteSink {
  /**
   * Encrypts and writes what is still buffered. Call once, after the last
   * write; the sink cannot be written to afterwards.
   */
  finish(): Promise<void>;
  /**
   * Gives up: drops what is buffered or in flight and frees the sink's
   * buffers and cipher. Use it when the stream fails before `finish()`.
   */
  abort(): void;
}

interface _Job {
  iv: Uint8Array;
  out: Promise<Uint8Array>;
}

/**
 * Wraps `inner` so that everything written to it is encrypted in
 * MindSpore's block framing.
 *
 * Plaintext is gathered into pieces in one reused buffer; each full piece is
 * handed to the cipher at once (Web Crypto copies it and encrypts off the JS
 * thread) and up to `concurrency` pieces are encrypted at the same time.
 * When `inner` takes positional writes (`writeAt`, as the local store's
 * sink does), each block goes to its offset (the sum of the blocks before
 * it) and four blocks are written at once; otherwise blocks are written to
 * `inner` strictly in order, one write at a time. Blocks of pieces up to
 * 4 MiB are gathered into alternating 4 MiB buffers, so `inner` sees 4 MiB
 * writes that run while the next blocks are gathered. Memory stays bounded by about `concurrency + 1` pieces plus
 * 8 MiB. A write that fills a piece waits only when `concurrency` pieces are
 * already in flight (or both write buffers are busy); a failure of `inner`
 * surfaces at a later write or at `finish()`. An empty stream still
 * produces one block, so an encrypted file is never empty.
 *
 * @param inner Where the blocks go.
 * @param options The key, the mode and tuning.
 * @returns The encrypting sink; call `finish()` after the last write.
 * @throws {TypeError} When the key is not a `Uint8Array`, or `pieceSize` or
 * `concurrency` is not a number.
 * @throws {RangeError} When the mode, the key length, `pieceSize` or
 * `concurrency` is out of range.
 *
 * @example Encrypt into memory
 * ```ts
 * import { createEncryptingSink } from "@ckpt/monitor";
 * const blocks: Uint8Array[] = [];
 * const sink = createEncryptingSink(
 *   { write: (c) => { blocks.push(c.slice()); return Promise.resolve(); } },
 *   { key: new Uint8Array(16), mode: "AES-GCM" },
 * );
 * await sink.write(new TextEncoder().encode("hello"));
 * await sink.finish();
 * const size = blocks.reduce((n, b) => n + b.length, 0);
 * console.assert(size === 48 + 5 + 0); // header (with tag) + ciphertext
 * ```
 */
export function createEncryptingSink(
  inner: ByteSink,
  options: EncryptingSinkOptions,
): EncryptingSink {
  const mode = validateCipher(options.key, options.mode);
  const pieceSize = checkInteger(
    options.pieceSize ?? DEFAULT_PIECE_SIZE[mode],
    "pieceSize",
    1,
    "Cannot encrypt",
    MAX_PIECE_SIZE,
  );
  const concurrency = checkInteger(
    options.concurrency ?? DEFAULT_CONCURRENCY,
    "concurrency",
    1,
    "Cannot encrypt",
    64,
  );
  return new _EncryptingSink(
    inner,
    importCipher(options.key, mode),
    mode,
    pieceSize,
    concurrency,
  );
}

class _EncryptingSink implements EncryptingSink {
  #inner: ByteSink;
  #cipherPromise: Promise<PieceCipher>;
  #cipher: PieceCipher | null = null;
  #mode: EncMode;
  #pieceSize: number;
  #concurrency: number;
  #buffer: Uint8Array<ArrayBuffer> | null = null;
  #fill = 0;
  #queue: _Job[] = [];
  #blocks = 0;
  #header: Uint8Array<ArrayBuffer>;
  #error: unknown = undefined;
  #finished = false;
  /** Gathered blocks not yet written, and the other buffer when idle. */
  #out: Uint8Array<ArrayBuffer> | null = null;
  /** Gather buffers whose write has ended. */
  #spare: Uint8Array<ArrayBuffer>[] = [];
  #outFill = 0;
  /** The last write started; writes run one after another, in order. */
  #writing: Promise<void> = Promise.resolve();
  /** Writes started and not yet ended, oldest first. */
  #pending: Promise<void>[] = [];
  /** Whether `inner` takes positional writes (see `ByteSink.writeAt`). */
  #positional: boolean;
  /** The offset of the next block, for positional writes. */
  #position = 0;
  /** When a timer of this sink last ran: the event loop turned (#dispatch). */
  #lastTurn = performance.now();
  /** A zero-delay timer kept armed while the sink works, and its promise. */
  #turnTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #turn: Promise<void> | null = null;
  #turnDone: () => void = () => {};

  constructor(
    inner: ByteSink,
    cipher: Promise<PieceCipher>,
    mode: EncMode,
    pieceSize: number,
    concurrency: number,
  ) {
    this.#inner = inner;
    this.#positional = typeof inner.writeAt === "function";
    this.#cipherPromise = cipher;
    cipher.catch(() => {}); // reported by the first write
    this.#mode = mode;
    this.#pieceSize = pieceSize;
    this.#concurrency = concurrency;
    this.#header = new Uint8Array(_headerLength(mode));
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    try {
      let offset = 0;
      const length = chunk.byteLength;
      while (offset < length) {
        if (
          this.#fill === 0 && length - offset >= this.#pieceSize &&
          chunk.buffer instanceof ArrayBuffer
        ) {
          // A whole piece in the caller's chunk: the cipher copies it anyway.
          await this.#dispatch(
            chunk.subarray(offset, offset + this.#pieceSize),
          );
          offset += this.#pieceSize;
          continue;
        }
        const buffer = this.#buffer ??= new Uint8Array(
          takeBuffer(this.#pieceSize),
        );
        const n = Math.min(this.#pieceSize - this.#fill, length - offset);
        buffer.set(chunk.subarray(offset, offset + n), this.#fill);
        this.#fill += n;
        offset += n;
        if (this.#fill === this.#pieceSize) {
          this.#fill = 0;
          await this.#dispatch(buffer);
        }
      }
    } catch (error) {
      this.#fail(error);
      throw error;
    }
  }

  async finish(): Promise<void> {
    this.#check();
    this.#finished = true;
    try {
      if (this.#fill > 0 || this.#blocks + this.#queue.length === 0) {
        const buffer = this.#buffer ?? new Uint8Array(0);
        await this.#dispatch(buffer.subarray(0, this.#fill));
        this.#fill = 0;
      }
      while (this.#queue.length > 0) await this.#drainOne();
      await this.#flush();
      await this.#waitForRoom(1);
    } catch (error) {
      this.#fail(error);
      throw error;
    } finally {
      this.#release();
    }
  }

  abort(): void {
    this.#finished = true;
    this.#fail(new TypeError("Cannot write to an encrypting sink: aborted"));
  }

  #check(): void {
    if (this.#error !== undefined) throw this.#error;
    if (this.#finished) {
      throw new TypeError("Cannot write to an encrypting sink after finish()");
    }
  }

  #fail(error: unknown): void {
    if (this.#error === undefined) this.#error = error;
    this.#release();
  }

  #release(): void {
    // The timer must not outlive the sink (it would keep the process
    // alive); a write waiting for it goes on.
    clearTimeout(this.#turnTimer);
    this.#turnTimer = undefined;
    this.#turn = null;
    this.#turnDone();
    if (this.#buffer !== null) giveBuffer(this.#buffer.buffer);
    this.#buffer = null;
    // A buffer still being written is left to the garbage collector.
    if (this.#out !== null) giveBuffer(this.#out.buffer);
    for (const spare of this.#spare) giveBuffer(spare.buffer);
    this.#out = null;
    this.#spare = [];
    this.#outFill = 0;
    for (const job of this.#queue) job.out.catch(() => {});
    this.#queue = [];
    this.#cipher?.destroy();
    this.#cipher = null;
  }

  async #dispatch(piece: Uint8Array): Promise<void> {
    const cipher = this.#cipher ??= await this.#cipherPromise;
    const iv = crypto.getRandomValues(new Uint8Array(16));
    // The cipher reads `piece` before returning, so it may be reused now.
    const out = cipher.encrypt(piece, iv);
    out.catch(() => {}); // awaited in order by #drainOne
    this.#queue.push({ iv, out });
    while (this.#queue.length >= this.#concurrency) await this.#drainOne();
    await this.#letLoopTurn();
  }

  /**
   * When the cipher keeps up, every await of the stream finds its promise
   * settled and the stream runs on in microtasks, so the training loop's
   * timers and I/O callbacks would wait for a whole tensor. A zero-delay
   * timer is kept armed: when it has not run for {@linkcode _MAX_BUSY_MS},
   * the event loop has not turned, and the sink waits for it. Waiting for a
   * fresh timer each time instead cost ~2 ms per wait.
   */
  async #letLoopTurn(): Promise<void> {
    if (this.#turn === null) {
      this.#turn = new Promise<void>((resolve) => {
        this.#turnDone = resolve;
        this.#turnTimer = setTimeout(() => {
          this.#turn = null;
          this.#turnTimer = undefined;
          this.#lastTurn = performance.now();
          resolve();
        }, 0);
      });
    }
    if (performance.now() - this.#lastTurn >= _MAX_BUSY_MS) await this.#turn;
  }

  async #drainOne(): Promise<void> {
    const job = this.#queue.shift()!;
    const sealed = await job.out;
    const tagLength = this.#mode === "AES-GCM" ? 16 : 0;
    const cipherLength = sealed.byteLength - tagLength;
    const header = this.#header;
    const view = new DataView(header.buffer);
    view.setUint32(0, MAGIC[this.#mode], true);
    let at = 4;
    if (tagLength > 0) {
      header.set(sealed.subarray(cipherLength), at);
      at += 16;
    }
    view.setInt32(at, 24 + cipherLength, true);
    view.setInt32(at + 4, 16, true);
    header.set(job.iv, at + 8);
    view.setInt32(at + 24, cipherLength, true);
    const body = sealed.subarray(0, cipherLength);
    if (this.#pieceSize >= _DIRECT_WRITE_SIZE) {
      // Large blocks go to the file as they are, header then ciphertext: no
      // copy on the JS thread, which drives the whole pipeline. A block's
      // buffer goes back to the cipher once it is written.
      const cipher = this.#cipher;
      this.#enqueue(header.slice());
      this.#enqueue(body, () => cipher?.recycle(sealed));
      await this.#waitForRoom(
        2 * (this.#positional ? _positional.blocks : _WRITE_BUFFERS),
      );
    } else {
      // Small blocks are gathered into reused buffers and written while the
      // next ones are being gathered: fewer, larger writes, and the cipher
      // never waits for the disk unless every buffer is taken.
      if (this.#outFill + header.byteLength + body.byteLength > _WRITE_SIZE) {
        await this.#flush();
      }
      const out = this.#out ??= this.#spare.pop() ??
        new Uint8Array(takeBuffer(_WRITE_SIZE));
      out.set(header, this.#outFill);
      out.set(body, this.#outFill + header.byteLength);
      this.#outFill += header.byteLength + body.byteLength;
      this.#cipher?.recycle(sealed);
    }
    this.#blocks++;
  }

  /** Queues the gathered blocks for writing, then waits for room. */
  async #flush(): Promise<void> {
    const out = this.#out;
    if (out !== null && this.#outFill > 0) {
      this.#enqueue(
        out.subarray(0, this.#outFill),
        () => this.#spare.push(out),
      );
      this.#out = null;
      this.#outFill = 0;
    }
    await this.#waitForRoom(_WRITE_BUFFERS - 1);
  }

  /**
   * Writes `chunk` after the writes queued before it (with positional
   * writes: at its offset, while earlier ones may still run), then runs
   * `after`. A failed write skips every later one (positional: is reported
   * however later ones end); the failure is reported by the next wait for
   * room, or by `finish()`.
   */
  #enqueue(chunk: Uint8Array, after?: () => void): void {
    if (this.#positional) {
      const at = this.#position;
      this.#position += chunk.byteLength;
      const written = this.#inner.writeAt!(at, chunk);
      const done = after === undefined ? written : written.then(after);
      done.catch(() => {});
      this.#pending.push(done);
      return;
    }
    const written = this.#writing.then(() => this.#inner.write(chunk));
    const done = after === undefined ? written : written.then(after);
    done.catch(() => {});
    this.#writing = done;
    this.#pending.push(done);
  }

  /** Waits until fewer than `limit` writes are queued or running. */
  async #waitForRoom(limit: number): Promise<void> {
    while (this.#pending.length >= limit) await this.#pending.shift();
  }
}
