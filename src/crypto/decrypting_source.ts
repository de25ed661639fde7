// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The decrypting half of MindSpore's block framing: random-access reads of
 * an encrypted file's plaintext, block runs decrypted on demand and ahead
 * of a sequential reader. See `framing.ts` for the layout.
 *
 * @module
 */

import { DecryptionError, EncryptionMismatchError } from "../core/errors.ts";
import type { ByteSource } from "../core/io.ts";
import {
  type EncMode,
  importCipher,
  type PieceCipher,
  validateCipher,
} from "./cipher.ts";
import {
  type _Header,
  _headerLength,
  _looksFramed,
  _parseHeader,
  detectCipher,
} from "./_block_header.ts";
import { type _Block, _index } from "./_block_index.ts";

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

/** Blocks are read from the file in runs of up to this many bytes. */
const _GROUP_BYTES = 1024 * 1024;

/**
 * Blocks per run at most: the cipher calls in flight stay bounded (a file
 * of tiny blocks had tens of thousands at once, whose cost grew faster than
 * their number).
 */
const _GROUP_BLOCKS = 64;

/**
 * Runs of blocks decrypted ahead of a sequential reader. With the 2 MiB
 * pieces of an AES save, 6 held a resume's peak RSS at +65-70 MiB above the
 * network (bench:resume, over its 64 MiB goal), 3 at +47 MiB; in a run at
 * load ~13 the resume times of 6 and 3 overlapped within their noise.
 */
const _READ_AHEAD = 3;

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
