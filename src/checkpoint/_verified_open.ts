// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: open a checkpoint so that reading it also computes the checksum
// of its bytes on disk, for a restore that verifies in the same pass.

import {
  type CheckpointReader,
  type LoadCheckpointOptions,
  openCheckpoint,
} from "./checkpoint.ts";
import { type CrcSource, trackingStore } from "./_crc_source.ts";
import { storeFor } from "../store/resolve.ts";

/** A reader whose reads feed the file's checksum. */
export interface VerifyingReader {
  /** The open checkpoint; close it when done. */
  readonly reader: CheckpointReader;
  /**
   * Reads what was not read yet and returns the CRC-32 of the whole file as
   * `"crc32:<8 hex digits>"` (the checksum `meta.json` records). Cheapest
   * after the entries were read in file order. `null` when the file carries
   * its own check (`reader.check`), which reading every entry verifies, so
   * no second CRC is computed.
   */
  checksum(): Promise<string | null>;
}

/**
 * Opens `path` as {@linkcode openCheckpoint} does; the checksum covers
 * every byte read after the headers were parsed, each once, plus whatever
 * {@linkcode VerifyingReader.checksum} reads at the end. A file with its own
 * check is not tracked: reading all its entries verifies it.
 */
export async function openVerifying(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<VerifyingReader> {
  let crc: CrcSource | null = null;
  const store = trackingStore(storeFor(path, options.store), (opened) => {
    crc = opened;
  });
  const reader = await openCheckpoint(path, { ...options, store });
  const tracked = crc as CrcSource | null;
  if (tracked === null) {
    await reader.close();
    throw new TypeError(`Cannot verify "${path}" while reading: not opened`);
  }
  if (reader.check !== null) {
    return { reader, checksum: () => Promise.resolve(null) };
  }
  tracked.start();
  return { reader, checksum: () => tracked.finish() };
}
