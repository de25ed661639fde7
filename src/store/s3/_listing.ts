// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The S3 store's listings: a folder's objects and sub-folders
 * (`ListObjectsV2` with delimiter `/`), and the incomplete multipart
 * uploads under a folder (`ListMultipartUploads`), with their abort.
 * Internal to the S3 store.
 *
 * @module
 */

import type { StoreEntry } from "../store.ts";
import type { S3Objects } from "./_head.ts";
import { parseS3Path } from "./_location.ts";
import { xmlElements, xmlText } from "./_xml.ts";

const decoder = new TextDecoder();

/** One page of `ListObjectsV2`. */
interface ListPage {
  readonly contents: string[];
  readonly prefixes: string[];
  readonly next: string | undefined;
}

async function listPage(
  objects: S3Objects,
  bucket: string,
  prefix: string,
  maxKeys: string,
  token: string | undefined,
  action: string,
): Promise<ListPage> {
  const query: Record<string, string> = {
    "list-type": "2",
    prefix,
    delimiter: "/",
    "max-keys": maxKeys,
  };
  if (token !== undefined) query["continuation-token"] = token;
  const reply = await objects.client.send({
    method: "GET",
    bucket,
    key: "",
    query,
    action: `${action} (list)`,
  });
  objects.noteBucket(bucket);
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
 * Whether any key lies under `key/` (a "folder" exists while one does).
 *
 * @param objects The store's client.
 * @param bucket The bucket.
 * @param key The folder's key, without a trailing `/`.
 * @returns Whether the folder has anything in it.
 */
export async function folderExists(
  objects: S3Objects,
  bucket: string,
  key: string,
): Promise<boolean> {
  const page = await listPage(
    objects,
    bucket,
    `${key}/`,
    "1",
    undefined,
    "look at",
  );
  return page.contents.length + page.prefixes.length > 0;
}

/**
 * Lists a folder: keys right under it are files, deeper keys show as their
 * first folder (see `S3Store.list`).
 *
 * @param objects The store's client.
 * @param dir `s3://bucket[/prefix]`.
 * @returns The entries, or `null` when nothing is under the prefix.
 */
export async function listFolder(
  objects: S3Objects,
  dir: string,
): Promise<StoreEntry[] | null> {
  const loc = parseS3Path(dir);
  const prefix = loc.key === "" ? "" : `${loc.key}/`;
  const entries: StoreEntry[] = [];
  let keys = 0;
  let token: string | undefined;
  do {
    const page = await listPage(
      objects,
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

/** A multipart upload begun and neither completed nor aborted. */
export interface IncompleteUpload {
  /** `s3://bucket/key` of the object it would create. */
  readonly path: string;
  /** The bucket. */
  readonly bucket: string;
  /** The object's key. */
  readonly key: string;
  /** The server's id of the upload. */
  readonly uploadId: string;
}

/**
 * The incomplete multipart uploads of keys right under a folder.
 *
 * @param objects The store's client.
 * @param dir `s3://bucket/prefix`.
 * @param prefixes Only uploads of names starting with one of these.
 * @returns The uploads, in the server's order.
 */
export async function listIncompleteUploads(
  objects: S3Objects,
  dir: string,
  prefixes?: readonly string[],
): Promise<IncompleteUpload[]> {
  const loc = parseS3Path(dir);
  const prefix = loc.key === "" ? "" : `${loc.key}/`;
  const uploads: IncompleteUpload[] = [];
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
    const reply = await objects.client.send({
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
        prefixes !== undefined && !prefixes.some((p) => name.startsWith(p))
      ) continue;
      uploads.push({
        path: `s3://${loc.bucket}/${key}`,
        bucket: loc.bucket,
        key,
        uploadId,
      });
    }
    if (xmlText(xml, "IsTruncated") !== "true") break;
    keyMarker = xmlText(xml, "NextKeyMarker");
    idMarker = xmlText(xml, "NextUploadIdMarker");
    if (keyMarker === undefined) break;
  }
  return uploads;
}

/**
 * Aborts the incomplete multipart uploads of keys right under a folder
 * (see `S3Store.removeIncomplete`).
 *
 * @param objects The store's client.
 * @param dir `s3://bucket/prefix`.
 * @param prefixes Only uploads of names starting with one of these.
 * @returns The paths whose uploads were aborted (once per upload).
 */
export async function abortIncompleteUploads(
  objects: S3Objects,
  dir: string,
  prefixes?: readonly string[],
): Promise<string[]> {
  const removed: string[] = [];
  for (const upload of await listIncompleteUploads(objects, dir, prefixes)) {
    await objects.client.send({
      method: "DELETE",
      bucket: upload.bucket,
      key: upload.key,
      query: { uploadId: upload.uploadId },
      action: "abort the incomplete upload of",
      accept: [404],
    });
    removed.push(upload.path);
  }
  return removed;
}
