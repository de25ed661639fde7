// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * MindSpore's encrypted checkpoint framing, as a stream.
 *
 * The plaintext file body is cut into pieces; each piece is encrypted on its
 * own with a fresh random 16-byte IV and written as one block:
 *
 * ```text
 * u32 LE  magic       0x7F3A5ED8 AES-GCM | 0x7F3A5ED9 AES-CBC | 0x7F3A5EDA SM4-CBC
 * [16]    tag         AES-GCM only
 * i32 LE  block_len   = 4 + 16 + 4 + cipher_len
 * i32 LE  iv_len      = 16
 * [16]    iv
 * i32 LE  cipher_len
 * [cipher_len] ciphertext
 * ```
 *
 * Blocks follow each other with no file header or trailer. MindSpore writes
 * 64 MiB pieces; its reader takes each block's length from the block header
 * and accepts blocks up to 64 MiB + 50 bytes, so smaller pieces, which
 * encrypt in parallel and keep memory low, still give files MindSpore reads.
 *
 * What the framing cannot detect: every block is sealed on its own, and
 * nothing binds a block to its position, so blocks that are reordered, or
 * whole blocks that are removed from the end, decrypt without error. The
 * format parser (and the checksum in `meta.json`) must catch those; the load
 * functions report such parse failures of an encrypted file as a
 * {@linkcode DecryptionError}.
 *
 * @module
 */

import { DecryptionError, EncryptionMismatchError } from "../core/errors.ts";
import type { ByteSink, ByteSource } from "../core/io.ts";
import { describeValue as describe } from "../core/_describe.ts";
import { giveBuffer, takeBuffer } from "./_buffer_pool.ts";
import {
  type EncMode,
  importCipher,
  type PieceCipher,
  validateCipher,
} from "./cipher.ts";

const MAGIC: Readonly<Record<EncMode, number>> = {
  "AES-GCM": 0x7F3A5ED8,
  "AES-CBC": 0x7F3A5ED9,
  "SM4-CBC": 0x7F3A5EDA,
};

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

/** The largest `cipher_len` MindSpore's reader accepts: 64 MiB + 50 bytes. */
const MAX_CIPHER_LEN = 64 * MIB + 50;

function _headerLength(mode: EncMode): number {
  return mode === "AES-GCM" ? 48 : 32;
}

/**
 * The cipher a file is encrypted with, read from the magic number in its
 * first four bytes.
 *
 * @param firstBytes The start of the file (at least 4 bytes to detect
 * anything).
 * @returns The mode, or `null` when the bytes are not a block magic (a plain
 * file).
 *
 * @example
 * ```ts
 * import { detectCipher } from "@ckpt/monitor";
 * console.assert(detectCipher(new Uint8Array([0xd8, 0x5e, 0x3a, 0x7f])) === "AES-GCM");
 * console.assert(detectCipher(new Uint8Array([0x0a, 0x10, 0, 0])) === null);
 * ```
 */
export function detectCipher(firstBytes: Uint8Array): EncMode | null {
  if (firstBytes.byteLength < 4) return null;
  const magic = new DataView(
    firstBytes.buffer,
    firstBytes.byteOffset,
    4,
  ).getUint32(0, true);
  for (const mode of Object.keys(MAGIC) as EncMode[]) {
    if (MAGIC[mode] === magic) return mode;
  }
  return null;
}

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

function _checkInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min ||
    value > max
  ) {
    throw new RangeError(
      `Cannot encrypt: ${name} must be an integer from ${min} to ${max}, received ${
        describe(value)
      }`,
    );
  }
  return value;
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
 * Blocks are written to `inner` strictly in order, one write at a time;
 * blocks of pieces up to 4 MiB are gathered into two alternating 4 MiB
 * buffers, so `inner` sees 4 MiB writes that run while the next blocks are
 * gathered. Memory stays bounded by about `concurrency + 1` pieces plus
 * 8 MiB. A write that fills a piece waits only when `concurrency` pieces are
 * already in flight (or both write buffers are busy); a failure of `inner`
 * surfaces at a later write or at `finish()`. An empty stream still
 * produces one block, so an encrypted file is never empty.
 *
 * @param inner Where the blocks go.
 * @param options The key, the mode and tuning.
 * @returns The encrypting sink; call `finish()` after the last write.
 * @throws {TypeError} When the key is not a `Uint8Array`.
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
  const pieceSize = _checkInteger(
    "pieceSize",
    options.pieceSize ?? DEFAULT_PIECE_SIZE[mode],
    1,
    MAX_PIECE_SIZE,
  );
  const concurrency = _checkInteger(
    "concurrency",
    options.concurrency ?? DEFAULT_CONCURRENCY,
    1,
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
      await this.#writing;
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
      await this.#waitForRoom(2 * _WRITE_BUFFERS);
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
   * Writes `chunk` after the writes queued before it, then runs `after`. A
   * failed write skips every later one; the failure is reported by the next
   * wait for room, or by `finish()`.
   */
  #enqueue(chunk: Uint8Array, after?: () => void): void {
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

/** The plaintext of an encrypted file; see {@linkcode openDecryptingSource}. */
export interface DecryptingSource extends ByteSource {
  /**
   * Frees the cached blocks and the cipher (and stops SM4 workers). Reads
   * reject afterwards. Does not close the underlying source.
   */
  close(): void;
}

/** Options of {@linkcode openDecryptingSource}. */
export interface DecryptingSourceOptions {
  /** The raw key. */
  key: Uint8Array;
  /** The cipher the file is expected to use. */
  mode: EncMode;
  /** The file's name, for error messages. */
  path: string;
}

interface _Block {
  /** Offset of the block (its header) in the file. */
  fileAt: number;
  cipherLength: number;
  /** Offset of the block's plaintext in the decrypted stream. */
  plainAt: number;
  plainLength: number;
}

/** What one block header says. */
interface _Header {
  cipherLength: number;
  iv: Uint8Array;
  /** GCM tag, else empty. */
  tag: Uint8Array;
}

/**
 * Reads and checks the block header at `at` of `bytes`: magic against
 * `mode`, IV length, `block_len` against `cipher_len`, `cipher_len` bounds.
 */
function _parseHeader(bytes: Uint8Array, at: number, mode: EncMode): _Header {
  const gcm = mode === "AES-GCM";
  const view = new DataView(bytes.buffer, bytes.byteOffset + at);
  if (view.getUint32(0, true) !== MAGIC[mode]) throw new Error("magic");
  let p = 4;
  const tag = gcm ? bytes.slice(at + 4, at + 20) : new Uint8Array(0);
  if (gcm) p += 16;
  const blockLength = view.getInt32(p, true);
  const ivLength = view.getInt32(p + 4, true);
  const iv = bytes.slice(at + p + 8, at + p + 24);
  const cipherLength = view.getInt32(p + 24, true);
  if (ivLength !== 16) throw new Error("iv_len");
  if (cipherLength < 0 || cipherLength > MAX_CIPHER_LEN) {
    throw new Error("cipher_len");
  }
  if (blockLength !== 24 + cipherLength) throw new Error("block_len");
  if (!gcm && (cipherLength === 0 || cipherLength % 16 !== 0)) {
    throw new Error("cipher_len not a multiple of 16");
  }
  return { cipherLength, iv, tag };
}

/**
 * Opens an encrypted file for random-access reads of its plaintext.
 *
 * Every block header is read and checked first (magic against `mode`, IV
 * length, `block_len`, `cipher_len` bounds, truncation; for CBC modes the
 * padding of each block's last 16 bytes), which gives an index from
 * plaintext offsets to blocks. Blocks are then decrypted (and GCM tags
 * verified) when a read touches them; the last few are cached, and a read
 * that continues where the previous one ended starts decrypting the next
 * block in parallel. Every failure of any check is the same
 * {@linkcode DecryptionError}.
 *
 * @param inner The encrypted bytes.
 * @param options The key, the expected mode and the file's name.
 * @returns The plaintext as a {@linkcode ByteSource}; `close()` it when done.
 * @throws {TypeError} When the key is not a `Uint8Array`.
 * @throws {RangeError} When the mode is unknown or the key length wrong.
 * @throws {EncryptionMismatchError} When the file is not encrypted.
 * @throws {DecryptionError} When the file cannot be decrypted with this key
 * and mode (rejected here or by a later `readAt`).
 *
 * @example Decrypt what an encrypting sink wrote
 * ```ts
 * import { createEncryptingSink, openDecryptingSource } from "@ckpt/monitor";
 * const key = crypto.getRandomValues(new Uint8Array(16));
 * const parts: Uint8Array[] = [];
 * const sink = createEncryptingSink(
 *   { write: (c) => { parts.push(c.slice()); return Promise.resolve(); } },
 *   { key, mode: "AES-CBC", pieceSize: 1024 },
 * );
 * await sink.write(new Uint8Array(3000).fill(7));
 * await sink.finish();
 * const file = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
 * parts.reduce((at, p) => (file.set(p, at), at + p.length), 0);
 * const source = await openDecryptingSource({
 *   size: file.length,
 *   readAt: (at, into) => Promise.resolve(into.set(file.subarray(at, at + into.length))),
 * }, { key, mode: "AES-CBC", path: "mem" });
 * const into = new Uint8Array(10);
 * await source.readAt(2000, into);
 * console.assert(source.size === 3000 && into.every((b) => b === 7));
 * source.close();
 * ```
 */
export async function openDecryptingSource(
  inner: ByteSource,
  options: DecryptingSourceOptions,
): Promise<DecryptingSource> {
  const mode = validateCipher(options.key, options.mode);
  const path = options.path;
  const head = new Uint8Array(Math.min(48, inner.size));
  await inner.readAt(0, head);
  const fileMode = detectCipher(head);
  if (fileMode === null) {
    if (_looksFramed(head)) throw new DecryptionError(path);
    throw new EncryptionMismatchError(path, null, mode);
  }
  if (fileMode !== mode) throw new DecryptionError(path);
  const cipher = await importCipher(options.key, mode);
  try {
    const blocks = await _index(inner, cipher, mode);
    const source = new _DecryptingSource(inner, cipher, blocks, path);
    try {
      await source.verifyFirst();
    } catch (error) {
      source.close();
      throw error;
    }
    return source;
  } catch (error) {
    cipher.destroy();
    throw new DecryptionError(path, { cause: error });
  }
}

/**
 * Whether bytes that start with no valid magic still look like a damaged
 * block: a prefix of a magic (a file cut short), three of the four magic
 * bytes, or a GCM or CBC header whose lengths agree. A plain `.ckpt` or
 * safetensors file does none of these.
 */
function _looksFramed(head: Uint8Array): boolean {
  if (head.byteLength === 0) return false;
  const magics = Object.values(MAGIC).map((
    m,
  ) => [m & 0xff, (m >>> 8) & 0xff, (m >>> 16) & 0xff, m >>> 24]);
  for (const magic of magics) {
    const n = Math.min(4, head.byteLength);
    let same = 0;
    for (let i = 0; i < n; i++) if (head[i] === magic[i]) same++;
    if (same === n && n < 4) return true;
    if (same >= 3) return true;
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  for (const at of [4, 20]) { // block_len of a CBC / GCM header
    if (at + 28 > head.byteLength) continue;
    const blockLength = view.getInt32(at, true);
    const ivLength = view.getInt32(at + 4, true);
    const cipherLength = view.getInt32(at + 24, true);
    if (ivLength === 16 && blockLength === 24 + cipherLength) return true;
  }
  return false;
}

/** Files of more blocks than this are first read as evenly cut. */
const _UNIFORM_MIN_BLOCKS = 8;

/**
 * The index of every block: offsets in the file and in the plaintext.
 *
 * Writers cut the plaintext into equal pieces (ours, MindSpore's), so every
 * block but the last has the same length. For a file of many blocks, the
 * first and the last header are read and the rest is predicted from them;
 * the prediction holds only when the last header sits exactly where it
 * says and the lengths add up to the file's size. Every predicted header is
 * read and checked when its block is decrypted (a header that differs is a
 * {@linkcode DecryptionError}). Any other file has every header read here.
 */
async function _index(
  inner: ByteSource,
  cipher: PieceCipher,
  mode: EncMode,
): Promise<_Block[]> {
  const uniform = await _uniformIndex(inner, mode);
  const blocks = uniform ?? await _scan(inner, mode);
  if (mode !== "AES-GCM") {
    await _cbcLengths(inner, cipher, blocks, uniform !== null);
  }
  return blocks;
}

async function _uniformIndex(
  inner: ByteSource,
  mode: EncMode,
): Promise<_Block[] | null> {
  const headerLength = _headerLength(mode);
  if (inner.size < headerLength) return null;
  const header = new Uint8Array(headerLength);
  await inner.readAt(0, header);
  const first = _parseHeader(header, 0, mode).cipherLength;
  const stride = headerLength + first;
  const count = Math.ceil(inner.size / stride);
  if (count <= _UNIFORM_MIN_BLOCKS) return null;
  const lastAt = (count - 1) * stride;
  if (lastAt + headerLength > inner.size) return null;
  await inner.readAt(lastAt, header);
  let last: number;
  try {
    last = _parseHeader(header, 0, mode).cipherLength;
  } catch {
    return null;
  }
  if (last > first || lastAt + headerLength + last !== inner.size) return null;
  const blocks: _Block[] = [];
  for (let k = 0; k < count; k++) {
    const cipherLength = k === count - 1 ? last : first;
    blocks.push({
      fileAt: k * stride,
      cipherLength,
      plainAt: k * first,
      plainLength: cipherLength, // CBC: fixed by _cbcLengths
    });
  }
  return blocks;
}

/** Block headers are read in windows of this size. */
const _SCAN_WINDOW = 1024 * 1024;

async function _scan(inner: ByteSource, mode: EncMode): Promise<_Block[]> {
  const headerLength = _headerLength(mode);
  // One read per window, not per header: a file of many small blocks.
  const window = new Uint8Array(Math.min(_SCAN_WINDOW, inner.size));
  let windowAt = 0;
  let windowLength = 0;
  const blocks: _Block[] = [];
  let at = 0;
  let plainAt = 0;
  while (at < inner.size) {
    if (at + headerLength > inner.size) throw new Error("truncated header");
    if (at + headerLength > windowAt + windowLength) {
      windowAt = at;
      windowLength = Math.min(window.byteLength, inner.size - at);
      await inner.readAt(at, window.subarray(0, windowLength));
    }
    const { cipherLength } = _parseHeader(window, at - windowAt, mode);
    const cipherAt = at + headerLength;
    if (cipherAt + cipherLength > inner.size) throw new Error("truncated");
    blocks.push({
      fileAt: at,
      cipherLength,
      plainAt,
      plainLength: cipherLength, // CBC: fixed by _cbcLengths
    });
    plainAt += cipherLength;
    at = cipherAt + cipherLength;
  }
  if (blocks.length === 0) throw new Error("no blocks");
  return blocks;
}

/**
 * The plaintext length of a CBC block is known only from its padding:
 * decrypts a block's last 16 bytes (the cipher checks the padding), chained
 * to the 16 bytes before them (or to the IV). Done for every block, except
 * in a file read as evenly cut, where the first block tells the length of
 * every block but the last (checked again when each is decrypted): CBC
 * files of more than eight blocks must hold equal pieces but the last, as
 * ours and MindSpore's do.
 */
async function _cbcLengths(
  inner: ByteSource,
  cipher: PieceCipher,
  blocks: _Block[],
  uniform: boolean,
): Promise<void> {
  const headerLength = _headerLength(cipher.mode);
  const probe = uniform ? [0, blocks.length - 1] : blocks.map((_, i) => i);
  const header = new Uint8Array(headerLength);
  const tail = new Uint8Array(32);
  const pending: Promise<number>[] = [];
  for (const i of probe) {
    const block = blocks[i]!;
    const n = block.cipherLength;
    await inner.readAt(block.fileAt, header);
    let iv = _parseHeader(header, 0, cipher.mode).iv;
    if (n === 16) {
      await inner.readAt(block.fileAt + headerLength, tail.subarray(16));
    } else {
      await inner.readAt(block.fileAt + headerLength + n - 32, tail);
      iv = tail.subarray(0, 16);
    }
    // Both arguments are read before decrypt returns. The next file read
    // is awaited before `Promise.all` sees this promise: it is marked
    // handled now, so a wrong key rejects here, not as an unhandled
    // rejection that ends the process.
    const length = cipher.decrypt(tail.subarray(16), iv).then((last) =>
      n - 16 + last.byteLength
    );
    length.catch(() => {});
    pending.push(length);
  }
  const lengths = await Promise.all(pending);
  const middle = lengths[0]!;
  let plainAt = 0;
  blocks.forEach((block, i) => {
    block.plainAt = plainAt;
    block.plainLength = uniform
      ? (i === blocks.length - 1 ? lengths[1]! : middle)
      : lengths[i]!;
    plainAt += block.plainLength;
  });
}

/** Blocks are read from the file in runs of up to this many bytes. */
const _GROUP_BYTES = 1024 * 1024;

/**
 * Blocks per run at most: the cipher calls in flight stay bounded (a file
 * of tiny blocks had tens of thousands at once, whose cost grew faster than
 * their number).
 */
const _GROUP_BLOCKS = 64;

/** Runs of blocks decrypted ahead of a sequential reader. */
const _READ_AHEAD = 6;

/** Consecutive blocks read from the file at once. */
interface _Group {
  /** Index of its first block. */
  first: number;
  /** Index after its last block. */
  end: number;
}

class _DecryptingSource implements DecryptingSource {
  readonly size: number;
  #inner: ByteSource;
  #cipher: PieceCipher;
  #blocks: _Block[];
  #groups: _Group[];
  /** Index of the group of each block. */
  #groupOf: Uint32Array;
  #path: string;
  #cache = new Map<number, Promise<Uint8Array[]>>();
  #cacheLimit = _READ_AHEAD + 2;
  #io: Promise<void> = Promise.resolve();
  #readBuffer: Uint8Array<ArrayBuffer> | null = null;
  #nextExpected = -1;
  #closed = false;

  constructor(
    inner: ByteSource,
    cipher: PieceCipher,
    blocks: _Block[],
    path: string,
  ) {
    this.#inner = inner;
    this.#cipher = cipher;
    this.#blocks = blocks;
    this.#path = path;
    const last = blocks[blocks.length - 1]!;
    this.size = last.plainAt + last.plainLength;
    const headerLength = _headerLength(cipher.mode);
    this.#groups = [];
    this.#groupOf = new Uint32Array(blocks.length);
    let group: _Group = { first: 0, end: 0 };
    let bytes = 0;
    blocks.forEach((block, i) => {
      const span = headerLength + block.cipherLength;
      if (
        group.end > group.first &&
        (bytes + span > _GROUP_BYTES ||
          group.end - group.first >= _GROUP_BLOCKS)
      ) {
        this.#groups.push(group);
        group = { first: i, end: i };
        bytes = 0;
      }
      group.end = i + 1;
      bytes += span;
      this.#groupOf[i] = this.#groups.length;
    });
    this.#groups.push(group);
  }

  close(): void {
    this.#closed = true;
    for (const run of this.#cache.values()) this.#retire(run);
    this.#cache.clear();
    this.#readBuffer = null;
    this.#cipher.destroy();
  }

  async readAt(position: number, into: Uint8Array): Promise<void> {
    if (this.#closed) {
      throw new TypeError(`Cannot read "${this.#path}": it is closed`);
    }
    const end = position + into.byteLength;
    if (!Number.isInteger(position) || position < 0 || end > this.size) {
      throw new RangeError(
        `Cannot read bytes ${position}..${end} of "${this.#path}": it holds ${this.size} bytes`,
      );
    }
    if (into.byteLength === 0) return;
    let i = this.#find(position);
    const sequential = position === this.#nextExpected;
    this.#nextExpected = end;
    let done = 0;
    while (done < into.byteLength) {
      const g = this.#groupOf[i]!;
      const group = this.#groups[g]!;
      const plain = this.#get(g);
      if (sequential || done > 0) {
        // Reading on: decrypt the next runs in parallel with this one.
        for (let k = 1; k <= _READ_AHEAD; k++) this.#get(g + k);
      }
      let pieces: Uint8Array[];
      try {
        pieces = await plain;
      } catch (error) {
        throw new DecryptionError(this.#path, { cause: error });
      }
      // Copied before this continuation yields: a run that left the cache
      // meanwhile is recycled by a reaction registered after this await's,
      // so it runs after this copy (see #retire).
      for (; i < group.end && done < into.byteLength; i++) {
        const bytes = pieces[i - group.first]!;
        const from = position + done - this.#blocks[i]!.plainAt;
        const n = Math.min(bytes.byteLength - from, into.byteLength - done);
        into.set(bytes.subarray(from, from + n), done);
        done += n;
      }
    }
  }

  /**
   * Gives the plaintext buffers of a run that left the cache back to the
   * cipher (Web Crypto's are freed at once, SM4's reused by the next
   * blocks: fresh memory is what costs most). A read still waiting for the
   * run awaited it before this reaction was registered, and a promise runs
   * its reactions in order, so every such read copies first.
   */
  #retire(run: Promise<Uint8Array[]>): void {
    const cipher = this.#cipher;
    run.then((pieces) => {
      for (const piece of pieces) cipher.recycle(piece);
    }, () => {});
  }

  /** Index of the block holding plaintext byte `position`. */
  #find(position: number): number {
    let lo = 0;
    let hi = this.#blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#blocks[mid]!.plainAt <= position) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The plaintexts of group `g`, decrypted once while they stay cached. */
  #get(g: number): Promise<Uint8Array[]> {
    if (g >= this.#groups.length) return Promise.resolve([]);
    const cached = this.#cache.get(g);
    if (cached !== undefined) {
      this.#cache.delete(g);
      this.#cache.set(g, cached);
      return cached;
    }
    const plain = this.#decrypt(this.#groups[g]!);
    plain.catch(() => {});
    this.#cache.set(g, plain);
    while (this.#cache.size > this.#cacheLimit) {
      const [oldest, run] = this.#cache.entries().next().value!;
      this.#cache.delete(oldest);
      this.#retire(run);
    }
    return plain;
  }

  #decrypt(group: _Group): Promise<Uint8Array[]> {
    // Reads from `inner` go one at a time, into one reused buffer; the
    // cipher reads its input before returning, so the decryption of several
    // runs still overlaps.
    const mode = this.#cipher.mode;
    const headerLength = _headerLength(mode);
    const tagLength = this.#cipher.tagLength;
    const started = this.#io.then(async () => {
      const firstBlock = this.#blocks[group.first]!;
      const lastBlock = this.#blocks[group.end - 1]!;
      const from = firstBlock.fileAt;
      const span = lastBlock.fileAt + headerLength + lastBlock.cipherLength -
        from;
      // Room for the GCM tag after the last ciphertext.
      const total = span + tagLength;
      if (this.#readBuffer === null || this.#readBuffer.byteLength < total) {
        this.#readBuffer = new Uint8Array(total);
      }
      const buffer = this.#readBuffer;
      await this.#inner.readAt(from, buffer.subarray(0, span));
      // Every header first: a GCM tag is then copied over the next header.
      const headers: _Header[] = [];
      for (let i = group.first; i < group.end; i++) {
        const block = this.#blocks[i]!;
        const header = _parseHeader(buffer, block.fileAt - from, mode);
        if (header.cipherLength !== block.cipherLength) {
          throw new Error("block length differs from the index");
        }
        headers.push(header);
      }
      return headers.map((header, k) => {
        const block = this.#blocks[group.first + k]!;
        const at = block.fileAt - from + headerLength;
        const sealed = buffer.subarray(at, at + block.cipherLength + tagLength);
        if (tagLength > 0) sealed.set(header.tag, block.cipherLength);
        const out = this.#cipher.decrypt(sealed, header.iv);
        out.catch(() => {});
        return { out, block };
      });
    });
    this.#io = started.then(() => {}, () => {});
    return started.then((jobs) =>
      Promise.all(jobs.map(async ({ out, block }) => {
        const plain = await out;
        if (plain.byteLength !== block.plainLength) {
          throw new Error("plaintext length differs from the index");
        }
        return plain;
      }))
    );
  }

  /** Decrypts the first block now, so a wrong key fails at open. */
  async verifyFirst(): Promise<void> {
    await this.#get(0);
  }
}
