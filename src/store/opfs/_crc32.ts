// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * zlib's CRC-32 in plain TypeScript, for runtimes without `node:zlib` (the
 * browser). It gives the same `"crc32:<8 hex digits>"` as `../_checksum.ts`,
 * slice-by-8: eight 256-entry tables consume eight bytes per step.
 *
 * @module
 */

/** The reflected CRC-32 polynomial (zlib, gzip, PNG). */
const POLYNOMIAL = 0xedb88320;

/** Tables `k * 256 .. k * 256 + 255` for k = 0..7, built once. */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + n]!;
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

/**
 * Continues a CRC-32 over `bytes` (zlib's `crc32(bytes, crc)`).
 *
 * @param crc The CRC of the bytes before (0 to start).
 * @param bytes The next bytes.
 * @returns The CRC of all bytes so far, as an unsigned 32-bit number.
 */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  const t = TABLES;
  let c = ~crc;
  let i = 0;
  const end8 = bytes.length - (bytes.length & 7);
  while (i < end8) {
    const a = c ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) |
        (bytes[i + 3]! << 24));
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < bytes.length) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** A running CRC-32 over bytes fed in order (as `Crc32` in `../_checksum.ts`). */
export class Crc32 {
  #value = 0;

  /** Feeds `bytes`. */
  update(bytes: Uint8Array): void {
    if (bytes.byteLength > 0) this.#value = crc32Update(this.#value, bytes);
  }

  /** The checksum so far, as `"crc32:<8 hex digits>"`. */
  digest(): string {
    return `crc32:${this.#value.toString(16).padStart(8, "0")}`;
  }
}
