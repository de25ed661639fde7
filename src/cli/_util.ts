// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Helpers shared by the command-line subcommands, and the tool's IO type.
// Not exported from the package except `CliIO` (re-exported by main.ts).
// The subcommands reach files only through the store (no Deno file calls).

import { storeFor } from "../store/resolve.ts";
import type { StoreStat } from "../store/store.ts";

/** Where the tool writes, and what it knows of its terminal. */
export interface CliIO {
  /** Writes text to standard output (no newline added). */
  stdout(text: string): void;
  /** Writes text to standard error (no newline added). */
  stderr(text: string): void;
  /** Whether standard output is a terminal: progress is shown only then. */
  isTerminal: boolean;
  /**
   * How long an operation runs before progress appears, in milliseconds.
   *
   * @default {500}
   */
  progressDelayMs?: number;
}

/** Bad command-line arguments: print usage, exit 2. */
export class UsageError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A bad input path or option value: one line on stderr, exit 2, nothing written. */
export class InputError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/** What is at `path` (links followed), or `null` when nothing is. */
export function statOrNull(path: string): Promise<StoreStat | null> {
  return storeFor(path).stat(path);
}

/** Parses a key given in hex (`--enc-key-hex`), naming the flag in errors. */
export function parseHexKey(hex: string, flag: string): Uint8Array {
  const clean = hex.startsWith("0x") ? hex.slice(2) : hex;
  if (
    clean.length === 0 || clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)
  ) {
    throw new InputError(
      `--${flag} must be an even number of hex digits, received ${
        JSON.stringify(hex.length > 20 ? hex.slice(0, 17) + "..." : hex)
      }`,
    );
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** `1.5 MiB`, `312 B`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export { formatShape } from "../tensor/_shape.ts";

/** Lays rows out in left-aligned columns separated by two spaces. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!))
      .join("  ")
  ).join("\n");
}

/**
 * Progress on one terminal line (`\r`), shown only when stdout is a
 * terminal and the operation has run for a moment; `done()` clears it.
 */
export class Progress {
  #io: CliIO;
  #label: string;
  #total: number;
  #start = performance.now();
  #shown = false;
  #last = 0;

  /** Starts a progress line for `total` bytes of work. */
  constructor(io: CliIO, label: string, total: number) {
    this.#io = io;
    this.#label = label;
    this.#total = total;
  }

  /** Reports `done` bytes of the total. */
  update(done: number): void {
    if (!this.#io.isTerminal) return;
    const now = performance.now();
    // Quiet for fast operations; at most ~10 redraws a second.
    if (now - this.#start < (this.#io.progressDelayMs ?? 500)) return;
    if (this.#shown && now - this.#last < 100 && done < this.#total) return;
    this.#last = now;
    this.#shown = true;
    const pct = this.#total > 0 ? Math.floor((done / this.#total) * 100) : 100;
    this.#io.stdout(
      `\r\x1b[K${this.#label} ${pct}% (${formatBytes(done)} of ${
        formatBytes(this.#total)
      })`,
    );
  }

  /** Clears the line if anything was drawn. */
  done(): void {
    if (this.#shown) this.#io.stdout("\r\x1b[K");
  }
}
