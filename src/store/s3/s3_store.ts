// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * {@linkcode S3Store}: the storage seam on S3-compatible object storage
 * (AWS S3, Ceph RADOS Gateway, MinIO), over `fetch` with SigV4 signing on
 * Web Crypto and no SDK. The class is the seam's surface; the work lives
 * beside it: options (`_options.ts`), paths (`_location.ts`), `HEAD` and
 * buckets (`_head.ts`), the write path (`_write.ts`, `_upload.ts`), the
 * read path (`_reader.ts`), listings and incomplete uploads
 * (`_listing.ts`), the lock (`_claim_lock.ts`).
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
import { type ClaimTiming, type S3Lock, takeClaim } from "./_claim_lock.ts";
import { S3Client } from "./_client.ts";
import { S3Objects } from "./_head.ts";
import {
  abortIncompleteUploads,
  folderExists,
  listFolder,
} from "./_listing.ts";
import { denoError, fileLocation, parseS3Path } from "./_location.ts";
import { resolveS3Options, type S3StoreOptions } from "./_options.ts";
import { S3Reader } from "./_reader.ts";
import { writeObject } from "./_write.ts";

export type { S3Credentials } from "./_sigv4.ts";
export type { S3Lock } from "./_claim_lock.ts";
export type { S3StoreOptions } from "./_options.ts";
export { parseS3Path } from "./_location.ts";

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
  readonly #objects: S3Objects;
  readonly #partSize: number;
  readonly #concurrency: number;
  readonly #readAhead: number;
  readonly #lockTiming: ClaimTiming;
  /** Folders whose marker this store has put. */
  readonly #folders = new Set<string>();

  /**
   * Makes a store; no request is sent until it is used.
   *
   * @param options Credentials, endpoint and tuning (see {@linkcode S3StoreOptions}).
   * @throws {TypeError} When credentials are missing.
   * @throws {RangeError} When a size or count is out of range.
   */
  constructor(options: S3StoreOptions) {
    const resolved = resolveS3Options(options);
    this.#partSize = resolved.partSize;
    this.#concurrency = resolved.concurrency;
    this.#readAhead = resolved.readAhead;
    this.#lockTiming = resolved.lockTiming;
    this.#objects = new S3Objects(new S3Client(resolved.client));
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
    const loc = fileLocation(path);
    const head = await this.#objects.head(loc, "open");
    if (head === null) {
      throw denoError("NotFound", `Cannot open "${path}": no such object`);
    }
    return new S3Reader({
      client: this.#objects.client,
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
    const loc = fileLocation(path);
    const head = await this.#objects.head(loc, "read");
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
    const reply = await this.#objects.client.send({
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
    return await writeObject(this.#objects, {
      path,
      loc: fileLocation(path),
      overwrite: options?.overwrite ?? true,
      partSize: this.#partSize,
      concurrency: this.#concurrency,
    }, produce);
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
      const reply = await this.#objects.client.send({
        method: "HEAD",
        bucket: loc.bucket,
        key: "",
        action: "look at the bucket",
        accept: [404],
      });
      return reply.status === 404 ? null : folder;
    }
    if (!path.endsWith("/")) {
      const head = await this.#objects.head(loc, "look at");
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
    return await folderExists(this.#objects, loc.bucket, loc.key)
      ? folder
      : null;
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
    return await listFolder(this.#objects, dir);
  }

  /**
   * Deletes an object.
   *
   * @param path `s3://bucket/key`.
   * @returns `false` when it was already gone.
   */
  async remove(path: string): Promise<boolean> {
    const loc = fileLocation(path);
    if ((await this.#objects.head(loc, "remove")) === null) return false;
    await this.#objects.client.send({
      method: "DELETE",
      bucket: loc.bucket,
      key: loc.key,
      action: "remove",
      accept: [404],
    });
    return true;
  }

  /**
   * Makes an empty folder visible, as a local `mkdir` does: puts a
   * zero-byte marker object `key/` (once per folder and store). Without it
   * a folder exists only while a key is under it, and a rank killed before
   * its first save would leave no `rank_R` folder for resume to count.
   * `list` does not show the marker; `stat` and the parent's `list` see
   * the folder.
   *
   * @param path `s3://bucket/key` of the folder (a bucket: nothing to do).
   */
  async ensureDir(path: string): Promise<void> {
    const loc = parseS3Path(path);
    if (loc.key === "" || this.#folders.has(`${loc.bucket}/${loc.key}`)) {
      return;
    }
    await this.#objects.client.send({
      method: "PUT",
      bucket: loc.bucket,
      key: `${loc.key}/`,
      body: new Uint8Array(0),
      action: "make the folder marker",
    });
    this.#folders.add(`${loc.bucket}/${loc.key}`);
  }

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
    const loc = fileLocation(path);
    return await takeClaim(
      { client: this.#objects.client, bucket: loc.bucket, key: loc.key, path },
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
    return await abortIncompleteUploads(this.#objects, dir, options?.prefixes);
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
