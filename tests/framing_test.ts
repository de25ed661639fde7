// Copyright 2026 the @ckpt/monitor authors. MIT license.
import {
  deepEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
import { createDecipheriv } from "node:crypto";
import {
  type ByteSource,
  createEncryptingSink,
  DecryptionError,
  detectCipher,
  type EncMode,
  EncryptionMismatchError,
  openDecryptingSource,
} from "../mod.ts";
import {
  fromHex,
  MemorySink,
  memorySource,
  pattern,
  readAll,
  toHex,
} from "./_crypto_helpers.ts";

const ALL_MODES: EncMode[] = ["AES-GCM", "AES-CBC", "SM4-CBC"];
const KEY_SIZES: Record<EncMode, number[]> = {
  "AES-GCM": [16, 24, 32],
  "AES-CBC": [16, 24, 32],
  "SM4-CBC": [16],
};
const MAGIC_HEX: Record<EncMode, string> = {
  "AES-GCM": "d85e3a7f",
  "AES-CBC": "d95e3a7f",
  "SM4-CBC": "da5e3a7f",
};

interface Block {
  at: number;
  magic: number;
  tag: Uint8Array;
  blockLength: number;
  ivLength: number;
  iv: Uint8Array;
  cipherLength: number;
  cipher: Uint8Array;
}

/** Parses blocks the way MindSpore's reader does, independently of framing.ts. */
function parseBlocks(file: Uint8Array, mode: EncMode): Block[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const blocks: Block[] = [];
  let at = 0;
  while (at < file.length) {
    const start = at;
    const magic = view.getUint32(at, true);
    at += 4;
    let tag = new Uint8Array(0);
    if (mode === "AES-GCM") {
      tag = file.slice(at, at + 16);
      at += 16;
    }
    const blockLength = view.getInt32(at, true);
    const ivLength = view.getInt32(at + 4, true);
    const iv = file.slice(at + 8, at + 8 + ivLength);
    at += 8 + ivLength;
    const cipherLength = view.getInt32(at, true);
    at += 4;
    const cipher = file.slice(at, at + cipherLength);
    at += cipherLength;
    blocks.push({
      at: start,
      magic,
      tag,
      blockLength,
      ivLength,
      iv,
      cipherLength,
      cipher,
    });
  }
  return blocks;
}

async function encrypt(
  plain: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
  options: { pieceSize?: number; concurrency?: number; writeSize?: number } =
    {},
): Promise<Uint8Array<ArrayBuffer>> {
  const sink = new MemorySink();
  const { writeSize, ...rest } = options;
  const enc = createEncryptingSink(sink, { key, mode, ...rest });
  const step = writeSize ?? (plain.length || 1);
  for (let at = 0; at < plain.length; at += step) {
    // The caller reuses its chunk: the sink must have copied it.
    const chunk = plain.slice(at, at + step);
    await enc.write(chunk);
    chunk.fill(0xee);
  }
  await enc.finish();
  return sink.bytes();
}

async function decrypt(
  file: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
): Promise<Uint8Array> {
  const source = await openDecryptingSource(memorySource(file), {
    key,
    mode,
    path: "test.ckpt",
  });
  return await readAll(source);
}

function isDecryptionError(e: unknown): boolean {
  return e instanceof DecryptionError &&
    e.message ===
      'Cannot decrypt checkpoint "test.ckpt": wrong key or mode, or the file was modified';
}

/** Decrypting must fail with DecryptionError at open or at the full read. */
async function assertDecryptionFails(
  file: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
  what: string,
): Promise<void> {
  try {
    await decrypt(file, key, mode);
  } catch (e) {
    assert(isDecryptionError(e), `${what}: ${e}`);
    return;
  }
  assert(false, `${what}: decrypted without error`);
}

/**
 * A flipped bit in any header byte of any block is a DecryptionError, except
 * in a CBC IV (it only changes the first plaintext block of its piece).
 */
async function assertHeadersChecked(
  file: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
): Promise<void> {
  const headerLength = mode === "AES-GCM" ? 48 : 32;
  const ivAt = mode === "AES-GCM" ? 28 : 12;
  for (const b of parseBlocks(file, mode)) {
    for (let i = 0; i < headerLength; i++) {
      if (mode !== "AES-GCM" && i >= ivAt && i < ivAt + 16) continue;
      const broken = file.slice();
      broken[b.at + i]! ^= 0x01;
      await assertDecryptionFails(
        broken,
        key,
        mode,
        `${mode} block at ${b.at} header byte ${i}`,
      );
    }
  }
}

/**
 * Every cut of `file` (1 byte on): at a block boundary whole blocks are
 * missing, which the framing cannot tell (the format parser can), so it
 * decrypts to a prefix of `plain`; anywhere else it is a DecryptionError.
 */
async function assertCutsCaught(
  file: Uint8Array,
  plain: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
): Promise<void> {
  const boundaries = new Set(parseBlocks(file, mode).map((b) => b.at));
  for (let n = 1; n < file.length; n++) {
    const cut = file.subarray(0, n);
    if (boundaries.has(n)) {
      const got = await decrypt(cut, key, mode);
      assertEquals(got, plain.subarray(0, got.length));
    } else {
      await assertDecryptionFails(cut, key, mode, `${mode} cut at ${n}`);
    }
  }
}

Deno.test("detectCipher reads the magic of each mode and nothing else", () => {
  assertEquals(
    detectCipher(new Uint8Array([0xd8, 0x5e, 0x3a, 0x7f])),
    "AES-GCM",
  );
  assertEquals(
    detectCipher(new Uint8Array([0xd9, 0x5e, 0x3a, 0x7f, 0])),
    "AES-CBC",
  );
  assertEquals(
    detectCipher(new Uint8Array([0xda, 0x5e, 0x3a, 0x7f])),
    "SM4-CBC",
  );
  assertEquals(detectCipher(new Uint8Array([0xdb, 0x5e, 0x3a, 0x7f])), null);
  assertEquals(detectCipher(new Uint8Array([0x7f, 0x3a, 0x5e, 0xd8])), null);
  assertEquals(detectCipher(new Uint8Array([0xd8, 0x5e, 0x3a])), null);
  assertEquals(detectCipher(new Uint8Array(0)), null);
});

Deno.test("blocks follow MindSpore's layout byte for byte", async () => {
  for (const mode of ALL_MODES) {
    const plain = pattern(2500, 3);
    const key = pattern(16, 9);
    const file = await encrypt(plain, key, mode, {
      pieceSize: 1000,
      writeSize: 333,
    });
    const blocks = parseBlocks(file, mode);
    assertEquals(blocks.length, 3);
    const header = mode === "AES-GCM" ? 48 : 32;
    const plainLengths = [1000, 1000, 500];
    let at = 0;
    for (const [i, b] of blocks.entries()) {
      assertEquals(b.at, at);
      assertEquals(toHex(file.subarray(at, at + 4)), MAGIC_HEX[mode]);
      assertEquals(b.ivLength, 16);
      const expected = mode === "AES-GCM"
        ? plainLengths[i]!
        : 16 * (Math.floor(plainLengths[i]! / 16) + 1);
      assertEquals(b.cipherLength, expected);
      assertEquals(b.blockLength, 24 + b.cipherLength);
      at += header + b.cipherLength;
    }
    assertEquals(at, file.length);
    // A fresh IV for every block.
    assertEquals(new Set(blocks.map((b) => toHex(b.iv))).size, 3);
  }
});

Deno.test("each block decrypts on its own with node:crypto (GCM) / openssl (CBC, SM4)", async () => {
  const plain = pattern(200_000, 11);
  for (const mode of ALL_MODES) {
    for (const n of KEY_SIZES[mode]) {
      const key = pattern(n, n);
      // Pieces above 64 KiB take the worker path for SM4.
      const file = await encrypt(plain, key, mode, { pieceSize: 70_000 });
      const parts: Uint8Array[] = [];
      for (const b of parseBlocks(file, mode)) {
        if (mode === "AES-GCM" && n === 24) {
          // Deno's node:crypto has no aes-192-gcm; crypto_fixtures.json (made
          // by Node with OpenSSL) covers AES-192-GCM framing.
          continue;
        } else if (mode === "AES-GCM") {
          const d = createDecipheriv(
            `aes-${n * 8}-gcm` as "aes-128-gcm",
            key,
            b.iv,
          );
          d.setAuthTag(b.tag);
          parts.push(
            new Uint8Array(d.update(b.cipher)),
            new Uint8Array(d.final()),
          );
        } else {
          const name = mode === "SM4-CBC" ? "sm4-cbc" : `aes-${n * 8}-cbc`;
          parts.push(await opensslDecryptCbc(name, key, b.iv, b.cipher));
        }
      }
      if (mode === "AES-GCM" && n === 24) continue;
      const joined = new Uint8Array(plain.length);
      let at = 0;
      for (const p of parts) {
        joined.set(p, at);
        at += p.length;
      }
      assertEquals(at, plain.length);
      assertEquals(joined, plain, `${mode} ${n * 8}`);
    }
  }
});

async function opensslDecryptCbc(
  name: string,
  key: Uint8Array,
  iv: Uint8Array,
  cipher: Uint8Array,
): Promise<Uint8Array> {
  const child = new Deno.Command("openssl", {
    args: ["enc", "-d", `-${name}`, "-K", toHex(key), "-iv", toHex(iv)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(cipher);
  await writer.close();
  const out = await child.output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

async function opensslEncryptCbc(
  name: string,
  key: Uint8Array,
  iv: Uint8Array,
  plain: Uint8Array,
): Promise<Uint8Array> {
  const child = new Deno.Command("openssl", {
    args: ["enc", "-e", `-${name}`, "-K", toHex(key), "-iv", toHex(iv)],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(plain);
  await writer.close();
  const out = await child.output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

Deno.test("files framed by Node's OpenSSL-backed crypto decrypt", async () => {
  const fixtures = JSON.parse(
    await Deno.readTextFile(
      new URL("./fixtures/crypto_fixtures.json", import.meta.url),
    ),
  );
  assertEquals(fixtures.framed_files.length, 6);
  for (const f of fixtures.framed_files) {
    const got = await decrypt(fromHex(f.file), fromHex(f.key), f.mode);
    assertEquals(toHex(got), f.plaintext, `${f.mode} ${f.key.length * 4}`);
  }
});

Deno.test("CBC and SM4 files framed here with the openssl command decrypt", async () => {
  for (
    const [mode, name, key] of [
      ["AES-CBC", "aes-192-cbc", pattern(24, 5)],
      ["SM4-CBC", "sm4-cbc", pattern(16, 6)],
    ] as [EncMode, string, Uint8Array][]
  ) {
    const pieces = [
      pattern(100_000, 1),
      pattern(16, 2),
      pattern(0, 3),
      pattern(999, 4),
    ];
    const parts: Uint8Array[] = [];
    for (const piece of pieces) {
      const iv = crypto.getRandomValues(new Uint8Array(16));
      const cipher = await opensslEncryptCbc(name, key, iv, piece);
      const head = new Uint8Array(32);
      const view = new DataView(head.buffer);
      view.setUint32(0, mode === "SM4-CBC" ? 0x7F3A5EDA : 0x7F3A5ED9, true);
      view.setInt32(4, 24 + cipher.length, true);
      view.setInt32(8, 16, true);
      head.set(iv, 12);
      view.setInt32(28, cipher.length, true);
      parts.push(head, cipher);
    }
    const sink = new MemorySink();
    for (const p of parts) await sink.write(p);
    const got = await decrypt(sink.bytes(), key, mode);
    const expected = new MemorySink();
    for (const p of pieces) await expected.write(p);
    assertEquals(got, expected.bytes(), mode);
  }
});

Deno.test("round trips for every AES key size, piece size and write pattern", async () => {
  const sizes = [0, 1, 15, 16, 17, 255, 256, 257, 1024, 5000];
  for (const mode of ALL_MODES) {
    for (const n of KEY_SIZES[mode]) {
      const key = pattern(n, n + 1);
      for (const size of sizes) {
        const plain = pattern(size, size + 7);
        for (const pieceSize of [16, 100, 256, 4096]) {
          for (const writeSize of [1, 7, 256, 10000]) {
            if (writeSize === 1 && size > 300) continue;
            const file = await encrypt(plain, key, mode, {
              pieceSize,
              writeSize,
              concurrency: 1 + (size % 5),
            });
            const got = await decrypt(file, key, mode);
            assertEquals(
              got,
              plain,
              `${mode} ${n} ${size} ${pieceSize} ${writeSize}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("an empty stream is one block, so an encrypted file is never empty", async () => {
  for (const mode of ALL_MODES) {
    const key = pattern(16);
    const file = await encrypt(new Uint8Array(0), key, mode);
    assertEquals(file.length, 48); // GCM: 48 + 0; CBC: 32 + 16 of padding
    assertEquals(parseBlocks(file, mode).length, 1);
    assertEquals((await decrypt(file, key, mode)).length, 0);
  }
});

Deno.test("random reads return the right bytes, across block boundaries", async () => {
  // 3,000 blocks, read in runs of up to 1 MiB: reads cross runs, and with
  // 12 runs against a cache of 8, runs leave the cache (their buffers go
  // back to the cipher) while concurrent reads still copy from others.
  const plain = pattern(12_000_000, 5);
  for (const mode of ALL_MODES) {
    const key = pattern(KEY_SIZES[mode].at(-1)!, 2);
    const file = await encrypt(plain, key, mode, {
      pieceSize: 4000,
      concurrency: 3,
    });
    const source = await openDecryptingSource(memorySource(file), {
      key,
      mode,
      path: "test.ckpt",
    });
    assertEquals(source.size, plain.length);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    // Some concurrent reads too.
    const reads: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const at = rand(plain.length);
      const len = Math.min(rand(150_000), plain.length - at);
      const into = new Uint8Array(len);
      const check = source.readAt(at, into).then(() => {
        assertEquals(into, plain.subarray(at, at + len));
      });
      if (i % 3 === 0) reads.push(check);
      else await check;
    }
    await Promise.all(reads);
    await source.readAt(plain.length, new Uint8Array(0));
    await assertRejects(
      source.readAt(plain.length - 1, new Uint8Array(2)),
      RangeError,
    );
    await assertRejects(source.readAt(-1, new Uint8Array(1)), RangeError);
  }
});

Deno.test("a wrong key fails with DecryptionError", async () => {
  const plain = pattern(3000);
  for (const mode of ALL_MODES) {
    for (const n of KEY_SIZES[mode]) {
      const key = pattern(n, 1);
      const file = await encrypt(plain, key, mode, { pieceSize: 1024 });
      const wrong = key.slice();
      wrong[0]! ^= 1;
      await assertDecryptionFails(file, wrong, mode, `${mode} ${n}`);
      // A key of another (valid) length is a wrong key too.
      if (mode === "SM4-CBC") continue;
      await assertDecryptionFails(
        file,
        pattern(n === 16 ? 32 : 16, 1),
        mode,
        mode,
      );
    }
  }
});

Deno.test("a wrong mode fails with DecryptionError", async () => {
  const plain = pattern(3000);
  const key = pattern(16, 1);
  for (
    const [fileMode, readMode] of [
      ["AES-GCM", "AES-CBC"],
      ["AES-CBC", "AES-GCM"],
      ["AES-GCM", "SM4-CBC"],
      ["AES-CBC", "SM4-CBC"],
    ] as [EncMode, EncMode][]
  ) {
    const file = await encrypt(plain, key, fileMode);
    await assertDecryptionFails(
      file,
      key,
      readMode,
      `${fileMode} as ${readMode}`,
    );
  }
});

Deno.test("a flipped byte anywhere in a GCM file fails with DecryptionError", async () => {
  const plain = pattern(300, 4);
  const key = pattern(16, 8);
  const file = await encrypt(plain, key, "AES-GCM", { pieceSize: 100 });
  assertEquals(file.length, 3 * 48 + 300);
  for (let i = 0; i < file.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = file.slice();
      bad[i]! ^= bit;
      await assertDecryptionFails(bad, key, "AES-GCM", `byte ${i} bit ${bit}`);
    }
  }
});

Deno.test("a CBC or SM4 file with bad padding or a broken header fails with DecryptionError", async () => {
  for (const mode of ["AES-CBC", "SM4-CBC"] as EncMode[]) {
    const key = pattern(16, 8);
    const file = await encrypt(pattern(100, 1), key, mode, { pieceSize: 64 });
    const blocks = parseBlocks(file, mode);
    assertEquals(blocks.length, 2);
    // Flipping a bit of the second-to-last 16-byte ciphertext block flips
    // the same bit of the last plaintext byte: the padding byte.
    const second = blocks[1]!;
    const bad = file.slice();
    bad[second.at + 32 + second.cipherLength - 17]! ^= 0x40;
    await assertDecryptionFails(bad, key, mode, `${mode} padding`);
    await assertHeadersChecked(file, key, mode);
  }
});

Deno.test("a truncated file fails with DecryptionError, except at a block boundary", async () => {
  for (const mode of ALL_MODES) {
    const key = pattern(16, 3);
    const plain = pattern(300, 2);
    const file = await encrypt(plain, key, mode, { pieceSize: 100 });
    // Nothing left to say it was encrypted.
    await assertRejects(
      decrypt(file.subarray(0, 0), key, mode),
      EncryptionMismatchError,
    );
    await assertCutsCaught(file, plain, key, mode);
  }
});

Deno.test("reordered blocks decrypt: the framing cannot detect it (documented)", async () => {
  for (const mode of ALL_MODES) {
    const key = pattern(16, 3);
    const plain = pattern(200, 2);
    const file = await encrypt(plain, key, mode, { pieceSize: 100 });
    const [a, b] = parseBlocks(file, mode);
    const swapped = new Uint8Array(file.length);
    swapped.set(file.subarray(b!.at), 0);
    swapped.set(file.subarray(0, b!.at), file.length - b!.at);
    const got = await decrypt(swapped, key, mode);
    // Never garbage: the same pieces, in another order.
    assertEquals(got.subarray(0, 100), plain.subarray(100));
    assertEquals(got.subarray(100), plain.subarray(0, 100));
    assert(a !== undefined);
  }
});

Deno.test("a file of many even blocks: every broken header and every cut is caught", async () => {
  // More than eight blocks: the reader predicts the headers from the first
  // and the last, and checks each predicted one when it decrypts its block.
  for (const mode of ALL_MODES) {
    for (const pieceSize of [64, 100]) {
      const key = pattern(16, 8);
      const plain = pattern(11 * pieceSize + 16, 1);
      const file = await encrypt(plain, key, mode, { pieceSize });
      const blocks = parseBlocks(file, mode);
      assertEquals(blocks.length, 12);
      assertEquals(await decrypt(file, key, mode), plain);
      await assertHeadersChecked(file, key, mode);
      await assertCutsCaught(file, plain, key, mode);
    }
  }
});

Deno.test("a file of many blocks of unequal sizes decrypts", async () => {
  for (const mode of ALL_MODES) {
    const key = pattern(16, 4);
    const a = pattern(640, 1);
    const b = pattern(300, 2);
    const c = pattern(2000, 3);
    const parts = [
      await encrypt(a, key, mode, { pieceSize: 64 }),
      await encrypt(b, key, mode, { pieceSize: 50 }),
      await encrypt(c, key, mode, { pieceSize: 1000 }),
    ];
    const file = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (file.set(p, at), at + p.length), 0);
    assertEquals(parseBlocks(file, mode).length, 18);
    const plain = new Uint8Array(a.length + b.length + c.length);
    plain.set(a);
    plain.set(b, a.length);
    plain.set(c, a.length + b.length);
    assertEquals(await decrypt(file, key, mode), plain);
  }
});

Deno.test("a plain file read with a key fails with EncryptionMismatchError", async () => {
  for (
    const plain of [new Uint8Array([0x0a, 0x05, 1, 2, 3, 4]), new Uint8Array(0)]
  ) {
    await assertRejects(
      decrypt(plain, pattern(16), "AES-GCM"),
      (e: unknown) =>
        e instanceof EncryptionMismatchError && e.fileMode === null &&
        e.requestedMode === "AES-GCM" && /not encrypted/.test(e.message),
    );
  }
});

Deno.test("bad options throw before anything is written", () => {
  const sink = new MemorySink();
  const key = new Uint8Array(16);
  const cases: [unknown, unknown][] = [
    [{ key: "k", mode: "AES-GCM" }, TypeError],
    [{ key, mode: "AES-XTS" }, RangeError],
    [{ key: new Uint8Array(20), mode: "AES-CBC" }, RangeError],
    [{ key: new Uint8Array(32), mode: "SM4-CBC" }, RangeError],
    [{ key, mode: "AES-GCM", pieceSize: 0 }, RangeError],
    [{ key, mode: "AES-GCM", pieceSize: 64 * 1024 * 1024 + 1 }, RangeError],
    [{ key, mode: "AES-GCM", pieceSize: 1.5 }, RangeError],
    [{ key, mode: "AES-GCM", concurrency: 0 }, RangeError],
  ];
  for (const [options, type] of cases) {
    assertThrows(
      () =>
        createEncryptingSink(
          sink,
          options as Parameters<typeof createEncryptingSink>[1],
        ),
      type as typeof Error,
    );
  }
  assertEquals(sink.parts.length, 0);
});

Deno.test("openDecryptingSource checks key and mode before reading", async () => {
  let reads = 0;
  const source: ByteSource = {
    size: 100,
    readAt: () => {
      reads++;
      return Promise.resolve();
    },
  };
  await assertRejects(
    openDecryptingSource(source, {
      key: new Uint8Array(5),
      mode: "AES-GCM",
      path: "x",
    }),
    RangeError,
  );
  await assertRejects(
    openDecryptingSource(source, {
      key: "k" as unknown as Uint8Array,
      mode: "AES-GCM",
      path: "x",
    }),
    TypeError,
  );
  assertEquals(reads, 0);
});

Deno.test("blocks are written in order while many pieces are in flight", async () => {
  const plain = pattern(64 * 1024 + 3, 9);
  const key = pattern(32, 4);
  // A slow sink makes later pieces finish encrypting first.
  const parts: Uint8Array[] = [];
  let writing = false;
  const sink = {
    async write(chunk: Uint8Array) {
      assert(!writing, "write called while another is in progress");
      writing = true;
      parts.push(chunk.slice());
      await new Promise((r) => setTimeout(r, 0));
      writing = false;
    },
  };
  const enc = createEncryptingSink(sink, {
    key,
    mode: "AES-GCM",
    pieceSize: 1024,
    concurrency: 16,
  });
  await enc.write(plain);
  await enc.finish();
  await assertRejects(enc.write(new Uint8Array(1)), TypeError);
  const file = new MemorySink();
  for (const p of parts) await file.write(p);
  assertEquals(await decrypt(file.bytes(), key, "AES-GCM"), plain);
});

Deno.test("a failing inner sink fails the encrypting sink for good", async () => {
  const enc = createEncryptingSink({
    write: () => Promise.reject(new Error("disk full")),
  }, {
    key: new Uint8Array(16),
    mode: "AES-CBC",
    pieceSize: 16,
    concurrency: 1,
  });
  // Small blocks are gathered into 4 MiB writes, so the failure surfaces at
  // the write that flushes, or at finish() at the latest.
  await enc.write(new Uint8Array(40));
  await assertRejects(enc.finish(), /disk full/);
  await assertRejects(enc.write(new Uint8Array(1)), /disk full/);
  await assertRejects(enc.finish(), /disk full/);
});

Deno.test("a failing inner sink fails a later write, and no write after it is tried", async () => {
  let writes = 0;
  const enc = createEncryptingSink({
    write: () => {
      writes++;
      return Promise.reject(new Error("disk full"));
    },
  }, { key: new Uint8Array(16), mode: "AES-GCM", pieceSize: 1024 * 1024 });
  const chunk = new Uint8Array(1024 * 1024);
  let failedAt = -1;
  for (let i = 0; i < 32 && failedAt < 0; i++) {
    await enc.write(chunk).catch(() => failedAt = i);
  }
  assert(failedAt > 0 && failedAt < 32, `failed at ${failedAt}`);
  assertEquals(writes, 1);
  await assertRejects(enc.finish(), /disk full/);
});

Deno.test("the encrypting sink lets timers run while the cipher keeps up", async () => {
  // SM4 pieces of 16 KiB run on the calling thread and the inner sink
  // resolves at once, so every await of the stream settles in microtasks:
  // without the sink's own turns, no timer could run until the end.
  let ticks = 0;
  let during = -1;
  const timer = setInterval(() => ticks++, 1);
  try {
    const enc = createEncryptingSink({ write: () => Promise.resolve() }, {
      key: pattern(16, 1),
      mode: "SM4-CBC",
      pieceSize: 16 * 1024,
    });
    const start = ticks;
    await enc.write(new Uint8Array(8 * 1024 * 1024));
    during = ticks - start;
    await enc.finish();
  } finally {
    clearInterval(timer);
  }
  assert(during > 0, `timer ticks during an 8 MiB write: ${during}`);
});
