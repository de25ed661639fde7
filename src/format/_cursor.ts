// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A synchronous forward cursor for parsing headers out of byte windows that
 * an async driver has read: every field is checked against a limit before
 * use, and a read of bytes that no window holds throws
 * {@linkcode NeedBytes}, after which the driver reads them and parses the
 * unit again. Parsing without a promise per field keeps a file of millions
 * of small entries linear with a small constant.
 *
 * @module
 */

/** Reports a malformed file; never returns. */
export type Fail = (reason: string) => never;

/** Thrown when the bytes `[pos, pos + length)` are in no window. */
export class NeedBytes {
  /** First byte needed. */
  readonly pos: number;
  /** Bytes needed from there. */
  readonly length: number;

  /**
   * @param pos First byte needed.
   * @param length Bytes needed from there.
   */
  constructor(pos: number, length: number) {
    this.pos = pos;
    this.length = length;
  }
}

/** Bytes of the source starting at `start`. */
export interface Window {
  /** Where `bytes` start in the source. */
  readonly start: number;
  /** The bytes. */
  readonly bytes: Uint8Array;
}

/** Reads small fields in order from windows of a source. */
export class Cursor {
  /** The next byte to read. */
  pos = 0;
  #fail: Fail;
  #windows: readonly Window[] = [];

  constructor(fail: Fail) {
    this.#fail = fail;
  }

  /** The windows reads are served from. */
  set windows(windows: readonly Window[]) {
    this.#windows = windows;
  }

  /** The window holding `[pos, pos + n)`, and where `pos` is in it. */
  #at(n: number): [Uint8Array, number] {
    const pos = this.pos;
    for (const w of this.#windows) {
      if (pos >= w.start && pos + n <= w.start + w.bytes.byteLength) {
        return [w.bytes, pos - w.start];
      }
    }
    throw new NeedBytes(pos, n);
  }

  /**
   * Reads a protobuf varint that must end before `limit`.
   *
   * @param limit End (exclusive) of the enclosing message.
   * @param what Names the field in an error.
   * @returns The value; values over 2^53 - 1 are rejected.
   */
  varint(limit: number, what: string): number {
    const avail = Math.min(10, limit - this.pos);
    if (avail <= 0) {
      this.#fail(`${what} at byte ${this.pos}: the data ends before it`);
    }
    const [w, at] = this.#at(avail);
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
  length(limit: number, what: string, where = "its message"): number {
    const n = this.varint(limit, `length of ${what}`);
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
   * The next `n` bytes, as a view valid until the windows change; `n` must
   * have been checked by the caller against the enclosing limit and a cap.
   */
  bytes(n: number): Uint8Array {
    const [w, at] = this.#at(n);
    this.pos += n;
    return w.subarray(at, at + n);
  }
}
