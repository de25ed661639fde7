// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: restore a candidate into the network while its checksum is
// computed from the same reads, so a verified resume reads the file once.

import type { LoadCheckpointOptions } from "../checkpoint/checkpoint.ts";
import { openVerifying } from "../checkpoint/_verified_open.ts";
import type { Network } from "../tensor/types.ts";
import {
  APPEND_INFO_NAMES,
  loadParamsInto,
  type LoadParamsResult,
} from "./restore.ts";

/** Why a restored candidate does not count, or what it restored. */
export type Restored =
  | { readonly ok: true; readonly result: LoadParamsResult }
  | {
    readonly ok: false;
    readonly kind: "size" | "checksum";
    readonly reason: string;
  };

/**
 * Restores `file` into `network` (strict: every parameter, no stray
 * tensor; string entries are append info) reading each entry straight into the network's own arrays, in
 * file order; the file's own check (when it carries one) or else the CRC-32
 * of the bytes on disk, computed from those very reads and compared with
 * the one recorded, verifies it in the same pass. When it differs, the network
 * has been written with values that are not to be trusted: the caller
 * restores another candidate over them (every parameter again) or reports
 * that none verified.
 */
export async function restoreVerified(
  file: string,
  recorded: { readonly bytes?: number; readonly checksum?: string },
  load: LoadCheckpointOptions,
  network: Network,
): Promise<Restored> {
  const v = await openVerifying(file, load);
  try {
    // A string entry (append info the user recorded, such as a note) is
    // never a parameter: strict refuses stray tensors only.
    const ignore = [
      ...APPEND_INFO_NAMES,
      ...v.reader.entries.filter((e) => e.dtype === "str").map((e) => e.name),
    ];
    const result = await loadParamsInto(network, v.reader, {
      strict: true,
      ignore,
    });
    if (v.reader.check !== null) {
      // The file's own check completes (or throws) once every entry is read.
      const loaded = new Set(result.loaded);
      for (const e of v.reader.entries) {
        if (!loaded.has(e.name)) await v.reader.read(e.name);
      }
      return { ok: true, result };
    }
    const checksum = await v.checksum();
    if (recorded.checksum !== undefined && checksum !== recorded.checksum) {
      return {
        ok: false,
        kind: "checksum",
        reason:
          `its checksum is ${checksum}, meta.json records ${recorded.checksum} (found while restoring: the network's values were overwritten and are restored again from the next candidate)`,
      };
    }
    return { ok: true, result };
  } finally {
    await v.reader.close();
  }
}
