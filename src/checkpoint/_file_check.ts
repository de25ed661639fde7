// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Verifies the CRC-32 a checkpoint file carries over its own bytes (see
 * {@linkcode FileCheck}) while its entries are read, in any order: each
 * range's CRC is taken as its bytes arrive, and once every byte of the
 * covered span has been seen the parts are combined in file order and
 * compared.
 *
 * @module
 */

import type { ByteSource } from "../core/io.ts";
import { crc32, crc32Combine } from "../core/_crc32.ts";
import type {
  ByteRange,
  CheckedRange,
  FileCheck,
  ParsedEntry,
} from "../format/entry.ts";

/** Header bytes are read for their CRC in windows of at most this size. */
const WINDOW = 1024 * 1024;

/** Bytes of content a window may hold between two header ranges. */
const HOLE = 4096;

/** The running verification of one file's check. */
export class FileCheckTracker {
  #expected: number;
  /** Every covered range, in file order. */
  #ranges: ByteRange[];
  /** The index in `#ranges` of each range. */
  #indexOf: Map<ByteRange, number>;
  #crcs: Uint32Array;
  #known: Uint8Array;
  #missing: number;
  #others: readonly CheckedRange[];
  #result: string | null | undefined = undefined;

  /**
   * @param check What the parser found.
   * @param entries The entries whose content ranges complete the span.
   */
  constructor(check: FileCheck, entries: readonly ParsedEntry[]) {
    this.#expected = check.expected;
    this.#others = check.others;
    const contents: ByteRange[] = [];
    for (const e of entries) for (const r of e.ranges) contents.push(r);
    // Both lists come in file order from the parsers: merge them.
    const ranges: ByteRange[] = [];
    const others = check.others;
    let i = 0;
    let k = 0;
    while (i < contents.length || k < others.length) {
      const c = contents[i];
      const o = others[k];
      if (o === undefined || (c !== undefined && c.offset <= o.offset)) {
        ranges.push(c!);
        i++;
      } else {
        ranges.push(o);
        k++;
      }
    }
    this.#ranges = ranges;
    const at = new Map<ByteRange, number>();
    ranges.forEach((r, n) => at.set(r, n));
    this.#indexOf = at;
    this.#crcs = new Uint32Array(ranges.length);
    this.#known = new Uint8Array(ranges.length);
    this.#missing = ranges.length;
    for (const o of others) {
      if (o.crc !== undefined) this.#set(at.get(o)!, o.crc);
    }
    this.#otherIndex = others.map((o) => at.get(o)!);
  }

  #otherIndex: number[];

  #set(index: number, crc: number): void {
    if (this.#known[index] === 0) this.#missing--;
    this.#known[index] = 1;
    this.#crcs[index] = crc;
  }

  /** Reads the header ranges whose CRC the parser did not know. */
  async readOthers(source: ByteSource): Promise<void> {
    let window = new Uint8Array(0);
    let start = 0;
    let length = 0;
    const others = this.#others;
    for (const [k, r] of others.entries()) {
      if (r.crc !== undefined) continue;
      if (r.offset < start || r.offset + r.length > start + length) {
        // The ranges are headers between tensors: one read takes the next
        // ones too while the tensor bytes between them are few (many small
        // entries), never a large tensor's bytes (read again for nothing).
        let end = r.offset + r.length;
        for (let j = k + 1; j < others.length; j++) {
          const o = others[j]!;
          if (
            o.offset - end > HOLE || o.offset + o.length > r.offset + WINDOW
          ) {
            break;
          }
          end = o.offset + o.length;
        }
        length = end - r.offset;
        if (window.byteLength < length) window = new Uint8Array(length);
        start = r.offset;
        await source.readAt(start, window.subarray(0, length));
      }
      const at = r.offset - start;
      this.#set(
        this.#otherIndex[k]!,
        crc32(window.subarray(at, at + r.length)),
      );
    }
  }

  /**
   * Takes the CRC of one range of an entry's content, as it was read.
   *
   * @param entry The entry.
   * @param part Which of its ranges.
   * @param bytes The range's bytes.
   */
  record(entry: ParsedEntry, part: number, bytes: Uint8Array): void {
    const range = entry.ranges[part];
    const index = range === undefined ? undefined : this.#indexOf.get(range);
    if (index !== undefined) this.#set(index, crc32(bytes));
  }

  /**
   * What is wrong, once every range has been seen: `null` when the CRC
   * matches, a reason when it does not; `undefined` while ranges are
   * missing.
   */
  result(): string | null | undefined {
    if (this.#result !== undefined || this.#missing > 0) return this.#result;
    let crc = 0;
    let at = 0;
    for (const [n, r] of this.#ranges.entries()) {
      if (r.offset !== at) {
        this.#result =
          `its check covers bytes that do not follow each other (at byte ${at})`;
        return this.#result;
      }
      crc = crc32Combine(crc, this.#crcs[n]!, r.length);
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
