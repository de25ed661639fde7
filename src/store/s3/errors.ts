// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The error an S3 request fails with.
 *
 * @module
 */

/**
 * What {@linkcode S3Error} is made from.
 *
 * @example
 * ```ts
 * import { S3Error, type S3ErrorInit } from "@ckpt/monitor/s3";
 * const init: S3ErrorInit = {
 *   action: "write",
 *   bucket: "b",
 *   key: "k",
 *   status: 403,
 *   s3Code: "SignatureDoesNotMatch",
 *   detail: "bad signature",
 * };
 * console.assert(new S3Error(init).status === 403);
 * ```
 */
export interface S3ErrorInit {
  /** What could not be done, e.g. `"upload part 3 of"`. */
  readonly action: string;
  /** The bucket. */
  readonly bucket: string;
  /** The object key (`""` for the bucket itself). */
  readonly key: string;
  /** The HTTP status, or `0` when no reply came (connection failed). */
  readonly status: number;
  /** S3's error code (`NoSuchBucket`, `SignatureDoesNotMatch`, …), or `""`. */
  readonly s3Code: string;
  /** S3's message, or what failed without a reply. */
  readonly detail: string;
  /** The request id the server gave, for its logs. */
  readonly requestId?: string | undefined;
  /** How many attempts were made. */
  readonly attempts?: number | undefined;
}

/** Hints for error codes whose cause is usually in the caller's setup. */
const HINTS: Record<string, string> = {
  InvalidAccessKeyId: "check AWS_ACCESS_KEY_ID / the credentials option",
  SignatureDoesNotMatch:
    "check AWS_SECRET_ACCESS_KEY / the credentials option and the region",
  AccessDenied: "the credentials lack permission for this object",
  NoSuchBucket: "the bucket does not exist; create it or fix the path",
};

/**
 * An S3 request that failed: the message names the object
 * (`s3://bucket/key`), what was being done, S3's error code and HTTP status,
 * and a hint for codes caused by setup (wrong credentials, missing bucket).
 *
 * @example
 * ```ts
 * import { S3Error } from "@ckpt/monitor/s3";
 * const e = new S3Error({
 *   action: "read",
 *   bucket: "b",
 *   key: "run/x.ckpt",
 *   status: 404,
 *   s3Code: "NoSuchBucket",
 *   detail: "The specified bucket does not exist",
 * });
 * console.assert(e.message.includes("s3://b/run/x.ckpt"));
 * console.assert(e.s3Code === "NoSuchBucket");
 * ```
 */
export class S3Error extends Error {
  /** The bucket. */
  readonly bucket: string;
  /** The object key (`""` for the bucket). */
  readonly key: string;
  /** The HTTP status, `0` when no reply came. */
  readonly status: number;
  /** S3's error code, `""` when the reply had none. */
  readonly s3Code: string;
  /** The server's request id, when it gave one. */
  readonly requestId: string | undefined;

  /**
   * Makes the error.
   *
   * @param init What failed.
   * @param options Standard error options (`cause`).
   */
  constructor(init: S3ErrorInit, options?: ErrorOptions) {
    const where = `s3://${init.bucket}/${init.key}`;
    const code = init.s3Code === "" ? "" : `${init.s3Code} `;
    const status = init.status === 0 ? "no reply" : `HTTP ${init.status}`;
    const hint = HINTS[init.s3Code];
    const tries = (init.attempts ?? 1) > 1
      ? ` after ${init.attempts} attempts`
      : "";
    super(
      `Cannot ${init.action} "${where}": ${code}(${status})${tries}: ${init.detail}${
        hint === undefined ? "" : ` (${hint})`
      }`,
      options,
    );
    this.name = "S3Error";
    this.bucket = init.bucket;
    this.key = init.key;
    this.status = init.status;
    this.s3Code = init.s3Code;
    this.requestId = init.requestId;
  }
}
