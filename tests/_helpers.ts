// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** Test helpers: temporary folders, hashing, fixture paths. */

import { fileURLToPath } from "node:url";

/** The folder of MindSpore's own `.ckpt` files (read-only). */
export const FIXTURES: string = fileURLToPath(
  new URL("../../shared/fixtures/mindspore/", import.meta.url),
);

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Lowercase hex SHA-256 of bytes. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new Uint8Array(bytes));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** The names of the files in a folder, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
