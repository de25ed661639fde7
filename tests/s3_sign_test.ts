// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The S3 store's payload signing (`signPayload`), without a server: the
 * `x-amz-content-sha256` each request carries, seen through a stubbed
 * `fetch`, and the SHA-256 it carries (`node:crypto` or Web Crypto).
 */
import { createHash } from "node:crypto";
import { equal, throws } from "node:assert/strict";
import { S3Client } from "../src/store/s3/_client.ts";
import {
  resolveS3Options,
  type S3StoreOptions,
} from "../src/store/s3/_options.ts";
import { sha256Hex, sha256HexWebCrypto } from "../src/store/s3/_sigv4.ts";

const MIB = 1024 * 1024;
const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "secret" };

/** The `x-amz-content-sha256` sent with a PUT of `size` bytes. */
async function payloadHeader(
  options: Partial<S3StoreOptions>,
  size: number,
): Promise<string | null> {
  const resolved = resolveS3Options({ credentials, ...options });
  const client = new S3Client(resolved.client);
  const real = globalThis.fetch;
  let seen: string | null = null;
  globalThis.fetch = (_input, init) => {
    seen = new Headers(init?.headers).get("x-amz-content-sha256");
    return Promise.resolve(new Response(null, { status: 200 }));
  };
  try {
    await client.send({
      method: "PUT",
      bucket: "b",
      key: "k",
      body: new Uint8Array(size).fill(7),
      action: "write",
    });
  } finally {
    globalThis.fetch = real;
  }
  return seen;
}

const hashOf = (size: number) =>
  createHash("sha256").update(new Uint8Array(size).fill(7)).digest("hex");

Deno.test('S3 signPayload: "auto" signs every body over http, and leaves parts unsigned over https', async () => {
  const http = { endpoint: "http://127.0.0.1:7480", partSize: 5 * MIB };
  const https = { endpoint: "https://s3.example.com", partSize: 5 * MIB };
  equal(await payloadHeader(http, 5 * MIB), hashOf(5 * MIB));
  equal(await payloadHeader(https, 5 * MIB), "UNSIGNED-PAYLOAD");
  // Smaller bodies (meta.json, a lock's claim) are signed over https too.
  equal(await payloadHeader(https, 1000), hashOf(1000));
});

Deno.test("S3 signPayload: true signs every body, false none (over http too)", async () => {
  const https = "https://s3.example.com";
  const http = "http://127.0.0.1:7480";
  for (const size of [1000, 5 * MIB]) {
    equal(
      await payloadHeader({ endpoint: https, signPayload: true }, size),
      hashOf(size),
    );
    equal(
      await payloadHeader({ endpoint: http, signPayload: false }, size),
      "UNSIGNED-PAYLOAD",
    );
  }
  // No body: the SHA-256 of nothing, whatever the setting.
  equal(
    await payloadHeader({ endpoint: http, signPayload: false }, 0),
    hashOf(0),
  );
});

Deno.test('S3 signPayload: anything but true, false or "auto" is refused', () => {
  throws(
    () =>
      resolveS3Options({
        credentials,
        signPayload: "yes" as unknown as boolean,
      }),
    /signPayload must be true, false or "auto", got "yes"/,
  );
});

Deno.test("S3 payload SHA-256: node:crypto's and Web Crypto's agree", async () => {
  for (const size of [0, 1, 63, 64, 65, 1 << 20]) {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
    equal(await sha256Hex(bytes), await sha256HexWebCrypto(bytes));
    equal(
      await sha256Hex(bytes),
      createHash("sha256").update(bytes).digest("hex"),
    );
  }
});
