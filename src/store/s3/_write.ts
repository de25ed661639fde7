// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The S3 store's write path: stream into a multipart upload (or one `PUT`
 * for a file smaller than a part), commit with `CompleteMultipartUpload`,
 * abort on any failure, and recognise a commit whose reply was lost.
 * Internal to the S3 store.
 *
 * @module
 */

import type { ByteSink } from "../../core/io.ts";
import type { StoreWriteResult } from "../store.ts";
import type { S3Reply } from "./_client.ts";
import type { S3Objects } from "./_head.ts";
import { denoError, type Location } from "./_location.ts";
import { randomHex } from "./_sigv4.ts";
import { MultipartWriter } from "./_upload.ts";
import { encodeXmlText, xmlElements, xmlText } from "./_xml.ts";
import { S3Error } from "./errors.ts";

/** The metadata header that marks which write an object came from. */
const WRITE_ID = "x-amz-meta-ckpt-write-id";
const COMMIT = "commit (complete the upload of)";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What one write needs to know. */
export interface WriteRequest {
  /** `s3://bucket/key`, for messages. */
  readonly path: string;
  /** Its bucket and key. */
  readonly loc: Location;
  /** Refuse an object already there. */
  readonly overwrite: boolean;
  /** Bytes per part. */
  readonly partSize: number;
  /** Parts in flight. */
  readonly concurrency: number;
}

function exists(path: string): Error {
  return denoError(
    "AlreadyExists",
    `Cannot write "${path}": it exists and overwrite is false`,
  );
}

/**
 * Streams `produce`'s bytes to the object and commits them, or aborts the
 * upload so that nothing appears (see `S3Store.write`).
 *
 * @param objects The store's client.
 * @param req Where, and how.
 * @param produce Writes the bytes into the sink.
 * @returns Size and CRC-32 of the bytes written.
 */
export async function writeObject(
  objects: S3Objects,
  req: WriteRequest,
  produce: (sink: ByteSink) => Promise<void>,
): Promise<StoreWriteResult> {
  const { loc, overwrite, path } = req;
  const writeId = randomHex(12);
  const metadata = {
    [WRITE_ID]: writeId,
    "content-type": "application/octet-stream",
  };
  const writer = new MultipartWriter(
    objects.client,
    loc.bucket,
    loc.key,
    req.partSize,
    req.concurrency,
    metadata,
  );
  let committed = false;
  try {
    await produce(writer);
    const end = await writer.finish();
    if (end.kind === "single") {
      await putSmall(objects, req, end.body, metadata);
    } else {
      // Ceph RGW 16 ignores If-None-Match on the completion: this HEAD is
      // all that refuses an existing object there (docs/object-storage.md).
      if (!overwrite && (await objects.head(loc, "write")) !== null) {
        throw exists(path);
      }
      await complete(objects, req, end.uploadId, end.parts, writeId);
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
async function putSmall(
  objects: S3Objects,
  req: WriteRequest,
  body: Uint8Array,
  metadata: Record<string, string>,
): Promise<void> {
  const reply = await objects.client.send({
    method: "PUT",
    bucket: req.loc.bucket,
    key: req.loc.key,
    body,
    headers: req.overwrite ? metadata : { ...metadata, "if-none-match": "*" },
    action: "write",
    accept: [412],
  });
  if (
    reply.status === 412 &&
    !(await isOurs(objects, req.loc, metadata[WRITE_ID]!, reply))
  ) {
    throw exists(req.path);
  }
}

/**
 * After a refusal that may follow a retried attempt: whether the object
 * there is the one this write made (its reply was lost, the retry saw it).
 */
async function isOurs(
  objects: S3Objects,
  loc: Location,
  writeId: string,
  reply: S3Reply,
): Promise<boolean> {
  if (reply.attempts === 1) return false;
  const head = await objects.head(loc, "write");
  return head?.headers.get(WRITE_ID) === writeId;
}

/** `CompleteMultipartUpload`, the commit of a multipart write. */
async function complete(
  objects: S3Objects,
  req: WriteRequest,
  uploadId: string,
  parts: readonly string[],
  writeId: string,
): Promise<void> {
  const { loc } = req;
  const xml = `<CompleteMultipartUpload>${
    parts.map((etag, i) =>
      `<Part><PartNumber>${i + 1}</PartNumber><ETag>${
        encodeXmlText(etag)
      }</ETag></Part>`
    ).join("")
  }</CompleteMultipartUpload>`;
  const reply = await objects.client.send({
    method: "POST",
    bucket: loc.bucket,
    key: loc.key,
    query: { uploadId },
    body: encoder.encode(xml),
    headers: req.overwrite ? {} : { "if-none-match": "*" },
    action: COMMIT,
    accept: [404, 412],
  });
  if (reply.status === 200) {
    // S3 may report a failed completion inside a 200 reply.
    const text = decoder.decode(reply.body);
    if (xmlElements(text, "Error").length === 0) return;
    throw new S3Error({
      action: COMMIT,
      bucket: loc.bucket,
      key: loc.key,
      status: 200,
      s3Code: xmlText(text, "Code") ?? "",
      detail: xmlText(text, "Message") ?? "the server reported an error",
    });
  }
  // A retried completion after a lost reply finds the upload gone
  // (NoSuchUpload) or the object there (412): done if it is ours.
  if (await isOurs(objects, loc, writeId, reply)) return;
  if (reply.status === 412) throw exists(req.path);
  throw new S3Error({
    action: COMMIT,
    bucket: loc.bucket,
    key: loc.key,
    status: reply.status,
    s3Code: xmlText(decoder.decode(reply.body), "Code") ?? "",
    detail: "the upload is gone (aborted by a cleanup?)",
  });
}
