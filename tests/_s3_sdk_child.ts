// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * An independent S3 client for the S3 store tests: AWS's own SDK from npm,
 * in a child process so that the SDK's many environment and system reads
 * stay out of the test runner's permissions. Argument 1 is
 * `{ endpoint, region, accessKeyId, secretAccessKey }` as JSON; then:
 *
 * - `get <bucket> <key>`: prints `{ size, sha256, etag }` of the object.
 * - `uploads <bucket> <prefix>`: prints the keys of incomplete multipart uploads.
 */
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from "npm:@aws-sdk/client-s3@3.1178.0";

const [config, mode, bucket, arg] = Deno.args;
const c = JSON.parse(config!);
const client = new S3Client({
  endpoint: c.endpoint,
  region: c.region,
  forcePathStyle: true,
  credentials: {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
  },
  // Ceph RGW 16 does not know the SDK's default CRC32 trailers.
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
try {
  if (mode === "get") {
    const reply = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: arg }),
    );
    const bytes = await reply.Body!.transformToByteArray();
    const digest = await crypto.subtle.digest(
      "SHA-256",
      bytes as Uint8Array<ArrayBuffer>,
    );
    const sha256 = Array.from(
      new Uint8Array(digest),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    console.log(
      JSON.stringify({ size: bytes.length, sha256, etag: reply.ETag }),
    );
  } else if (mode === "uploads") {
    const reply = await client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: arg }),
    );
    console.log(JSON.stringify((reply.Uploads ?? []).map((u) => u.Key)));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  client.destroy();
}
