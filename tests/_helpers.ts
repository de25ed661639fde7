// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** Test helpers: temporary folders, hashing, fixture paths. */

import { fileURLToPath } from "node:url";

/** The folder of MindSpore's own `.ckpt` files (read-only). */
export const FIXTURES: string = fileURLToPath(
  new URL("./fixtures/mindspore/", import.meta.url),
);

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(
  fn: (dir: string) => T | Promise<T>,
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

/**
 * Starts `deno run --no-check --quiet module ...args` with read and write
 * permission for `directory` only (plus read for `alsoRead`), stdout and
 * stderr piped: the child processes of the crash, resume and rank tests.
 */
export function spawnChild(
  module: string,
  directory: string,
  args: readonly string[],
  alsoRead?: string,
): Deno.ChildProcess {
  const read = alsoRead === undefined ? directory : `${directory},${alsoRead}`;
  return new Deno.Command("deno", {
    args: [
      "run",
      "--no-check",
      "--quiet",
      `--allow-read=${read}`,
      `--allow-write=${directory}`,
      module,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Mounts a small tmpfs on a fresh folder, so a save meets a really full
 * file system. Needs root and `mount`; returns null (the test is then
 * skipped, saying so) when either is missing.
 */
export async function smallFileSystem(size: string): Promise<string | null> {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_full_" });
  try {
    const out = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).output();
    if (out.success) return dir;
  } catch { /* no mount command, or not allowed */ }
  await Deno.remove(dir);
  return null;
}

/** Unmounts what {@linkcode smallFileSystem} mounted and removes the folder. */
export async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir] }).output();
  await Deno.remove(dir, { recursive: true });
}
