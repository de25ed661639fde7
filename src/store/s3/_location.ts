// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `s3://bucket/key` paths: parsing and checks, and the Deno-style errors
 * the store throws for a missing or existing object. Internal to the S3
 * store; {@linkcode parseS3Path} is re-exported from `s3_store.ts`.
 *
 * @module
 */

/** A bucket and a key parsed from `s3://bucket/key`. */
export interface Location {
  readonly bucket: string;
  /** No leading or trailing `/`; `""` for the bucket itself. */
  readonly key: string;
}

/**
 * Splits `s3://bucket/key` into bucket and key.
 *
 * @param path An `s3://` path.
 * @returns The bucket and the key (without leading or trailing `/`).
 * @throws {TypeError} When `path` is not `s3://bucket[/key]` or has a `.` or `..` segment.
 *
 * @example
 * ```ts
 * import { parseS3Path } from "@ckpt/monitor/s3";
 * const { bucket, key } = parseS3Path("s3://b/run1/x.ckpt");
 * console.assert(bucket === "b" && key === "run1/x.ckpt");
 * ```
 */
export function parseS3Path(path: string): { bucket: string; key: string } {
  const m = typeof path === "string"
    ? /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(path)
    : null;
  if (m === null) {
    throw new TypeError(
      `Cannot use ${
        JSON.stringify(path)
      } as an S3 path: expected "s3://bucket/key"`,
    );
  }
  const key = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (key.split("/").some((s) => s === "." || s === "..")) {
    throw new TypeError(
      `Cannot use "${path}" as an S3 path: "." and ".." segments are not allowed`,
    );
  }
  return { bucket: m[1]!, key };
}

/** A `Deno.errors` error (or, outside Deno, an Error with a Node `code`). */
export function denoError(
  kind: "NotFound" | "AlreadyExists",
  message: string,
  cause?: unknown,
): Error {
  const errors = (globalThis as {
    Deno?: {
      errors?: Record<string, new (m: string, o?: ErrorOptions) => Error>;
    };
  }).Deno?.errors;
  const Class = errors?.[kind];
  const options = cause === undefined ? undefined : { cause };
  if (Class !== undefined) return new Class(message, options);
  return Object.assign(new Error(message, options), {
    code: kind === "NotFound" ? "ENOENT" : "EEXIST",
  });
}

/**
 * The bucket and key of a file path.
 *
 * @param path `s3://bucket/key`.
 * @returns Bucket and key.
 * @throws {TypeError} When the path names a bucket or a folder.
 */
export function fileLocation(path: string): Location {
  const loc = parseS3Path(path);
  if (loc.key === "" || path.endsWith("/")) {
    throw new TypeError(
      `Cannot use "${path}" as a file: it names a bucket or a folder`,
    );
  }
  return loc;
}
