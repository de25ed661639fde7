// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: the monitor's only contact with the process (signals, exit, its
// id). Everything else of src/monitor/ is runtime neutral; a port to another
// runtime replaces this file.

/** The signals a monitor can save on, with their numbers (exit 128 + n). */
export const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

/** A signal a monitor can save on. */
export type ProcessSignal = keyof typeof SIGNAL_NUMBERS;

/**
 * Listens for `signal`; returns the function that stops listening, or
 * `null` where the runtime cannot deliver it (SIGTERM on Windows).
 */
export function listenForSignal(
  signal: ProcessSignal,
  listener: () => void,
): (() => void) | null {
  // Windows delivers SIGINT (Ctrl-C) only.
  if (signal === "SIGTERM" && Deno.build.os === "windows") return null;
  Deno.addSignalListener(signal, listener);
  return () => Deno.removeSignalListener(signal, listener);
}

/** Ends the process as `signal` would have: exit code 128 + its number. */
export function exitForSignal(signal: ProcessSignal): never {
  Deno.exit(128 + SIGNAL_NUMBERS[signal]);
}

/** Who this process is, for the lock a second writer is refused by. */
export function processOwner(): string {
  // A browser has no process (the browser build runs this too).
  const pid = (globalThis as { Deno?: { pid?: number } }).Deno?.pid;
  const where = pid === undefined
    ? "a browser page or Worker"
    : `process ${pid}`;
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
