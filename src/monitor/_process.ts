// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the monitor's only contact with the process (signals, exit, its
// id). Everything else of src/monitor/ is runtime neutral. Deno's calls
// (`Deno.addSignalListener`, `Deno.exit`, `Deno.pid`) under Deno, Node.js's
// `process` elsewhere; both are looked up on `globalThis`, so this file
// imports nothing a browser bundle could not load.

/** The signals a monitor can save on, with their numbers (exit 128 + n). */
export const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** A signal a monitor can save on. */
export type ProcessSignal = keyof typeof SIGNAL_NUMBERS;

/** What this file uses of Deno. */
interface DenoProcess {
  build: { os: string };
  pid: number;
  addSignalListener(signal: ProcessSignal, listener: () => void): void;
  removeSignalListener(signal: ProcessSignal, listener: () => void): void;
  exit(code: number): never;
}

/** What this file uses of Node.js's `process`. */
interface NodeProcess {
  platform: string;
  pid: number;
  on(signal: ProcessSignal, listener: () => void): unknown;
  off(signal: ProcessSignal, listener: () => void): unknown;
  exit(code: number): never;
}

/** The runtime's process calls: Deno's, else Node.js's, else none. */
function runtime():
  | { deno: DenoProcess }
  | { node: NodeProcess }
  | null {
  const g = globalThis as unknown as {
    Deno?: DenoProcess;
    process?: NodeProcess;
  };
  if (g.Deno !== undefined) return { deno: g.Deno };
  if (typeof g.process?.on === "function") return { node: g.process };
  return null;
}

/**
 * Listens for `signal`; returns the function that stops listening, or
 * `null` where the runtime cannot deliver it (SIGTERM on Windows, or a
 * runtime without signals).
 */
export function listenForSignal(
  signal: ProcessSignal,
  listener: () => void,
): (() => void) | null {
  const rt = runtime();
  if (rt === null) return null;
  if ("deno" in rt) {
    // Windows delivers SIGINT (Ctrl-C) only.
    if (signal === "SIGTERM" && rt.deno.build.os === "windows") return null;
    rt.deno.addSignalListener(signal, listener);
    return () => rt.deno.removeSignalListener(signal, listener);
  }
  if (signal === "SIGTERM" && rt.node.platform === "win32") return null;
  // A listener replaces Node.js's default (exit at once) for this signal.
  rt.node.on(signal, listener);
  return () => void rt.node.off(signal, listener);
}

/** Ends the process as `signal` would have: exit code 128 + its number. */
export function exitForSignal(signal: ProcessSignal): never {
  const rt = runtime();
  const code = 128 + SIGNAL_NUMBERS[signal];
  if (rt === null) {
    throw new Error(`Cannot exit on ${signal}: this runtime has no process`);
  }
  return "deno" in rt ? rt.deno.exit(code) : rt.node.exit(code);
}

/** Who this process is, for the lock a second writer is refused by. */
export function processOwner(): string {
  // A browser has no process (the browser build runs this too).
  const rt = runtime();
  const where = rt === null
    ? "a browser page or Worker"
    : `process ${"deno" in rt ? rt.deno.pid : rt.node.pid}`;
  return `a CheckpointMonitor in ${where}, started ${new Date().toISOString()}`;
}

/**
 * The signals a monitor saves on, as an input to its save trigger: a signal
 * that arrived makes the next step end's save due (then the process exits);
 * a second one exits at once.
 */
export class SignalInput {
  #signals: readonly ProcessSignal[];
  #stops = new Map<ProcessSignal, () => void>();
  #pending: ProcessSignal | null = null;

  constructor(signals: readonly ProcessSignal[]) {
    this.#signals = signals;
  }

  /** The signal that arrived, if any. */
  get pending(): ProcessSignal | null {
    return this.#pending;
  }

  /** Starts listening (again); listening twice is harmless. */
  install(): void {
    for (const signal of this.#signals) {
      if (this.#stops.has(signal)) continue;
      const stop = listenForSignal(signal, () => {
        if (this.#pending !== null) exitForSignal(signal);
        this.#pending = signal;
      });
      if (stop !== null) this.#stops.set(signal, stop);
    }
  }

  /** Stops listening. */
  remove(): void {
    for (const stop of this.#stops.values()) stop();
    this.#stops.clear();
  }
}
