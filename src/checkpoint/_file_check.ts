// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Verifies the CRC-32 a checkpoint file carries over its own bytes (see
 * {@linkcode FileCheck}) while its entries are read, in any order: each
 * range's CRC is taken as its bytes arrive, and once every byte of the
 * covered span has been seen the parts are combined and compared.
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";
import { crc32, crc32Combine } from "../core/_crc32.ts";
import type { ByteRange, FileCheck, ParsedEntry } from "../format/entry.ts";

/** Header bytes are read for their CRC in windows of this size. */
const WINDOW = 1024 * 1024;

/** The running verification of one file's check. */
export class FileCheckTracker {
  #expected: number;
  /** Every covered range, with its CRC once known. */
  #crcs = new Map<ByteRange, number | undefined>();
  #missing = 0;
  #others: readonly ByteRange[];
  #result: string | null | undefined = undefined;

  /**
   * @param check What the parser found.
   * @param entries The entries whose content ranges complete the span.
   */
  constructor(check: FileCheck, entries: readonly ParsedEntry[]) {
    this.#expected = check.expected;
    this.#others = check.others;
    for (const r of check.others) this.#crcs.set(r, r.crc);
    for (const e of entries) {
      for (const r of e.ranges) this.#crcs.set(r, undefined);
    }
    for (const crc of this.#crcs.values()) {
      if (crc === undefined) this.#missing++;
    }
  }

  /** Reads the header ranges whose CRC the parser did not know. */
  async readOthers(source: ByteSource): Promise<void> {
    const todo = this.#others.filter((r) => this.#crcs.get(r) === undefined);
    let window = new Uint8Array(0);
    let start = 0;
    let length = 0;
    for (const r of todo) {
      if (r.offset < start || r.offset + r.length > start + length) {
        length = Math.min(Math.max(WINDOW, r.length), source.size - r.offset);
        if (window.byteLength < length) window = new Uint8Array(length);
        start = r.offset;
        await source.readAt(start, window.subarray(0, length));
      }
      const at = r.offset - start;
      this.record(r, window.subarray(at, at + r.length));
    }
  }

  /** Takes the CRC of one range's bytes, as they were read. */
  record(range: ByteRange, bytes: Uint8Array): void {
    if (!this.#crcs.has(range)) return;
    if (this.#crcs.get(range) === undefined) this.#missing--;
    this.#crcs.set(range, crc32(bytes));
  }

  /**
   * What is wrong, once every range has been seen: `null` when the CRC
   * matches, a reason when it does not; `undefined` while ranges are
   * missing.
   */
  result(): string | null | undefined {
    if (this.#result !== undefined || this.#missing > 0) return this.#result;
    const ranges = [...this.#crcs.keys()].sort((a, b) =>
      a.offset - b.offset || a.length - b.length
    );
    let crc = 0;
    let at = 0;
    for (const r of ranges) {
      if (r.offset !== at) {
        this.#result =
          `its check covers bytes that do not follow each other (at byte ${at})`;
        return this.#result;
      }
      crc = crc32Combine(crc, this.#crcs.get(r)!, r.length);
      at += r.length;
    }
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    this.#result = crc === this.#expected
      ? null
      : `its bytes have CRC-32 ${hex(crc)}, the check it carries says ${
        hex(this.#expected)
      }: the file was modified after it was written`;
    return this.#result;
  }
}
