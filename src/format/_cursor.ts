// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A forward cursor over a {@linkcode ByteSource} for parsing headers: reads
 * through a window (64 KiB where fields are dense, 4 KiB after a jump over a
 * tensor's content) so that many small fields cost few reads, and
 * checks every length against a limit before reading or allocating.
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";

const WINDOW = 64 * 1024;
/** Fill size after a jump past the window (over a tensor's content). */
const SMALL_FILL = 4 * 1024;

/** Reports a malformed file; never returns. */
export type Fail = (reason: string) => never;

/** Reads small fields in order from a source. */
export class Cursor {
  /** The next byte to read. */
  pos = 0;
  #source: ByteSource;
  #fail: Fail;
  #window = new Uint8Array(WINDOW);
  #start = 0;
  #length = 0;

  constructor(source: ByteSource, fail: Fail) {
    this.#source = source;
    this.#fail = fail;
  }

  /** Makes `[pos, pos + n)` available in the window (`n` ≤ 64 KiB). */
  async #fill(n: number): Promise<number> {
    const pos = this.pos;
    if (pos >= this.#start && pos + n <= this.#start + this.#length) {
      return pos - this.#start;
    }
    // Headers between large tensors are short and far apart: after a jump
    // over content, read a little; when fields are dense, read a lot.
    const jumped = pos > this.#start + this.#length + WINDOW;
    const length = Math.min(
      Math.max(n, jumped ? SMALL_FILL : WINDOW),
      this.#source.size - pos,
    );
    await this.#source.readAt(pos, this.#window.subarray(0, length));
    this.#start = pos;
    this.#length = length;
    return 0;
  }

  /**
   * Reads a protobuf varint that must end before `limit`.
   *
   * @param limit End (exclusive) of the enclosing message.
   * @param what Names the field in an error.
   * @returns The value; values over 2^53 - 1 are rejected.
   */
  async varint(limit: number, what: string): Promise<number> {
    const avail = Math.min(10, limit - this.pos);
    if (avail <= 0) {
      this.#fail(`${what} at byte ${this.pos}: the data ends before it`);
    }
    const at = await this.#fill(avail);
    const w = this.#window;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < avail; i++) {
      const b = w[at + i]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) {
          this.#fail(
            `${what} at byte ${this.pos}: value ${value} is too large (negative or over 2^53)`,
          );
        }
        this.pos += i + 1;
        return value;
      }
      scale *= 0x80;
    }
    return this.#fail(
      avail === 10
        ? `${what} at byte ${this.pos}: varint longer than 10 bytes`
        : `${what} at byte ${this.pos}: the data ends inside it`,
    );
  }

  /**
   * Reads the varint length of a length-delimited field and checks that the
   * field fits before `limit`.
   *
   * @param limit End (exclusive) of the enclosing message.
   * @param what Names the field in an error.
   * @param where Names what encloses it in an error.
   * @returns The length; the cursor is at the field's first byte.
   */
  async length(
    limit: number,
    what: string,
    where = "its message",
  ): Promise<number> {
    const n = await this.varint(limit, `length of ${what}`);
    if (n > limit - this.pos) {
      this.#fail(
        `${what} at byte ${this.pos} claims ${n} bytes, but only ${
          limit - this.pos
        } remain in ${where}`,
      );
    }
    return n;
  }

  /**
   * Reads `n` bytes into a new array; `n` must have been checked by the
   * caller against the enclosing limit and a cap.
   */
  async bytes(n: number): Promise<Uint8Array> {
    if (n > WINDOW) {
      const out = new Uint8Array(n);
      await this.#source.readAt(this.pos, out);
      this.pos += n;
      return out;
    }
    const at = await this.#fill(n);
    const out = this.#window.slice(at, at + n);
    this.pos += n;
    return out;
  }
}
