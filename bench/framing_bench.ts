// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `deno task bench` — the encrypting sink and decrypting source in memory,
 * against Web Crypto on the same bytes (the baseline each group compares
 * with). 64 MiB per iteration; the sink writes to a sink that drops blocks.
 */
import {
  createEncryptingSink,
  type EncMode,
  openDecryptingSource,
} from "../mod.ts";

const MIB = 1024 * 1024;
const SIZE = 64 * MIB;
const data = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i += 4096) data[i] = i & 0xff;
const key = new Uint8Array(32).fill(7);
const drop = { write: () => Promise.resolve() };

const webKey = await crypto.subtle.importKey(
  "raw",
  key,
  "AES-GCM",
  false,
  ["encrypt"],
);

async function webCrypto(pieceSize: number, concurrency: number) {
  const inFlight: Promise<unknown>[] = [];
  for (let at = 0; at < SIZE; at += pieceSize) {
    inFlight.push(crypto.subtle.encrypt(
      { name: "AES-GCM", iv: new Uint8Array(16) },
      webKey,
      data.subarray(at, at + pieceSize),
    ));
    if (inFlight.length >= concurrency) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

async function encrypt(mode: EncMode, pieceSize: number, concurrency = 8) {
  const sink = createEncryptingSink(drop, {
    key: mode === "SM4-CBC" ? key.subarray(0, 16) : key,
    mode,
    pieceSize,
    concurrency,
  });
  for (let at = 0; at < SIZE; at += 4 * MIB) {
    await sink.write(data.subarray(at, at + 4 * MIB));
  }
  await sink.finish();
}

for (const mib of [1, 8]) {
  Deno.bench(`Web Crypto AES-256-GCM, ${mib} MiB calls x8`, {
    group: "gcm",
    baseline: mib === 1,
    n: 5,
  }, async () => {
    await webCrypto(mib * MIB, 8);
  });
}
for (const mib of [1, 4, 8, 16]) {
  Deno.bench(`encrypting sink AES-256-GCM, ${mib} MiB pieces`, {
    group: "gcm",
    n: 5,
  }, async () => {
    await encrypt("AES-GCM", mib * MIB);
  });
}
Deno.bench("encrypting sink AES-256-CBC, 1 MiB pieces", {
  group: "cbc",
  n: 5,
}, async () => {
  await encrypt("AES-CBC", 1 * MIB);
});
Deno.bench("encrypting sink SM4-CBC, 1 MiB pieces (workers)", {
  group: "sm4",
  n: 3,
}, async () => {
  await encrypt("SM4-CBC", 1 * MIB);
});

// Decryption: one file per mode, read sequentially in 4 MiB reads.
const files = new Map<EncMode, Uint8Array>();
for (const mode of ["AES-GCM", "AES-CBC"] as EncMode[]) {
  const parts: Uint8Array[] = [];
  const sink = createEncryptingSink({
    write: (c) => {
      parts.push(c.slice());
      return Promise.resolve();
    },
  }, { key, mode });
  await sink.write(data);
  await sink.finish();
  const file = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (file.set(p, at), at + p.length), 0);
  files.set(mode, file);
}
for (const [mode, file] of files) {
  Deno.bench(`decrypting source ${mode}, sequential 4 MiB reads`, {
    group: "decrypt",
    n: 5,
  }, async () => {
    const source = await openDecryptingSource({
      size: file.length,
      readAt: (at, into) =>
        Promise.resolve(into.set(file.subarray(at, at + into.length))),
    }, { key, mode, path: "bench" });
    const into = new Uint8Array(4 * MIB);
    for (let at = 0; at < source.size; at += into.length) {
      await source.readAt(
        at,
        into.subarray(0, Math.min(into.length, source.size - at)),
      );
    }
  });
}
