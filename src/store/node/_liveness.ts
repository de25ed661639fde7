// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: which process wrote a file, and whether it is still running.
// Runtime neutral: `node:` built-ins only (Node.js 20 and Deno).

import { readdir, readFile, readlink, realpath } from "node:fs/promises";
import { basename, join } from "node:path";
import { hostname } from "node:os";
import process from "node:process";
import { TEMP_NAME } from "../_temp_name.ts";

/** Temporary names this process has created and not yet removed or renamed. */
const ownTemps = new Set<string>();

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * A temporary name for `name` whose 12 hex digits are the writer's pid
 * (6 digits, modulo 2^24) then 6 random ones, so that a later cleaner can
 * tell whether the writer still runs. It matches the temporary-name rule.
 * Registered as this process's own until {@linkcode forgetTemp}.
 */
export function tempNameFor(name: string): string {
  const pid = (process.pid % 0x1000000).toString(16).padStart(6, "0");
  const temp = `.${name}.${pid}${randomHex(3)}.tmp`;
  ownTemps.add(temp);
  return temp;
}

/** Drops a temporary name (or path) from this process's own (renamed or removed). */
export function forgetTemp(temp: string): void {
  ownTemps.delete(basename(temp));
}

/**
 * Whether `name` in `dir` is a temporary file of this library whose writer
 * is gone: `null` when it is no temporary name at all. Another pid is gone
 * when no process has it. A name with this process's pid is live when this
 * thread writes it; otherwise another thread of this process (a Worker has
 * its own copy of this module) may be writing it, so it is gone only when
 * the kernel says no descriptor of this process has it open
 * (`/proc/self/fd`; writers keep the file open until it has its final name);
 * where that cannot be read it counts as live.
 */
export async function tempWriterGone(
  dir: string,
  name: string,
): Promise<boolean | null> {
  const m = TEMP_NAME.exec(name);
  if (m === null) return null;
  const pid = parseInt(m[1]!.slice(0, 6), 16);
  if (pid !== process.pid % 0x1000000) return !processRunning(pid);
  if (ownTemps.has(name)) return false;
  const open = await openHere(join(dir, name));
  return open === false;
}

/**
 * Whether a descriptor of this process has the file at `path` open;
 * `null` where `/proc/self/fd` cannot be read (no Linux, or no permission).
 */
export async function openHere(path: string): Promise<boolean | null> {
  let fds: string[];
  try {
    fds = await readdir("/proc/self/fd");
  } catch {
    return null;
  }
  let target: string;
  try {
    target = await realpath(path);
  } catch {
    return false; // gone already
  }
  for (const fd of fds) {
    try {
      if (await readlink(`/proc/self/fd/${fd}`) === target) return true;
    } catch { /* closed meanwhile */ }
  }
  return false;
}

/**
 * Whether a process with this pid runs on this host (one owned by another
 * user counts: `EPERM`).
 */
export function processRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === "EPERM";
  }
}

let bootId: Promise<string> | null = null;

/**
 * The kernel's start time of a process: this boot's id and the process's
 * start in clock ticks since boot (`/proc/<pid>/stat`, field 22), which
 * tells a reused pid from the process that had it, also across reboots;
 * `null` where there is no `/proc` or it may not be read.
 */
export async function processStart(pid: number): Promise<string | null> {
  bootId ??= readFile("/proc/sys/kernel/random/boot_id", "utf8").then(
    (id) => id.trim(),
    () => "",
  );
  try {
    const text = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold
    // spaces: the 3rd field (state) is index 0, the 22nd is index 19.
    const ticks = text.slice(text.lastIndexOf(")") + 2).split(" ")[19];
    return ticks === undefined ? null : `${await bootId}:${ticks}`;
  } catch {
    return null;
  }
}

/** Who holds a lock, as its lock file records it. */
export interface Holder {
  /** The holder's pid. */
  readonly pid: number;
  /** The holder's host name. */
  readonly host: string;
  /** The holder's start time ({@linkcode processStart}), if known. */
  readonly start: string | null;
  /** Unique per taking of a lock. */
  readonly token: string;
  /** Who took it, as the caller named it. */
  readonly owner: string | null;
  /** When it was taken, ms since the epoch. */
  readonly since: number;
}

/** This process as lock records name it. */
interface Self {
  /** The host name, `null` when it may not be read (Deno without `--allow-sys=hostname`). */
  readonly host: string | null;
  /** The start time ({@linkcode processStart}). */
  readonly start: string | null;
}

let self: Promise<Self> | null = null;

function hostName(): string | null {
  try {
    return hostname();
  } catch {
    return null;
  }
}

/** This process's host name and start time (read once). */
export function thisProcess(): Promise<Self> {
  self ??= processStart(process.pid).then((start) => ({
    host: hostName(),
    start,
  }));
  return self;
}

/** A fresh holder record for this process. */
export async function newHolder(owner: string | null): Promise<Holder> {
  const { host, start } = await thisProcess();
  return {
    pid: process.pid,
    host: host ?? "(unknown)",
    start,
    token: randomHex(8),
    owner,
    since: Date.now(),
  };
}

/** Parses a lock file's text; `null` when it is no holder record. */
export function parseHolder(text: string): Holder | null {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    if (
      typeof h.pid === "number" && typeof h.host === "string" &&
      typeof h.token === "string"
    ) {
      return {
        pid: h.pid,
        host: h.host,
        start: typeof h.start === "string" ? h.start : null,
        token: h.token,
        owner: typeof h.owner === "string" ? h.owner : null,
        since: typeof h.since === "number" ? h.since : 0,
      };
    }
  } catch { /* not JSON */ }
  return null;
}

/**
 * Whether a lock's holder is certainly gone. Only a holder on this host can
 * be judged: its pid runs no process, or runs one that started at another
 * time (the pid was reused, e.g. by the same program after a container
 * restart). A holder on another host is never judged gone, nor any holder
 * when this process may not read its host name.
 */
export async function holderGone(holder: Holder): Promise<boolean> {
  const me = await thisProcess();
  // Without our own host name, no holder can be judged.
  if (me.host === null || holder.host !== me.host) return false;
  if (holder.pid === process.pid) {
    return me.start !== null && holder.start !== null &&
      holder.start !== me.start;
  }
  if (!processRunning(holder.pid)) return true;
  if (holder.start === null) return false;
  const start = await processStart(holder.pid);
  return start !== null && start !== holder.start;
}
