// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The sink of `S3Store.write`: bytes are copied into part buffers of
 * `partSize` (the one copy the sink contract requires, since a caller may
 * reuse its chunk as soon as `write` resolves); each full buffer is uploaded
 * as one part of a multipart upload while the next fills, with up to
 * `concurrency` parts in flight. Buffers are recycled, so memory stays at
 * `(concurrency + 1) × partSize`. A file smaller than one part never starts
 * an upload: it is sent as a single PUT. Internal.
 *
 * @module
 */

import type { ByteSink } from "../../core/io.ts";
import { Crc32 } from "../_checksum.ts";
import type { S3Client } from "./_client.ts";
import { xmlText } from "./_xml.ts";

/** How the writer ended: one small body, or uploaded parts to complete. */
export type UploadEnd =
  | { readonly kind: "single"; readonly body: Uint8Array }
  | {
    readonly kind: "multipart";
    readonly uploadId: string;
    readonly parts: readonly string[];
  };

const decoder = new TextDecoder();

/** Parts uploaded from a stream of chunks. */
export class MultipartWriter implements ByteSink {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #key: string;
  readonly #partSize: number;
  readonly #concurrency: number;
  readonly #createHeaders: Readonly<Record<string, string>>;
  readonly #crc = new Crc32();
  #bytes = 0;
  #buffer: Uint8Array | null = null;
  #filled = 0;
  readonly #free: Uint8Array[] = [];
  readonly #inflight = new Set<Promise<void>>();
  readonly #etags: string[] = [];
  #uploadId: Promise<string> | null = null;
  #failure: { error: unknown } | null = null;
  #finished = false;

  constructor(
    client: S3Client,
    bucket: string,
    key: string,
    partSize: number,
    concurrency: number,
    createHeaders: Readonly<Record<string, string>>,
  ) {
    this.#client = client;
    this.#bucket = bucket;
    this.#key = key;
    this.#partSize = partSize;
    this.#concurrency = concurrency;
    this.#createHeaders = createHeaders;
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** `"crc32:…"` of the bytes written so far. */
  digest(): string {
    return this.#crc.digest();
  }

  /** Appends `chunk` (copied; the caller may reuse it once this resolves). */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#finished) {
      throw new Error(
        `Cannot write to "s3://${this.#bucket}/${this.#key}": the write has ended`,
      );
    }
    if (this.#failure !== null) throw this.#failure.error;
    this.#crc.update(chunk);
    this.#bytes += chunk.byteLength;
    let at = 0;
    while (at < chunk.byteLength) {
      this.#buffer ??= this.#free.pop() ?? new Uint8Array(this.#partSize);
      const n = Math.min(chunk.byteLength - at, this.#partSize - this.#filled);
      this.#buffer.set(chunk.subarray(at, at + n), this.#filled);
      this.#filled += n;
      at += n;
      if (this.#filled === this.#partSize) await this.#dispatch();
    }
  }

  #startUpload(): Promise<string> {
    if (this.#uploadId === null) {
      this.#uploadId = this.#client.send({
        method: "POST",
        bucket: this.#bucket,
        key: this.#key,
        query: { uploads: "" },
        headers: this.#createHeaders,
        action: "start a multipart upload of",
      }).then((reply) => {
        const id = xmlText(decoder.decode(reply.body), "UploadId");
        if (id === undefined || id === "") {
          throw new Error(
            `Cannot start a multipart upload of "s3://${this.#bucket}/${this.#key}": the reply has no UploadId`,
          );
        }
        return id;
      });
      // Awaited by every part task and by abort(); mark it handled here so
      // a rejection seen by none of them is not reported as unhandled.
      this.#uploadId.catch(() => {});
    }
    return this.#uploadId;
  }

  /** Uploads the filled buffer as the next part, waiting for a free slot. */
  async #dispatch(): Promise<void> {
    const buffer = this.#buffer!;
    const length = this.#filled;
    this.#buffer = null;
    this.#filled = 0;
    const number = this.#etags.length + 1;
    this.#etags.push("");
    const uploadId = this.#startUpload();
    while (this.#inflight.size >= this.#concurrency) {
      await Promise.race(this.#inflight);
    }
    if (this.#failure !== null) {
      this.#free.push(buffer);
      throw this.#failure.error;
    }
    const task: Promise<void> = this.#upload(number, buffer, length, uploadId)
      .finally(() => {
        this.#free.push(buffer);
        this.#inflight.delete(task);
      });
    this.#inflight.add(task);
  }

  /** Uploads one part; never rejects (a failure is kept in `#failure`). */
  async #upload(
    number: number,
    buffer: Uint8Array,
    length: number,
    uploadId: Promise<string>,
  ): Promise<void> {
    try {
      const reply = await this.#client.send({
        method: "PUT",
        bucket: this.#bucket,
        key: this.#key,
        query: { partNumber: String(number), uploadId: await uploadId },
        body: buffer.subarray(0, length),
        action: `upload part ${number} of`,
      });
      const etag = reply.headers.get("etag");
      if (etag === null) {
        throw new Error(
          `Cannot upload part ${number} of "s3://${this.#bucket}/${this.#key}": the reply has no ETag`,
        );
      }
      this.#etags[number - 1] = etag;
    } catch (error) {
      this.#failure ??= { error };
    }
  }

  /** Waits for every part in flight (they never reject). */
  async #drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.race(this.#inflight);
  }

  /**
   * Ends the stream: uploads the last part and waits for all of them, or,
   * when no part was started, hands back the bytes for a single PUT.
   */
  async finish(): Promise<UploadEnd> {
    this.#finished = true;
    if (this.#uploadId === null) {
      const body = this.#buffer?.subarray(0, this.#filled) ?? new Uint8Array();
      return { kind: "single", body };
    }
    if (this.#filled > 0) await this.#dispatch();
    await this.#drain();
    if (this.#failure !== null) throw this.#failure.error;
    this.#free.length = 0;
    return {
      kind: "multipart",
      uploadId: await this.#uploadId,
      parts: this.#etags,
    };
  }

  /**
   * After a failure: waits for the parts in flight, then aborts the upload
   * (when one was started). Resolves with the abort's own error, if any, so
   * that the caller can report it beside the first failure.
   */
  async abort(): Promise<unknown> {
    this.#finished = true;
    this.#failure ??= { error: new Error("aborted") };
    await this.#drain();
    this.#free.length = 0;
    this.#buffer = null;
    if (this.#uploadId === null) return undefined;
    let uploadId: string;
    try {
      uploadId = await this.#uploadId;
    } catch {
      return undefined; // No upload was created: nothing to abort.
    }
    try {
      await this.#client.send({
        method: "DELETE",
        bucket: this.#bucket,
        key: this.#key,
        query: { uploadId },
        action: "abort the multipart upload of",
        accept: [404],
      });
      return undefined;
    } catch (error) {
      return error;
    }
  }
}
