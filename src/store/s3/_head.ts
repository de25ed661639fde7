// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * {@linkcode S3Objects}: the client of one store with what it learnt about
 * buckets, and `HEAD` of an object that tells a missing key from a missing
 * bucket. Shared by the store's read, write and listing code. Internal to
 * the S3 store.
 *
 * @module
 */

import type { S3Client, S3Reply } from "./_client.ts";
import type { Location } from "./_location.ts";
import { S3Error } from "./errors.ts";

/** The client of one store, and the buckets known to exist. */
export class S3Objects {
  /** The client every request goes through. */
  readonly client: S3Client;
  readonly #knownBuckets = new Set<string>();

  /**
   * Wraps a client.
   *
   * @param client The store's client.
   */
  constructor(client: S3Client) {
    this.client = client;
  }

  /**
   * Records that a bucket exists (a request on it succeeded).
   *
   * @param bucket The bucket.
   */
  noteBucket(bucket: string): void {
    this.#knownBuckets.add(bucket);
  }

  /**
   * `HEAD` of an object.
   *
   * @param loc Bucket and key.
   * @param action What is being done, for error messages.
   * @returns Its reply, or `null` when there is no such object.
   * @throws {S3Error} `NoSuchBucket` naming the object when the bucket is missing.
   */
  async head(loc: Location, action: string): Promise<S3Reply | null> {
    const reply = await this.client.send({
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
    const reply = await this.client.send({
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
}
