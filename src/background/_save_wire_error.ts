// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Errors between the save queue and its Worker: sent as plain fields
 * (structured clone keeps no class), rebuilt with their class on arrival.
 *
 * @module
 */

/** An error as sent: enough to rebuild its class and message. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** Node.js's error code (`"ENOENT"`, `"ENOSPC"`), when it has one. */
  readonly code?: string;
}

/** Turns an error into something structured clone keeps. */
export function toWire(error: unknown): WireError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(error.stack !== undefined && { stack: error.stack }),
      ...(typeof code === "string" && { code }),
    };
  }
  return { name: "Error", message: String(error) };
}

const BUILTIN: Record<string, ErrorConstructor> = {
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Rebuilds an error of the same class where it can: `Deno.errors.*` under
 * Deno (so `instanceof Deno.errors.NotFound` holds) and the built-in ones;
 * others become an `Error` with the same `name`. Node.js's `code` is kept.
 */
export function fromWire(wire: WireError): Error {
  const denoErrors = (globalThis as { Deno?: { errors?: unknown } }).Deno
    ?.errors as Record<string, unknown> | undefined;
  const DenoError = denoErrors?.[wire.name];
  let error: Error;
  if (typeof DenoError === "function") {
    error = new (DenoError as ErrorConstructor)(wire.message);
  } else if (Object.hasOwn(BUILTIN, wire.name)) {
    error = new BUILTIN[wire.name]!(wire.message);
  } else {
    error = new Error(wire.message);
    error.name = wire.name;
  }
  if (wire.stack !== undefined) error.stack = wire.stack;
  if (wire.code !== undefined) {
    (error as Error & { code?: string }).code = wire.code;
  }
  return error;
}
