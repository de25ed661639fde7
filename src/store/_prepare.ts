// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the disk work a monitor does once, at construction.

import { describeValue as describe } from "../core/_describe.ts";

/**
 * Checks, without prompting, that the process may read and write
 * `directory`; otherwise throws `Deno.errors.PermissionDenied` naming the
 * exact flags to pass.
 */
export function checkPermissions(directory: string): void {
  const missing: string[] = [];
  for (const name of ["read", "write"] as const) {
    if (
      Deno.permissions.querySync({ name, path: directory }).state !== "granted"
    ) {
      missing.push(name);
    }
  }
  if (missing.length > 0) {
    throw new Deno.errors.PermissionDenied(
      `Cannot save checkpoints to "${directory}": ${
        missing.join(" and ")
      } permission is missing; run with ${
        missing.map((m) => `--allow-${m}=${directory}`).join(" ")
      }`,
    );
  }
}

/**
 * Reads the rank from env `RANK_ID` when the process may (no prompt),
 * else 0.
 */
export function rankFromEnv(): number {
  return countFromEnv("RANK_ID", 0) ?? 0;
}

/**
 * An environment variable: under Deno only when the process may read it
 * without a prompt; elsewhere (Node.js) from `process.env`.
 */
function readEnv(variable: string): string | undefined {
  const g = globalThis as {
    Deno?: unknown;
    process?: { env?: Record<string, string | undefined> };
  };
  if (g.Deno === undefined) return g.process?.env?.[variable];
  const permission = Deno.permissions.querySync({ name: "env", variable });
  if (permission.state !== "granted") return undefined;
  return Deno.env.get(variable);
}

/**
 * Reads an integer of at least `min` from an environment variable when the
 * process may read it without a prompt; `undefined` when it may not or the
 * variable is unset or empty.
 */
export function countFromEnv(
  variable: string,
  min: number,
): number | undefined {
  const text = readEnv(variable);
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new RangeError(
      `Cannot configure checkpoints: env "${variable}" must be ${
        min === 0 ? "a non-negative" : "a positive"
      } integer, received ${describe(text)}`,
    );
  }
  return n;
}

/**
 * Makes sure `directory` is a folder (or can become one), creates
 * `checkpointDir` (mode 0700, as the original) and returns the names of the
 * files in it.
 */
export function prepareCheckpointDir(
  directory: string,
  checkpointDir: string,
): string[] {
  for (const path of [directory, checkpointDir]) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    if (!info.isDirectory) {
      throw new Deno.errors.NotADirectory(
        `Cannot save checkpoints to "${path}": it exists and is not a folder`,
      );
    }
  }
  Deno.mkdirSync(checkpointDir, { recursive: true, mode: 0o700 });
  const names: string[] = [];
  for (const entry of Deno.readDirSync(checkpointDir)) {
    if (entry.isFile) names.push(entry.name);
  }
  return names;
}

/** The names of the files in a folder now. */
export async function listFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) names.push(entry.name);
  }
  return names;
}
