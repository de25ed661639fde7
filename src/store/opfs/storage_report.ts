// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The origin's storage as the OPFS store sees it: persistence, usage and
 * quota ({@linkcode opfsStorageReport}), and the error a full quota becomes.
 *
 * @module
 */

import { codedError, domName } from "./_opfs_common.ts";
import { browserNavigator } from "./_opfs_types.ts";

/**
 * Turns a `QuotaExceededError` into an error naming the file, with the
 * origin's usage and quota, `code` `"EDQUOT"` and the original as `cause`.
 */
export async function quotaError(
  path: string,
  error: unknown,
): Promise<Error | null> {
  if (domName(error) !== "QuotaExceededError") return null;
  let figures = "";
  try {
    const e = await browserNavigator().storage?.estimate?.();
    if (e?.usage !== undefined && e.quota !== undefined) {
      figures = ` (${e.usage} of ${e.quota} bytes used)`;
    }
  } catch { /* the figures are only a help */ }
  return codedError(
    `Cannot write "${path}": the origin's storage quota is full${figures}; the previous content of "${path}" is unchanged and the temporary file was removed`,
    "EDQUOT",
    error,
  );
}

/** What {@linkcode opfsStorageReport} found. */
export interface OpfsStorageReport {
  /** Whether the origin's storage is persistent (not evicted under pressure). */
  readonly persisted: boolean;
  /** Whether persistence was asked for in this call (windows only). */
  readonly persistRequested: boolean;
  /** Bytes the origin uses, when the browser says. */
  readonly usage: number | null;
  /** Bytes the origin may use, when the browser says. */
  readonly quota: number | null;
}

/** Options of {@linkcode opfsStorageReport}. */
export interface OpfsStorageReportOptions {
  /**
   * Ask for persistent storage with `navigator.storage.persist()` when it
   * is not persistent yet (possible in windows, not in Workers; a browser
   * may ask the user or refuse silently).
   *
   * @default {true}
   */
  readonly requestPersistence?: boolean;
}

/**
 * Reports whether the origin's storage is persistent, and its usage and
 * quota (`navigator.storage.persisted()`/`persist()` and `estimate()`).
 *
 * @param options `requestPersistence`.
 * @returns The figures; `null` for those the browser does not give.
 *
 * @example
 * ```ts ignore
 * import { opfsStorageReport } from "@ckpt/monitor";
 * const { persisted, usage, quota } = await opfsStorageReport();
 * console.log(persisted ? "persistent" : "may be evicted", usage, quota);
 * ```
 */
export async function opfsStorageReport(
  options: OpfsStorageReportOptions = {},
): Promise<OpfsStorageReport> {
  const storage = browserNavigator().storage;
  let persisted = (await storage?.persisted?.()) ?? false;
  let persistRequested = false;
  if (
    !persisted && (options.requestPersistence ?? true) &&
    typeof storage?.persist === "function"
  ) {
    persistRequested = true;
    persisted = await storage.persist();
  }
  const estimate = await storage?.estimate?.();
  return {
    persisted,
    persistRequested,
    usage: estimate?.usage ?? null,
    quota: estimate?.quota ?? null,
  };
}
