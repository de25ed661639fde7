// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The checksum recorded for every file written: zlib's CRC-32 (the one
 * `gzip`, Python's `zlib.crc32` and MindSpore's `crc_num` use), rendered as
 * `"crc32:" + 8 lowercase hex digits`.
 *
 * Chosen by measurement (docs/format.md): zlib's `crc32` (reached through
 * `node:zlib` where the runtime has it, else a portable version) runs
 * at ~20 GB/s on our machines, so it costs ~50 ms per GiB on the JS thread
 * while the write of the same bytes runs on Deno's I/O thread. SHA-256
 * (`node:crypto`, SHA-NI) ran at ~1.5 GB/s and halved save throughput;
 * Web Crypto digests per 4 MiB piece reached ~1.2 GB/s using both cores.
 *
 * @module
 */

import { crc32 } from "../core/_crc32.ts";

/** The algorithm prefix of every checksum string. */
export const CHECKSUM_ALGORITHM = "crc32";

/** A running CRC-32 over bytes fed in order. */
export class Crc32 {
  #value = 0;

  /** Feeds `bytes`. */
  update(bytes: Uint8Array): void {
    if (bytes.byteLength > 0) this.#value = crc32(bytes, this.#value);
  }

  /** The checksum so far, as `"crc32:<8 hex digits>"`. */
  digest(): string {
    return `${CHECKSUM_ALGORITHM}:${
      (this.#value >>> 0).toString(16).padStart(8, "0")
    }`;
  }
}
