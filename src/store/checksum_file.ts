// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Recomputes the checksum {@linkcode saveCheckpoint} reports, from a file on
 * disk.
 *
 * @module
 */

import { acquireBuffer, releaseBuffer } from "../core/_buffer_pool.ts";
import { Crc32 } from "./_checksum.ts";
import { checkPath } from "./_paths.ts";
import type { CheckpointStore } from "./store.ts";
import { storeFor } from "./resolve.ts";

/**
 * Computes the checksum of a file's bytes in the form
 * {@linkcode saveCheckpoint} and {@linkcode atomicWrite} report it: zlib's
 * CRC-32 as `"crc32:<8 lowercase hex digits>"`. Reads in 4 MiB pieces into
 * a reused buffer.
 *
 * @param path The file.
 * @param store The store the file is in (default: chosen by the path).
 * @returns The checksum.
 * @throws {TypeError} When `path` is not a string.
 *
 * @example Check a saved checkpoint
 * ```ts
 * import { checksumFile, saveCheckpoint } from "@ckpt/monitor";
 * import { equal as assertEquals } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const saved = await saveCheckpoint(`${dir}/m.ckpt`, {
 *     w: { dtype: "Float32", shape: [2], data: new Float32Array([1, 2]) },
 *   });
 *   assertEquals(await checksumFile(saved.path), saved.checksum);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function checksumFile(
  path: string,
  store?: CheckpointStore,
): Promise<string> {
  checkPath(path, "compute checksum");
  const crc = new Crc32();
  const buffer = acquireBuffer();
  try {
    await using file = await storeFor(path, store).open(path);
    for (let at = 0; at < file.size; at += buffer.byteLength) {
      const piece = buffer.subarray(
        0,
        Math.min(buffer.byteLength, file.size - at),
      );
      await file.readAt(at, piece);
      crc.update(piece);
    }
  } finally {
    releaseBuffer(buffer);
  }
  return crc.digest();
}
