// Copyright 2026 the @ckpt/monitor authors. MIT license.
import {
  deepEqual as assertEquals,
  notDeepEqual,
  ok as assert,
  rejects as assertRejects,
} from "node:assert/strict";
import { createDecipheriv } from "node:crypto";
import {
  checksumFile,
  DecryptionError,
  DEFAULT_PIECE_SIZE,
  type EncMode,
  EncryptionMismatchError,
  loadCheckpoint,
  openCheckpoint,
  saveCheckpoint,
  type Tensor,
} from "../mod.ts";
import { listDir, withTempDir } from "./_helpers.ts";
import { pattern, toHex } from "./_crypto_helpers.ts";

const FORMATS = ["ckpt", "safetensors"] as const;
const CASES: [EncMode, number][] = [
  ["AES-GCM", 16],
  ["AES-GCM", 24],
  ["AES-GCM", 32],
  ["AES-CBC", 16],
  ["AES-CBC", 24],
  ["AES-CBC", 32],
  ["SM4-CBC", 16],
];
const MIB = 1024 * 1024;

function network(bigBytes = 0): Map<string, Tensor> {
  const m = new Map<string, Tensor>([
    ["layer.weight", {
      dtype: "Float32",
      shape: [3, 4],
      data: Float32Array.from({ length: 12 }, (_, i) => i / 3),
    }],
    ["layer.bias", {
      dtype: "Int64",
      shape: [2],
      data: new BigInt64Array([-1n, 5n]),
    }],
    ["flag", { dtype: "Bool", shape: [], data: new Uint8Array([1]) }],
  ]);
  if (bigBytes > 0) {
    const big = new Float32Array(bigBytes / 4);
    new Uint8Array(big.buffer).set(pattern(bigBytes, 77));
    m.set("big", { dtype: "Float32", shape: [big.length], data: big });
  }
  m.set("tail", { dtype: "Int8", shape: [3], data: new Int8Array([7, 8, 9]) });
  return m;
}

/** Compares tensors by dtype, shape and bytes (random bytes hold NaNs). */
function assertSameTensor(got: unknown, expected: Tensor, what: string) {
  const t = got as Tensor;
  assertEquals([t.dtype, t.shape], [expected.dtype, expected.shape], what);
  const bytes = (a: Tensor["data"]) =>
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const a = bytes(t.data);
  const b = bytes(expected.data);
  assert(a.length === b.length && a.every((v, i) => v === b[i]), what);
}

function assertLoaded(
  loaded: Map<string, Tensor | string>,
  net: Map<string, Tensor>,
) {
  for (const [name, t] of net) assertSameTensor(loaded.get(name), t, name);
}

const isDecryptionError = (path: string) => (e: unknown) =>
  e instanceof DecryptionError && e.path === path &&
  e.message === new DecryptionError(path).message;

/** Splits a framed file into blocks (independently of framing.ts). */
function blocks(file: Uint8Array, mode: EncMode) {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out: {
    at: number;
    end: number;
    tag: Uint8Array;
    iv: Uint8Array;
    cipher: Uint8Array;
  }[] = [];
  let at = 0;
  while (at < file.length) {
    const gcm = mode === "AES-GCM";
    const tag = gcm ? file.subarray(at + 4, at + 20) : new Uint8Array(0);
    const p = at + (gcm ? 20 : 4);
    const iv = file.subarray(p + 8, p + 24);
    const n = view.getInt32(p + 24, true);
    const cipher = file.subarray(p + 28, p + 28 + n);
    out.push({ at, end: p + 28 + n, tag, iv, cipher });
    at = p + 28 + n;
  }
  return out;
}

async function openssl(args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [out] = await Promise.all([
    child.output(),
    (async () => {
      const w = child.stdin.getWriter();
      await w.write(input);
      await w.close();
    })(),
  ]);
  assert(out.success, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

Deno.test("encrypted save and load round-trip for every mode and key size, both formats", async () => {
  await withTempDir(async (dir) => {
    const net = network();
    for (const format of FORMATS) {
      for (const [mode, n] of CASES) {
        const key = pattern(n, n + mode.length);
        const path = `${dir}/m-${mode}-${n}.${format}`;
        const saved = await saveCheckpoint(path, net, {
          format,
          encKey: key,
          encMode: mode,
        });
        const bytes = await Deno.readFile(path);
        assertEquals(saved.bytes, bytes.length);
        // The checksum is over the bytes on disk: the ciphertext.
        assertEquals(await checksumFile(path), saved.checksum);
        const magic =
          { "AES-GCM": "d8", "AES-CBC": "d9", "SM4-CBC": "da" }[mode];
        assertEquals(toHex(bytes.subarray(0, 4)), `${magic}5e3a7f`);
        const loaded = await loadCheckpoint(path, {
          decKey: key,
          decMode: mode,
        });
        assertEquals([...loaded.keys()], [...net.keys()]);
        assertLoaded(loaded, net);
      }
    }
  });
});

Deno.test("encMode defaults to AES-GCM, like MindSpore's enc_mode", async () => {
  await withTempDir(async (dir) => {
    const key = pattern(16);
    await saveCheckpoint(`${dir}/m.ckpt`, network(), { encKey: key });
    const bytes = await Deno.readFile(`${dir}/m.ckpt`);
    assertEquals(toHex(bytes.subarray(0, 4)), "d85e3a7f");
    assertLoaded(
      await loadCheckpoint(`${dir}/m.ckpt`, { decKey: key }),
      network(),
    );
  });
});

Deno.test("an encrypted multi-block file reads at random through openCheckpoint", async () => {
  await withTempDir(async (dir) => {
    const net = network(2.5 * MIB); // two AES pieces, three SM4 ones
    for (const format of FORMATS) {
      const plain = await saveCheckpoint(`${dir}/plain.${format}`, net, {
        format,
      });
      for (const mode of ["AES-GCM", "SM4-CBC"] as EncMode[]) {
        const key = pattern(16, 3);
        const path = `${dir}/big-${mode}.${format}`;
        await saveCheckpoint(path, net, { format, encKey: key, encMode: mode });
        assertEquals(
          blocks(await Deno.readFile(path), mode).length,
          Math.ceil(plain.bytes / DEFAULT_PIECE_SIZE[mode]),
        );
        await using reader = await openCheckpoint(path, {
          decKey: key,
          decMode: mode,
        });
        assertEquals(reader.entries.map((e) => e.name), [...net.keys()]);
        for (const name of ["tail", "big", "flag", "layer.weight", "tail"]) {
          assertSameTensor(
            await reader.read(name),
            net.get(name)!,
            `${mode} ${format} ${name}`,
          );
        }
      }
    }
  });
});

Deno.test("the decrypted blocks of an encrypted save are exactly the plain file (openssl, node:crypto)", async () => {
  // MindSpore decrypts with OpenSSL; here OpenSSL (CBC, SM4) and node:crypto
  // (GCM) decrypt each block, and the plaintext must be byte for byte the
  // file an unencrypted save writes.
  await withTempDir(async (dir) => {
    const net = network(2.5 * MIB); // two AES blocks, three SM4 ones
    for (const format of FORMATS) {
      await saveCheckpoint(`${dir}/plain.${format}`, net, { format });
      const plain = await Deno.readFile(`${dir}/plain.${format}`);
      for (
        const [mode, n] of [["AES-GCM", 32], ["AES-CBC", 24], [
          "SM4-CBC",
          16,
        ]] as [
          EncMode,
          number,
        ][]
      ) {
        const key = pattern(n, 9);
        const path = `${dir}/enc-${mode}.${format}`;
        await saveCheckpoint(path, net, { format, encKey: key, encMode: mode });
        const file = await Deno.readFile(path);
        const parts: Uint8Array[] = [];
        const list = blocks(file, mode);
        assertEquals(
          list.length,
          Math.ceil(plain.length / DEFAULT_PIECE_SIZE[mode]),
        );
        for (const b of list) {
          if (mode === "AES-GCM") {
            const d = createDecipheriv("aes-256-gcm", key, b.iv);
            d.setAuthTag(b.tag);
            parts.push(
              new Uint8Array(d.update(b.cipher)),
              new Uint8Array(d.final()),
            );
          } else {
            const name = mode === "SM4-CBC" ? "sm4-cbc" : "aes-192-cbc";
            parts.push(
              await openssl([
                "enc",
                "-d",
                `-${name}`,
                "-K",
                toHex(key),
                "-iv",
                toHex(b.iv),
              ], b.cipher),
            );
          }
        }
        const joined = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
        parts.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
        assert(
          joined.length === plain.length &&
            joined.every((v, i) => v === plain[i]),
          `${mode} ${format}`,
        );
      }
    }
  });
});

Deno.test("bad encKey/encMode throw before any file is created", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    const cases: [
      Record<string, unknown>,
      ErrorConstructor | RangeErrorConstructor,
    ][] = [
      [{ encKey: "0123456789abcdef" }, TypeError],
      [{ encKey: new ArrayBuffer(16) }, TypeError],
      [{ encKey: Array.from({ length: 16 }, () => 0) }, TypeError],
      [{ encKey: new Uint8Array(16), encMode: "AES-XTS" }, RangeError],
      [{ encKey: new Uint8Array(16), encMode: "aes-gcm" }, RangeError],
      [{ encKey: new Uint8Array(20), encMode: "AES-GCM" }, RangeError],
      [{ encKey: new Uint8Array(24), encMode: "SM4-CBC" }, RangeError],
      [{ encKey: new Uint8Array(0) }, RangeError],
      [{ encMode: "AES-GCM" }, TypeError],
    ];
    for (const [options, type] of cases) {
      await assertRejects(
        saveCheckpoint(path, network(), options),
        type,
        JSON.stringify(options),
      );
    }
    assertEquals(await listDir(dir), []);
    await assertRejects(
      saveCheckpoint(path, network(), {
        encKey: new Uint8Array(24),
        encMode: "SM4-CBC",
      }),
      /Cannot use encKey for SM4-CBC: expected 16 bytes, received 24 bytes/,
    );
  });
});

Deno.test("bad decKey/decMode throw before the file is read", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    await saveCheckpoint(path, network(), { encKey: pattern(16) });
    await assertRejects(
      loadCheckpoint(path, { decKey: new Uint8Array(7) }),
      RangeError,
    );
    await assertRejects(
      loadCheckpoint(path, { decKey: "k" as unknown as Uint8Array }),
      TypeError,
    );
    await assertRejects(
      loadCheckpoint(path, {
        decKey: pattern(16),
        decMode: "SM4-GCM" as EncMode,
      }),
      /Cannot use decMode/,
    );
    await assertRejects(
      loadCheckpoint(path, { decMode: "AES-GCM" }),
      TypeError,
    );
    // A missing file is still reported as such.
    await assertRejects(
      loadCheckpoint(`${dir}/none.ckpt`, { decKey: pattern(16) }),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("wrong key or wrong mode is a DecryptionError with one message", async () => {
  await withTempDir(async (dir) => {
    for (const format of FORMATS) {
      for (const [mode, n] of CASES) {
        const key = pattern(n, 1);
        const path = `${dir}/m-${mode}-${n}.${format}`;
        await saveCheckpoint(path, network(), {
          format,
          encKey: key,
          encMode: mode,
        });
        const wrong = key.slice();
        wrong[n - 1]! ^= 0x80;
        await assertRejects(
          loadCheckpoint(path, { decKey: wrong, decMode: mode }),
          isDecryptionError(path),
        );
        await assertRejects(
          openCheckpoint(path, { decKey: wrong, decMode: mode }),
          isDecryptionError(path),
        );
        for (const other of ["AES-GCM", "AES-CBC", "SM4-CBC"] as EncMode[]) {
          if (other === mode) continue;
          await assertRejects(
            loadCheckpoint(path, {
              decKey: key.subarray(0, 16),
              decMode: other,
            }),
            isDecryptionError(path),
          );
        }
      }
    }
  });
});

Deno.test("an encrypted file read without a key names its cipher; a plain one read with a key says it is not encrypted", async () => {
  await withTempDir(async (dir) => {
    for (const format of FORMATS) {
      for (const mode of ["AES-GCM", "AES-CBC", "SM4-CBC"] as EncMode[]) {
        const path = `${dir}/e-${mode}.${format}`;
        await saveCheckpoint(path, network(), {
          format,
          encKey: pattern(16),
          encMode: mode,
        });
        for (const read of [loadCheckpoint, openCheckpoint]) {
          await assertRejects(
            read(path),
            (e: unknown) =>
              e instanceof EncryptionMismatchError && e.fileMode === mode &&
              e.requestedMode === null &&
              e.message.includes(`encrypted with ${mode}`),
          );
        }
      }
      const plain = `${dir}/plain.${format}`;
      await saveCheckpoint(plain, network(), { format });
      await assertRejects(
        loadCheckpoint(plain, { decKey: pattern(16) }),
        (e: unknown) =>
          e instanceof EncryptionMismatchError && e.fileMode === null &&
          e.requestedMode === "AES-GCM" && /not encrypted/.test(e.message),
      );
    }
  });
});

/** Writes a modified copy of `path` and loads it. */
async function loadModified(
  path: string,
  modify: (bytes: Uint8Array) => Uint8Array,
  key: Uint8Array,
  mode: EncMode,
): Promise<Map<string, Tensor | string>> {
  const copy = `${path}.modified`;
  await Deno.writeFile(copy, modify(await Deno.readFile(path)));
  try {
    return await loadCheckpoint(copy, { decKey: key, decMode: mode });
  } finally {
    await Deno.remove(copy);
  }
}

Deno.test("a flipped byte anywhere in a GCM checkpoint is a DecryptionError", async () => {
  await withTempDir(async (dir) => {
    for (const format of FORMATS) {
      const key = pattern(32, 4);
      const path = `${dir}/m.${format}`;
      await saveCheckpoint(path, network(), {
        format,
        encKey: key,
        encMode: "AES-GCM",
      });
      const size = (await Deno.stat(path)).size;
      for (let i = 0; i < size; i++) {
        await assertRejects(
          loadModified(path, (b) => (b[i]! ^= 0x10, b), key, "AES-GCM"),
          isDecryptionError(`${path}.modified`),
          `${format} byte ${i}`,
        );
      }
    }
  });
});

Deno.test("reordered, dropped or truncated blocks are a DecryptionError (caught by the file's check), or without it change the checksum", async () => {
  await withTempDir(async (dir) => {
    const net = network(4.5 * MIB); // three 2 MiB AES pieces
    for (
      const [format, check] of [
        ...FORMATS.map((f) => [f, true] as const),
        ["safetensors", false] as const,
      ]
    ) {
      for (const mode of ["AES-GCM", "AES-CBC"] as EncMode[]) {
        if (format === "safetensors" && mode === "AES-CBC") continue;
        const key = pattern(16, 5);
        const path = `${dir}/m-${mode}.${format}`;
        const saved = await saveCheckpoint(path, net, {
          format,
          encKey: key,
          encMode: mode,
          check,
        });
        const list = blocks(await Deno.readFile(path), mode);
        const n = list.length;
        assert(n >= 3, `${n} blocks`);
        const last = list[n - 1]!;
        /** The file with its blocks in the order of `order`. */
        const join = (bytes: Uint8Array, order: number[]) => {
          const parts = order.map((i) =>
            bytes.subarray(list[i]!.at, list[i]!.end)
          );
          const out = new Uint8Array(parts.reduce((m, p) => m + p.length, 0));
          parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
          return out;
        };
        const all = list.map((_, i) => i);
        const copy = `${path}.modified`;
        const variants: [string, (bytes: Uint8Array) => Uint8Array][] = [
          ["first two swapped", (x) => join(x, [1, 0, ...all.slice(2)])],
          [
            "last two swapped",
            (x) => join(x, [...all.slice(0, n - 2), n - 1, n - 2]),
          ],
          ["last block dropped", (x) => join(x, all.slice(0, n - 1))],
          [
            "middle block dropped",
            (x) => join(x, all.filter((i) => i !== n >> 1)),
          ],
          ["cut inside a block", (x) => x.subarray(0, last.at + 100)],
          ["cut inside a header", (x) => x.subarray(0, last.at + 10)],
        ];
        for (const [what, modify] of variants) {
          const outcome = await loadModified(path, modify, key, mode).then(
            () => "loaded",
            (e) => (isDecryptionError(copy)(e) ? "DecryptionError" : String(e)),
          );
          // Swapping two blocks that hold only tensor bytes keeps a
          // safetensors file well-formed: without the file's check no
          // reader can see it. The checksum of the bytes on disk does.
          const undetectable = !check && what === "last two swapped";
          assertEquals(
            outcome,
            undetectable ? "loaded" : "DecryptionError",
            `${mode} ${format}: ${what}`,
          );
          if (undetectable) {
            await Deno.writeFile(copy, modify(await Deno.readFile(path)));
            assert((await checksumFile(copy)) !== saved.checksum);
            await Deno.remove(copy);
          }
        }
      }
    }
  });
});

Deno.test("CBC tampering that survives the padding: the header is caught by the parser, tensor bytes by the file's check (without it only by the checksum)", async () => {
  await withTempDir(async (dir) => {
    const key = pattern(16, 6);
    const net = network(64 * 1024);
    const checked = `${dir}/c.ckpt`;
    await saveCheckpoint(checked, net, { encKey: key, encMode: "AES-CBC" });
    await assertRejects(
      loadModified(
        checked,
        (b) => (b[32 + 40_000]! ^= 0x01, b),
        key,
        "AES-CBC",
      ),
      isDecryptionError(`${checked}.modified`),
    );
    const path = `${dir}/m.ckpt`;
    const saved = await saveCheckpoint(path, net, {
      encKey: key,
      encMode: "AES-CBC",
      check: false,
    });
    // A flip in the first ciphertext block garbles the start of the
    // plaintext: the .ckpt parser rejects it.
    await assertRejects(
      loadModified(path, (b) => (b[32]! ^= 0x01, b), key, "AES-CBC"),
      isDecryptionError(`${path}.modified`),
    );
    // Without the check, a flip deep inside a tensor garbles tensor bytes
    // only: CBC cannot see it, and neither can the parser. The checksum of
    // the bytes on disk can.
    const copy = `${path}.modified`;
    const bytes = await Deno.readFile(path);
    bytes[32 + 40_000]! ^= 0x01;
    await Deno.writeFile(copy, bytes);
    const loaded = await loadCheckpoint(copy, {
      decKey: key,
      decMode: "AES-CBC",
    });
    notDeepEqual(loaded.get("big"), net.get("big"));
    assert((await checksumFile(copy)) !== saved.checksum);
  });
});

Deno.test("an invalid network with a valid key leaves no file", async () => {
  await withTempDir(async (dir) => {
    const bad = new Map<string, Tensor>([
      ["ok", { dtype: "Int8", shape: [1], data: new Int8Array([1]) }],
    ]);
    // A tensor whose data disagrees with its shape fails during validation,
    // before the file is created; a key still must not leave anything.
    bad.set("bad", { dtype: "Float32", shape: [5], data: new Float32Array(2) });
    await assertRejects(
      saveCheckpoint(`${dir}/m.ckpt`, bad, {
        encKey: pattern(16),
        encMode: "SM4-CBC",
      }),
    );
    assertEquals(await listDir(dir), []);
  });
});

Deno.test("the caller's key may be wiped as soon as saveCheckpoint returns its promise", async () => {
  await withTempDir(async (dir) => {
    const key = pattern(16, 8);
    const keep = key.slice();
    const pending = saveCheckpoint(`${dir}/m.ckpt`, network(), { encKey: key });
    key.fill(0);
    await pending;
    assertLoaded(
      await loadCheckpoint(`${dir}/m.ckpt`, { decKey: keep }),
      network(),
    );
  });
});

Deno.test("decKey without decMode takes the cipher from the file's framing", async () => {
  await withTempDir(async (dir) => {
    for (const format of FORMATS) {
      for (const [mode, n] of CASES) {
        const key = pattern(n, 3);
        const path = `${dir}/k-${mode}-${n}.${format}`;
        await saveCheckpoint(path, network(), {
          format,
          encKey: key,
          encMode: mode,
        });
        const m = await loadCheckpoint(path, { decKey: key });
        assertSameTensor(
          m.get("layer.weight"),
          network().get("layer.weight")!,
          `${mode}/${n}/${format}`,
        );
        await using reader = await openCheckpoint(path, { decKey: key });
        assertEquals(reader.entries.length, 4);
        // A wrong key is still refused.
        const wrong = key.slice();
        wrong[0]! ^= 1;
        await assertRejects(
          loadCheckpoint(path, { decKey: wrong }),
          isDecryptionError(path),
        );
      }
    }
    // A plain file with a key: not encrypted, as before.
    const plain = `${dir}/plain.ckpt`;
    await saveCheckpoint(plain, network());
    await assertRejects(
      loadCheckpoint(plain, { decKey: pattern(16) }),
      EncryptionMismatchError,
    );
  });
});
