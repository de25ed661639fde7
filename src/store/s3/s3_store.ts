// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * {@linkcode S3Store}: the storage seam on S3-compatible object storage
 * (AWS S3, Ceph RADOS Gateway, MinIO), over `fetch` with SigV4 signing on
 * Web Crypto and no SDK.
 *
 * @module
 */

import type { ByteSink } from "../../core/io.ts";
import type {
  CheckpointStore,
  RemoveIncompleteOptions,
  StoreEntry,
  StoreLockOptions,
  StoreReader,
  StoreStat,
  StoreWriteOptions,
  StoreWriteResult,
} from "../store.ts";
import { type S3Lock, takeClaim } from "./_claim_lock.ts";
import { S3Client, type S3Reply } from "./_client.ts";
import { S3Reader } from "./_reader.ts";
import { randomHex, type S3Credentials } from "./_sigv4.ts";
import { MultipartWriter } from "./_upload.ts";
import { encodeXmlText, xmlElements, xmlText } from "./_xml.ts";
import { S3Error } from "./errors.ts";
import { checkInteger } from "../../core/_validate.ts";

export type { S3Credentials } from "./_sigv4.ts";
export type { S3Lock } from "./_claim_lock.ts";

const MIB = 1024 * 1024;
/** S3's smallest part (all but the last). */
const MIN_PART_SIZE = 5 * MIB;
/** S3's largest part. */
const MAX_PART_SIZE = 5 * 1024 * MIB;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

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

/** A bucket and a key parsed from `s3://bucket/key`. */
interface Location {
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

function denoError(
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

/** The metadata header that marks which write an object came from. */
const WRITE_ID = "x-amz-meta-ckpt-write-id";

/**
 * The storage seam on S3-compatible object storage. Paths are
 * `s3://bucket/key`; "folders" are key prefixes ending in `/`.
 *
 * - `write` streams into a multipart upload (parts of `partSize`,
 *   `concurrency` in flight) and commits with `CompleteMultipartUpload`;
 *   on any failure the upload is aborted and nothing appears. A file
 *   smaller than one part is one `PUT`. With `overwrite: false` a single
 *   `PUT` is a conditional create (`If-None-Match: *`); a multipart commit
 *   sends the same header (honoured by AWS S3 since 2024) after a `HEAD`
 *   found nothing (Ceph RGW 16 ignores the header on completion, so
 *   there two racing writers of one key can both commit: the later one
 *   wins).
 * - `open` reads by ranged GETs with read-ahead, pinned to the ETag seen at
 *   open; `readFile` checks the size with `HEAD` first.
 * - `list` is `ListObjectsV2` with delimiter `/`; `stat` is `HEAD` (a
 *   folder exists when any key is under it).
 * - `lock` is a claim object with a renewed lease (see
 *   docs/object-storage.md for the rule).
 * - `removeIncomplete` aborts the folder's multipart uploads.
 *
 * @example Write and read back (needs a server)
 * ```ts ignore
 * import { S3Store, s3OptionsFromEnv } from "@ckpt/monitor/s3";
 * const store = new S3Store({
 *   credentials: { accessKeyId: "…", secretAccessKey: "…" },
 *   endpoint: "http://127.0.0.1:7480",
 *   ...s3OptionsFromEnv(),
 * });
 * await store.write("s3://bucket/run1/a.bin", async (sink) => {
 *   await sink.write(new Uint8Array([1, 2, 3]));
 * });
 * const bytes = await store.readFile("s3://bucket/run1/a.bin", 1024);
 * console.assert(bytes.length === 3);
 * ```
 */
export class S3Store implements CheckpointStore {
  /** `"s3"`. */
  readonly name = "s3";
  readonly #client: S3Client;
  readonly #partSize: number;
  readonly #concurrency: number;
  readonly #readAhead: number;
  readonly #lockTiming: { leaseMs: number; skewMs: number; pollMs: number };
  readonly #knownBuckets = new Set<string>();

  /**
   * Makes a store; no request is sent until it is used.
   *
   * @param options Credentials, endpoint and tuning (see {@linkcode S3StoreOptions}).
   * @throws {TypeError} When credentials are missing.
   * @throws {RangeError} When a size or count is out of range.
   */
  constructor(options: S3StoreOptions) {
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
    this.#partSize = positive(
      "partSize",
      options.partSize,
      8 * MIB,
      MIN_PART_SIZE,
    );
    if (this.#partSize > MAX_PART_SIZE) {
      throw new RangeError(
        `Cannot create the S3 store: partSize must be at most ${MAX_PART_SIZE}, got ${this.#partSize}`,
      );
    }
    this.#concurrency = positive("concurrency", options.concurrency, 4);
    this.#readAhead = positive("readAhead", options.readAhead, 4, 0);
    this.#lockTiming = {
      leaseMs: positive("lockLeaseMs", options.lockLeaseMs, 30_000, 30),
      skewMs: positive("lockClockSkewMs", options.lockClockSkewMs, 5_000, 0),
      pollMs: positive("lockPollMs", options.lockPollMs, 500),
    };
    this.#client = new S3Client({
      endpoint,
      region,
      credentials: c,
      pathStyle: options.pathStyle ?? options.endpoint !== undefined,
      maxAttempts: positive("maxAttempts", options.maxAttempts, 5),
      retryBaseMs: positive("retryBaseMs", options.retryBaseMs, 200, 0),
      requestTimeoutMs: positive(
        "requestTimeoutMs",
        options.requestTimeoutMs,
        120_000,
      ),
    });
  }

  #file(path: string): Location {
    const loc = parseS3Path(path);
    if (loc.key === "" || path.endsWith("/")) {
      throw new TypeError(
        `Cannot use "${path}" as a file: it names a bucket or a folder`,
      );
    }
    return loc;
  }

  /** `HEAD` of an object: its reply, or `null` when there is none. */
  async #head(loc: Location, action: string): Promise<S3Reply | null> {
    const reply = await this.#client.send({
      method: "HEAD",
      bucket: loc.bucket,
      key: loc.key,
      action,
      accept: [404],
    });
    if (reply.status === 200) {
      this.#knownBuckets.add(loc.bucket);
      return reply;
    }
    await this.#checkBucket(loc, action);
    return null;
  }

  /**
   * A `HEAD` 404 does not say whether the key or the bucket is missing:
   * this asks about the bucket (once per bucket that exists) and throws
   * `NoSuchBucket` naming the object.
   */
  async #checkBucket(loc: Location, action: string): Promise<void> {
    if (this.#knownBuckets.has(loc.bucket)) return;
    const reply = await this.#client.send({
      method: "HEAD",
      bucket: loc.bucket,
      key: "",
      action: "find the bucket of",
      accept: [404],
    });
    if (reply.status === 404) {
      throw new S3Error({
        action,
        bucket: loc.bucket,
        key: loc.key,
        status: 404,
        s3Code: "NoSuchBucket",
        detail: `bucket "${loc.bucket}" does not exist`,
      });
    }
    this.#knownBuckets.add(loc.bucket);
  }

  /**
   * Opens an object for ranged reads.
   *
   * @param path `s3://bucket/key`.
   * @returns A reader; close it when done.
   * @throws {Deno.errors.NotFound} When there is no such object.
   * @throws {S3Error} When the request fails (wrong credentials, missing bucket).
   */
  async open(path: string): Promise<StoreReader> {
    const loc = this.#file(path);
    const head = await this.#head(loc, "open");
    if (head === null) {
      throw denoError("NotFound", `Cannot open "${path}": no such object`);
    }
    return new S3Reader({
      client: this.#client,
      bucket: loc.bucket,
      key: loc.key,
      path,
      size: Number(head.headers.get("content-length") ?? 0),
      etag: head.headers.get("etag"),
      blockSize: this.#partSize,
      concurrency: this.#concurrency,
      readAhead: this.#readAhead,
    });
  }

  /**
   * Reads a whole object of at most `maxBytes` bytes (checked by `HEAD`
   * before reading).
   *
   * @param path `s3://bucket/key`.
   * @param maxBytes The largest size accepted.
   * @returns The bytes.
   * @throws {RangeError} When the object is larger than `maxBytes`.
   * @throws {Deno.errors.NotFound} When there is no such object.
   */
  async readFile(path: string, maxBytes: number): Promise<Uint8Array> {
    const loc = this.#file(path);
    const head = await this.#head(loc, "read");
    if (head === null) {
      throw denoError("NotFound", `Cannot read "${path}": no such object`);
    }
    const size = Number(head.headers.get("content-length") ?? 0);
    if (size > maxBytes) {
      throw new RangeError(
        `Cannot read "${path}": it has ${size} bytes, more than the limit of ${maxBytes}`,
      );
    }
    const etag = head.headers.get("etag");
    const reply = await this.#client.send({
      method: "GET",
      bucket: loc.bucket,
      key: loc.key,
      headers: etag === null ? {} : { "if-match": etag },
      action: "read",
      accept: [404, 412],
    });
    if (reply.status === 404) {
      throw denoError("NotFound", `Cannot read "${path}": no such object`);
    }
    if (reply.status === 412 || reply.body.byteLength !== size) {
      throw new Error(
        `Cannot read "${path}": the object was replaced while it was read`,
      );
    }
    return reply.body;
  }

  /**
   * Streams a file into an upload committed only when `produce` and every
   * part succeed (see the class notes).
   *
   * @param path `s3://bucket/key`.
   * @param produce Writes the bytes into the sink.
   * @param options `overwrite: false` refuses an existing object.
   * @returns Size and CRC-32 of the bytes written.
   * @throws {Deno.errors.AlreadyExists} With `overwrite: false` when the object exists.
   */
  async write(
    path: string,
    produce: (sink: ByteSink) => Promise<void>,
    options?: StoreWriteOptions,
  ): Promise<StoreWriteResult> {
    const loc = this.#file(path);
    const overwrite = options?.overwrite ?? true;
    const writeId = randomHex(12);
    const metadata = {
      [WRITE_ID]: writeId,
      "content-type": "application/octet-stream",
    };
    const writer = new MultipartWriter(
      this.#client,
      loc.bucket,
      loc.key,
      this.#partSize,
      this.#concurrency,
      metadata,
    );
    let committed = false;
    try {
      await produce(writer);
      const end = await writer.finish();
      if (end.kind === "single") {
        await this.#putSmall(path, loc, end.body, overwrite, metadata);
      } else {
        if (!overwrite && (await this.#head(loc, "write")) !== null) {
          throw denoError(
            "AlreadyExists",
            `Cannot write "${path}": it exists and overwrite is false`,
          );
        }
        await this.#complete(
          path,
          loc,
          end.uploadId,
          end.parts,
          overwrite,
          writeId,
        );
      }
      committed = true;
      return { bytes: writer.bytes, checksum: writer.digest() };
    } finally {
      // An abort that fails too leaves the upload for removeIncomplete;
      // the caller sees the first failure.
      if (!committed) await writer.abort();
    }
  }

  /** A file smaller than one part: one PUT (conditional without overwrite). */
  async #putSmall(
    path: string,
    loc: Location,
    body: Uint8Array,
    overwrite: boolean,
    metadata: Record<string, string>,
  ): Promise<void> {
    const reply = await this.#client.send({
      method: "PUT",
      bucket: loc.bucket,
      key: loc.key,
      body,
      headers: overwrite ? metadata : { ...metadata, "if-none-match": "*" },
      action: "write",
      accept: [412],
    });
    if (
      reply.status === 412 &&
      !(await this.#isOurs(loc, metadata[WRITE_ID]!, reply))
    ) {
      throw denoError(
        "AlreadyExists",
        `Cannot write "${path}": it exists and overwrite is false`,
      );
    }
  }

  /**
   * After a refusal that may follow a retried attempt: whether the object
   * there is the one this write made (its reply was lost, the retry saw it).
   */
  async #isOurs(
    loc: Location,
    writeId: string,
    reply: S3Reply,
  ): Promise<boolean> {
    if (reply.attempts === 1) return false;
    const head = await this.#head(loc, "write");
    return head?.headers.get(WRITE_ID) === writeId;
  }

  async #complete(
    path: string,
    loc: Location,
    uploadId: string,
    parts: readonly string[],
    overwrite: boolean,
    writeId: string,
  ): Promise<void> {
    const xml = `<CompleteMultipartUpload>${
      parts.map((etag, i) =>
        `<Part><PartNumber>${i + 1}</PartNumber><ETag>${
          encodeXmlText(etag)
        }</ETag></Part>`
      ).join("")
    }</CompleteMultipartUpload>`;
    const reply = await this.#client.send({
      method: "POST",
      bucket: loc.bucket,
      key: loc.key,
      query: { uploadId },
      body: encoder.encode(xml),
      headers: overwrite ? {} : { "if-none-match": "*" },
      action: "commit (complete the upload of)",
      accept: [404, 412],
    });
    if (reply.status === 200) {
      // S3 may report a failed completion inside a 200 reply.
      const text = decoder.decode(reply.body);
      if (xmlElements(text, "Error").length === 0) return;
      throw new S3Error({
        action: "commit (complete the upload of)",
        bucket: loc.bucket,
        key: loc.key,
        status: 200,
        s3Code: xmlText(text, "Code") ?? "",
        detail: xmlText(text, "Message") ?? "the server reported an error",
      });
    }
    // A retried completion after a lost reply finds the upload gone
    // (NoSuchUpload) or the object there (412): done if it is ours.
    if (await this.#isOurs(loc, writeId, reply)) return;
    if (reply.status === 412) {
      throw denoError(
        "AlreadyExists",
        `Cannot write "${path}": it exists and overwrite is false`,
      );
    }
    throw new S3Error({
      action: "commit (complete the upload of)",
      bucket: loc.bucket,
      key: loc.key,
      status: reply.status,
      s3Code: xmlText(decoder.decode(reply.body), "Code") ?? "",
      detail: "the upload is gone (aborted by a cleanup?)",
    });
  }

  /**
   * Describes an object or a folder.
   *
   * @param path `s3://bucket[/key]`.
   * @returns A file (size, mtime), a folder (when any key is under it, or
   *   the bucket itself), or `null`.
   */
  async stat(path: string): Promise<StoreStat | null> {
    const loc = parseS3Path(path);
    const folder = {
      kind: "directory",
      size: 0,
      mtimeMs: null,
      isSymlink: false,
    } as const;
    if (loc.key === "") {
      const reply = await this.#client.send({
        method: "HEAD",
        bucket: loc.bucket,
        key: "",
        action: "look at the bucket",
        accept: [404],
      });
      return reply.status === 404 ? null : folder;
    }
    if (!path.endsWith("/")) {
      const head = await this.#head(loc, "look at");
      if (head !== null) {
        const modified = head.headers.get("last-modified");
        return {
          kind: "file",
          size: Number(head.headers.get("content-length") ?? 0),
          mtimeMs: modified === null ? null : Date.parse(modified),
          isSymlink: false,
        };
      }
    }
    const page = await this.#listPage(
      loc.bucket,
      `${loc.key}/`,
      "1",
      undefined,
      "look at",
    );
    return page.contents.length + page.prefixes.length > 0 ? folder : null;
  }

  async #listPage(
    bucket: string,
    prefix: string,
    maxKeys: string,
    token: string | undefined,
    action: string,
  ): Promise<
    { contents: string[]; prefixes: string[]; next: string | undefined }
  > {
    const query: Record<string, string> = {
      "list-type": "2",
      prefix,
      delimiter: "/",
      "max-keys": maxKeys,
    };
    if (token !== undefined) query["continuation-token"] = token;
    const reply = await this.#client.send({
      method: "GET",
      bucket,
      key: "",
      query,
      action: `${action} (list)`,
    });
    this.#knownBuckets.add(bucket);
    const xml = decoder.decode(reply.body);
    const contents = xmlElements(xml, "Contents").map((c) =>
      xmlText(c, "Key") ?? ""
    );
    const prefixes = xmlElements(xml, "CommonPrefixes").map((c) =>
      xmlText(c, "Prefix") ?? ""
    );
    const truncated = xmlText(xml, "IsTruncated") === "true";
    return {
      contents,
      prefixes,
      next: truncated ? xmlText(xml, "NextContinuationToken") : undefined,
    };
  }

  /**
   * Lists a folder: keys right under it are files, deeper keys show as
   * their first folder.
   *
   * @param dir `s3://bucket[/prefix]`.
   * @returns The entries, or `null` when nothing is under the prefix (a
   *   bucket that exists always lists, maybe empty).
   */
  async list(dir: string): Promise<StoreEntry[] | null> {
    const loc = parseS3Path(dir);
    const prefix = loc.key === "" ? "" : `${loc.key}/`;
    const entries: StoreEntry[] = [];
    let keys = 0;
    let token: string | undefined;
    do {
      const page = await this.#listPage(
        loc.bucket,
        prefix,
        "1000",
        token,
        "list",
      );
      keys += page.contents.length + page.prefixes.length;
      for (const key of page.contents) {
        const name = key.slice(prefix.length);
        if (name !== "") entries.push({ name, kind: "file" });
      }
      for (const p of page.prefixes) {
        const name = p.slice(prefix.length).replace(/\/$/, "");
        if (name !== "") entries.push({ name, kind: "directory" });
      }
      token = page.next;
    } while (token !== undefined);
    // A folder exists while any key is under it (a "x/" marker included).
    if (keys === 0 && prefix !== "") return null;
    return entries;
  }

  /**
   * Deletes an object.
   *
   * @param path `s3://bucket/key`.
   * @returns `false` when it was already gone.
   */
  async remove(path: string): Promise<boolean> {
    const loc = this.#file(path);
    if ((await this.#head(loc, "remove")) === null) return false;
    await this.#client.send({
      method: "DELETE",
      bucket: loc.bucket,
      key: loc.key,
      action: "remove",
      accept: [404],
    });
    return true;
  }

  /**
   * Does nothing: object stores have no folders to create.
   *
   * @param _path Ignored.
   */
  async ensureDir(_path: string): Promise<void> {}

  /**
   * Takes the lock `path` by a conditional create of a claim object there
   * (rule: docs/object-storage.md). The returned lock also has `lost` and
   * `signal`, set when its lease could not be kept.
   *
   * @param path `s3://bucket/key` of the claim object.
   * @param options `wait: false` returns `null` at once when held; `owner` is recorded.
   * @returns The held lock, or `null` (only with `wait: false`).
   */
  async lock(
    path: string,
    options?: StoreLockOptions,
  ): Promise<S3Lock | null> {
    const loc = this.#file(path);
    return await takeClaim(
      { client: this.#client, bucket: loc.bucket, key: loc.key, path },
      this.#lockTiming,
      options?.owner ??
        `pid ${(globalThis as { Deno?: { pid?: number } }).Deno?.pid ?? "?"}`,
      options?.wait ?? true,
    );
  }

  /**
   * Aborts the multipart uploads left in a folder (keys right under it) by
   * writers that died before committing. Call it holding the folder's
   * lock: it cannot tell a live writer's upload from a dead one's.
   *
   * @param dir `s3://bucket/prefix`.
   * @param options `prefixes`: only uploads of names starting with one of these.
   * @returns The paths whose uploads were aborted (once per upload).
   */
  async removeIncomplete(
    dir: string,
    options?: RemoveIncompleteOptions,
  ): Promise<string[]> {
    const loc = parseS3Path(dir);
    const prefix = loc.key === "" ? "" : `${loc.key}/`;
    const removed: string[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const query: Record<string, string> = {
        uploads: "",
        prefix,
        delimiter: "/",
      };
      if (keyMarker !== undefined) query["key-marker"] = keyMarker;
      if (idMarker !== undefined) query["upload-id-marker"] = idMarker;
      const reply = await this.#client.send({
        method: "GET",
        bucket: loc.bucket,
        key: "",
        query,
        action: `list incomplete uploads under "${prefix}" in`,
      });
      const xml = decoder.decode(reply.body);
      for (const upload of xmlElements(xml, "Upload")) {
        const key = xmlText(upload, "Key") ?? "";
        const uploadId = xmlText(upload, "UploadId") ?? "";
        const name = key.slice(prefix.length);
        if (!key.startsWith(prefix) || name === "" || name.includes("/")) {
          continue;
        }
        if (
          options?.prefixes !== undefined &&
          !options.prefixes.some((p) => name.startsWith(p))
        ) continue;
        await this.#client.send({
          method: "DELETE",
          bucket: loc.bucket,
          key,
          query: { uploadId },
          action: "abort the incomplete upload of",
          accept: [404],
        });
        removed.push(`s3://${loc.bucket}/${key}`);
      }
      if (xmlText(xml, "IsTruncated") !== "true") break;
      keyMarker = xmlText(xml, "NextKeyMarker");
      idMarker = xmlText(xml, "NextUploadIdMarker");
      if (keyMarker === undefined) break;
    }
    return removed;
  }

  /**
   * Does nothing: access is decided by the server's credentials, checked
   * at the first request.
   *
   * @param _dir Ignored.
   * @param _access Ignored.
   */
  checkAccess(_dir: string, _access: "read" | "write"): void {}
}
