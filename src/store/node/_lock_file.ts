// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: an exclusive lock shared by processes without `flock`, for the
// Node.js store. Runtime neutral: `node:` built-ins only.
//
// The rule (why two holders are never admitted):
// 1. A lock is the file at its path. It is taken by writing a holder record
//    (pid, host, process start time, a random token) to a temporary file,
//    fsyncing it, and hard-linking it to the path: `link` fails when the
//    path exists, so exactly one taker succeeds and the file, once there,
//    always holds a complete record.
// 2. The path is removed only (a) by its holder, on release, or (b) by the
//    process holding the breaker lock `<path>.<token>.break` of the record
//    whose token is there, after judging that record's holder certainly gone
//    (same host: no process has the pid, or one started at another time
//    has it) and after reading the path again under the breaker and finding
//    the same token. While a record with token T is at the path and its
//    holder is gone, only the single holder of `<path>.T.break` may remove
//    it, so a slow breaker that read T earlier can never remove a later
//    holder's file: it takes the breaker only after the first breaker let it
//    go, and by then the path no longer holds T.
// 3. Breaker locks are locks too (rule 1 and 2 apply to them), so a breaker
//    that dies is broken in turn.
// A holder on another host is never judged gone: remove its file by hand.

import { link, open, readFile, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { StoreLock } from "../store.ts";
import {
  forgetTemp,
  type Holder,
  holderGone,
  newHolder,
  parseHolder,
  tempNameFor,
} from "./_liveness.ts";

function code(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/** Reads the record at `path`: `"missing"` when there is no file. */
async function readRecord(path: string): Promise<Holder | "missing"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (code(error) === "ENOENT") return "missing";
    throw error;
  }
  const holder = parseHolder(text);
  if (holder === null) {
    throw new Error(
      `Cannot take lock "${path}": the file holds no lock record of this library (${
        JSON.stringify(text.slice(0, 40))
      }); is it another program's lock file, or the flock file of the Deno file store? Remove it if no process uses it`,
    );
  }
  return holder;
}

/** Tries once to create the lock file with `holder`'s record (rule 1). */
async function create(path: string, holder: Holder): Promise<boolean> {
  const temp = join(dirname(path), tempNameFor(basename(path)));
  try {
    const file = await open(temp, "wx", 0o600);
    try {
      await file.writeFile(JSON.stringify(holder));
      await file.sync();
      // Linked while open: another thread's removeIncomplete leaves a
      // temporary file this process has open (see _liveness.ts).
      await link(temp, path);
    } finally {
      await file.close();
    }
    return true;
  } catch (error) {
    if (code(error) === "EEXIST") return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
    forgetTemp(temp);
  }
}

/**
 * One attempt to take the lock at `path`, breaking it when its holder is
 * gone (rule 2): the holder record, or `null` when a live holder has it.
 */
async function attempt(
  path: string,
  owner: string | null,
): Promise<Holder | null> {
  const me = await newHolder(owner);
  // A few rounds: between our failed create and our read, the holder may
  // have released it.
  for (let round = 0; round < 4; round++) {
    if (await create(path, me)) return me;
    const current = await readRecord(path);
    if (current === "missing") continue;
    if (!(await holderGone(current))) return null;
    const breakPath = `${path}.${current.token}.break`;
    const breaker = await attempt(breakPath, `breaking ${path}`);
    if (breaker === null) return null; // Another process is breaking it.
    try {
      const again = await readRecord(path);
      if (again !== "missing" && again.token === current.token) {
        await unlink(path).catch((error) => {
          if (code(error) !== "ENOENT") throw error;
        });
      }
    } finally {
      await releaseRecord(breakPath, breaker);
    }
  }
  return null;
}

/** Removes the lock file if it still holds `holder`'s record. */
async function releaseRecord(path: string, holder: Holder): Promise<void> {
  let current: Holder | "missing";
  try {
    current = await readRecord(path);
  } catch {
    return; // Not a record of ours.
  }
  if (current === "missing" || current.token !== holder.token) return;
  try {
    await unlink(path);
  } catch (error) {
    if (code(error) !== "ENOENT") throw error;
  }
}

/** The first and the longest pause between attempts while waiting. */
const FIRST_PAUSE_MS = 5;
const LONGEST_PAUSE_MS = 200;

/**
 * Takes the lock at `path` (see the rule above), waiting for a live holder
 * when `wait` is set; `null` when it is held and `wait` is not set.
 */
export async function takeLock(
  path: string,
  wait: boolean,
  owner: string | null,
): Promise<StoreLock | null> {
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    const holder = await attempt(path, owner);
    if (holder !== null) return heldLock(path, holder);
    if (!wait) return null;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
  }
}

function heldLock(path: string, holder: Holder): StoreLock {
  let released: Promise<void> | null = null;
  const release = (): Promise<void> => {
    released ??= releaseRecord(path, holder);
    return released;
  };
  return { release, [Symbol.asyncDispose]: release };
}
