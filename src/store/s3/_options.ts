// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The options of the S3 store ({@linkcode S3StoreOptions}) and their
 * checks and defaults. Internal to the S3 store; the type is re-exported
 * from `s3_store.ts`.
 *
 * @module
 */

import { checkInteger } from "../../core/_validate.ts";
import type { S3ClientOptions } from "./_client.ts";
import type { ClaimTiming } from "./_claim_lock.ts";
import type { S3Credentials } from "./_sigv4.ts";

const MIB = 1024 * 1024;
/** S3's smallest part (all but the last). */
const MIN_PART_SIZE = 5 * MIB;
/** S3's largest part. */
const MAX_PART_SIZE = 5 * 1024 * MIB;

/**
 * Options of {@linkcode S3Store}.
 *
 * @example
 * ```ts
 * import type { S3StoreOptions } from "@ckpt/monitor/s3";
 * const options: S3StoreOptions = {
 *   credentials: { accessKeyId: "AKIA…", secretAccessKey: "…" },
 *   endpoint: "http://127.0.0.1:7480",
 *   partSize: 16 * 1024 * 1024,
 * };
 * console.assert(options.partSize === 16777216);
 * ```
 */
export interface S3StoreOptions {
  /** Access key, secret and optional session token. */
  readonly credentials: S3Credentials;
  /**
   * The signing region.
   *
   * @default {"us-east-1"}
   */
  readonly region?: string | undefined;
  /**
   * The server, `http(s)://host[:port]` (Ceph RGW, MinIO, a regional AWS
   * endpoint).
   *
   * @default {`https://s3.${region}.amazonaws.com`}
   */
  readonly endpoint?: string | undefined;
  /**
   * Path-style URLs (`endpoint/bucket/key`) rather than virtual-hosted
   * (`bucket.endpoint/key`).
   *
   * @default {true when `endpoint` is given, false otherwise}
   */
  readonly pathStyle?: boolean | undefined;
  /**
   * Bytes per part of a multipart upload, and per ranged GET of a reader
   * (5 MiB to 5 GiB). A file smaller than one part is a single PUT.
   *
   * @default {8388608} (8 MiB)
   */
  readonly partSize?: number | undefined;
  /**
   * Parts uploaded at once by one write, and GETs at once by one reader.
   *
   * @default {4}
   */
  readonly concurrency?: number | undefined;
  /**
   * Whether request bodies are covered by the SigV4 signature (their
   * SHA-256 in `x-amz-content-sha256`) or sent as `UNSIGNED-PAYLOAD`:
   *
   * - `"auto"`: signed over `http:`; over `https:` a body of at least
   *   `partSize` (a multipart part) is sent unsigned, since TLS already
   *   protects it in transit; smaller bodies (`meta.json`, claims) are
   *   always signed;
   * - `true`: every body signed (one SHA-256 pass over every byte saved);
   * - `false`: every body unsigned, over `http:` too. Then nothing but TCP's
   *   checksum protects a part's bytes on a plain-HTTP link: use it on a
   *   trusted network (a loopback or cluster-internal gateway), for speed.
   *
   * AWS S3 and Ceph RGW accept `UNSIGNED-PAYLOAD` on every request.
   *
   * @default {"auto"}
   */
  readonly signPayload?: boolean | "auto" | undefined;
  /**
   * Blocks (of `partSize`) a reader fetches ahead while reads go forward.
   *
   * @default {4}
   */
  readonly readAhead?: number | undefined;
  /**
   * Attempts per request: a dropped connection, HTTP 500/502/503/504,
   * `SlowDown`, `RequestTimeout` and `InternalError` are retried with
   * exponential backoff and full jitter.
   *
   * @default {5}
   */
  readonly maxAttempts?: number | undefined;
  /**
   * The first retry waits up to this many ms; the ceiling doubles per
   * attempt up to 5 s.
   *
   * @default {200}
   */
  readonly retryBaseMs?: number | undefined;
  /**
   * Time limit of one attempt of one request, in ms.
   *
   * @default {120000}
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Lease of a lock's claim object, in ms; the holder renews it every
   * third of this. A claim not renewed for this long (plus
   * `lockClockSkewMs`) is taken over.
   *
   * @default {30000}
   */
  readonly lockLeaseMs?: number | undefined;
  /**
   * How far the clocks of two hosts sharing a lock may disagree, in ms.
   *
   * @default {5000}
   */
  readonly lockClockSkewMs?: number | undefined;
  /**
   * Pause between looks at a lock held by someone else, in ms.
   *
   * @default {500}
   */
  readonly lockPollMs?: number | undefined;
}

/** The options checked, with their defaults filled in. */
export interface ResolvedS3Options {
  /** How the client reaches the server. */
  readonly client: S3ClientOptions;
  /** Bytes per part and per ranged GET. */
  readonly partSize: number;
  /** Parts (or GETs) in flight. */
  readonly concurrency: number;
  /** Blocks a reader fetches ahead. */
  readonly readAhead: number;
  /** The lock's lease, clock skew and poll pause. */
  readonly lockTiming: ClaimTiming;
}

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  min = 1,
): number {
  return checkInteger(
    value ?? fallback,
    name,
    min,
    "Cannot create the S3 store",
  );
}

/**
 * Checks the options of an S3 store and fills in the defaults.
 *
 * @param options What the caller passed.
 * @returns The settings the store runs with.
 * @throws {TypeError} When credentials are missing or the endpoint is malformed.
 * @throws {RangeError} When a size or count is out of range.
 */
export function resolveS3Options(options: S3StoreOptions): ResolvedS3Options {
  const c = options?.credentials;
  if (
    typeof c?.accessKeyId !== "string" || c.accessKeyId === "" ||
    typeof c.secretAccessKey !== "string" || c.secretAccessKey === ""
  ) {
    throw new TypeError(
      "Cannot create the S3 store: credentials.accessKeyId and credentials.secretAccessKey are required (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and use s3OptionsFromEnv())",
    );
  }
  const region = options.region ?? "us-east-1";
  const endpoint = (options.endpoint ?? `https://s3.${region}.amazonaws.com`)
    .replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+$/.test(endpoint)) {
    throw new TypeError(
      `Cannot create the S3 store: endpoint must be "http(s)://host[:port]", got ${
        JSON.stringify(endpoint)
      }`,
    );
  }
  const partSize = positive(
    "partSize",
    options.partSize,
    8 * MIB,
    MIN_PART_SIZE,
  );
  if (partSize > MAX_PART_SIZE) {
    throw new RangeError(
      `Cannot create the S3 store: partSize must be at most ${MAX_PART_SIZE}, got ${partSize}`,
    );
  }
  const signPayload = options.signPayload ?? "auto";
  if (signPayload !== true && signPayload !== false && signPayload !== "auto") {
    throw new TypeError(
      `Cannot create the S3 store: signPayload must be true, false or "auto", got ${
        JSON.stringify(signPayload)
      }`,
    );
  }
  return {
    partSize,
    concurrency: positive("concurrency", options.concurrency, 4),
    readAhead: positive("readAhead", options.readAhead, 4, 0),
    lockTiming: {
      leaseMs: positive("lockLeaseMs", options.lockLeaseMs, 30_000, 30),
      skewMs: positive("lockClockSkewMs", options.lockClockSkewMs, 5_000, 0),
      pollMs: positive("lockPollMs", options.lockPollMs, 500),
    },
    client: {
      endpoint,
      region,
      credentials: c,
      pathStyle: options.pathStyle ?? options.endpoint !== undefined,
      unsignedPayloadFrom: signPayload === true
        ? Infinity
        : signPayload === false
        ? 1
        : endpoint.startsWith("https:")
        ? partSize
        : Infinity,
      maxAttempts: positive("maxAttempts", options.maxAttempts, 5),
      retryBaseMs: positive("retryBaseMs", options.retryBaseMs, 200, 0),
      requestTimeoutMs: positive(
        "requestTimeoutMs",
        options.requestTimeoutMs,
        120_000,
      ),
    },
  };
}
