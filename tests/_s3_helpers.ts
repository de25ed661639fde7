// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** Helpers of the tests that run against a real S3 server. */

import type { CheckpointStore } from "../src/store/store.ts";

/** An environment variable when granted and non-empty (no prompt). */
export function variable(name: string): string | undefined {
  const granted =
    Deno.permissions.querySync({ name: "env", variable: name }).state ===
      "granted";
  const value = granted ? Deno.env.get(name) : undefined;
  return value === "" ? undefined : value;
}

/** Removes everything under `dir`, incomplete uploads included. */
export async function removeTree(
  store: CheckpointStore,
  dir: string,
): Promise<void> {
  await store.removeIncomplete(dir);
  for (const entry of (await store.list(dir)) ?? []) {
    const path = `${dir}/${entry.name}`;
    if (entry.kind === "directory") await removeTree(store, path);
    else await store.remove(path);
  }
}
