import {
  deepEqual as assertEquals,
  equal as assertEqual,
  notDeepEqual as assertNotEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  sm4,
  type Sm4CbcItem,
  Sm4DecryptError,
  sm4KeySchedule,
} from "../src/crypto/sm4.ts";
import { sm4Internals } from "../src/crypto/_sm4_hook.ts";
import * as fromMod from "../mod.ts";
import { sha256 } from "./_helpers.ts";

interface BlockVector {
  name: string;
  key: string;
  plaintext: string;
  ciphertext: string;
  iterations: number;
}
interface EcbVector {
  name: string;
  key: string;
  plaintext: string;
  ciphertext: string;
}
interface CbcVector extends EcbVector {
  iv: string;
}
interface Pkcs7Vector {
  key: string;
  iv: string;
  plaintext_len: number;
  plaintext: string;
  ciphertext: string;
}
interface Vectors {
  sm4_block: BlockVector[];
  sm4_round_keys_example1: { key: string; rk0: string; rk31: string };
  sm4_ecb_nopad: EcbVector[];
  sm4_cbc_nopad: CbcVector[];
  sm4_cbc_pkcs7_generated: { vectors: Pkcs7Vector[] };
  large_message_digests: {
    plaintext_len: number;
    plaintext_sha256: string;
    sm4_cbc_pkcs7: {
      key: string;
      iv: string;
      ciphertext_len: number;
      ciphertext_sha256: string;
      last_block: string;
    };
  };
}

const VECTORS: Vectors = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/vectors/crypto_vectors.json", import.meta.url),
  ),
);

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  }
  return b;
}

/** Runs `openssl enc` with `input` on stdin; returns stdout. */
async function openssl(
  args: string[],
  input: Uint8Array,
): Promise<Uint8Array> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writing = (async () => {
    const w = child.stdin.getWriter();
    await w.write(input);
    await w.close();
  })();
  const [out] = await Promise.all([child.output(), writing]);
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return out.stdout;
}

Deno.test("sm4 is exported from mod.ts", () => {
  assertEqual(fromMod.sm4, sm4);
  assertEqual(fromMod.Sm4DecryptError, Sm4DecryptError);
});

Deno.test("sm4KeySchedule gives the standard's rk0 and rk31", () => {
  const v = VECTORS.sm4_round_keys_example1;
  const rk = sm4KeySchedule(hex(v.key));
  assertEqual(rk.length, 32);
  assertEqual(rk[0]!.toString(16).padStart(8, "0"), v.rk0);
  assertEqual(rk[31]!.toString(16).padStart(8, "0"), v.rk31);
});

Deno.test("encryptBlock and decryptBlock match the GB/T 32907-2016 examples", () => {
  for (const v of VECTORS.sm4_block) {
    const c = sm4(hex(v.key));
    const block = hex(v.plaintext);
    for (let i = 0; i < v.iterations; i++) c.encryptBlock(block, block);
    assertEqual(toHex(block), v.ciphertext, v.name);
    if (v.iterations === 1) {
      assertEqual(toHex(c.decryptBlock(block)), v.plaintext, v.name);
    }
    c.destroy();
  }
});

Deno.test("decryptBlock undoes 1,000,000 encryptions", () => {
  const v = VECTORS.sm4_block.find((x) => x.iterations === 1_000_000)!;
  const c = sm4(hex(v.key));
  const block = hex(v.ciphertext);
  for (let i = 0; i < v.iterations; i++) c.decryptBlock(block, block);
  assertEqual(toHex(block), v.plaintext);
});

Deno.test("ECB without padding matches draft-ribose-cfrg-sm4", () => {
  for (const v of VECTORS.sm4_ecb_nopad) {
    const c = sm4(hex(v.key));
    assertEqual(toHex(c.encryptEcb(hex(v.plaintext))), v.ciphertext, v.name);
    assertEqual(toHex(c.decryptEcb(hex(v.ciphertext))), v.plaintext, v.name);
  }
});

Deno.test("CBC without padding matches draft-ribose-cfrg-sm4", () => {
  for (const v of VECTORS.sm4_cbc_nopad) {
    const c = sm4(hex(v.key));
    const iv = hex(v.iv);
    assertEqual(
      toHex(c.encryptCbcNoPad(hex(v.plaintext), iv)),
      v.ciphertext,
      v.name,
    );
    assertEqual(
      toHex(c.decryptCbcNoPad(hex(v.ciphertext), iv)),
      v.plaintext,
      v.name,
    );
  }
});

Deno.test("CBC with PKCS#7 matches the OpenSSL-generated cases", () => {
  for (const v of VECTORS.sm4_cbc_pkcs7_generated.vectors) {
    const c = sm4(hex(v.key));
    const iv = hex(v.iv);
    const plain = hex(v.plaintext);
    assertEqual(plain.length, v.plaintext_len);
    const ct = c.encryptCbc(plain, iv);
    assertEqual(ct.length, 16 * (Math.floor(plain.length / 16) + 1));
    assertEqual(toHex(ct), v.ciphertext, `length ${v.plaintext_len}`);
    assertEqual(toHex(c.decryptCbc(hex(v.ciphertext), iv)), v.plaintext);
  }
});

Deno.test("CBC with PKCS#7 matches the 1 MiB + 5 byte message digest", async () => {
  const v = VECTORS.large_message_digests;
  const plain = new Uint8Array(v.plaintext_len);
  for (let i = 0; i < plain.length; i++) plain[i] = (i * 31 + 7) & 0xff;
  assertEqual(await sha256(plain), v.plaintext_sha256);
  const c = sm4(hex(v.sm4_cbc_pkcs7.key));
  const iv = hex(v.sm4_cbc_pkcs7.iv);
  const ct = c.encryptCbc(plain, iv);
  assertEqual(ct.length, v.sm4_cbc_pkcs7.ciphertext_len);
  assertEqual(await sha256(ct), v.sm4_cbc_pkcs7.ciphertext_sha256);
  assertEqual(toHex(ct.subarray(ct.length - 16)), v.sm4_cbc_pkcs7.last_block);
  assertEquals(c.decryptCbc(ct, iv), plain);
  // The same through unaligned views (the scratch-buffer path).
  const shifted = new Uint8Array(plain.length + 3);
  shifted.set(plain, 3);
  const outShifted = new Uint8Array(ct.length + 1);
  const ct2 = c.encryptCbc(shifted.subarray(3), iv, outShifted.subarray(1));
  assertEqual(await sha256(ct2), v.sm4_cbc_pkcs7.ciphertext_sha256);
  const back = new Uint8Array(ct.length + 5);
  assertEquals(c.decryptCbc(ct2, iv, back.subarray(5)), plain);
});

Deno.test("encryptCbcMany equals encryptCbc on each stream", () => {
  const c = sm4(random(16));
  const lengths = [0, 1, 15, 16, 17, 100, 4096, 5000, 33, 65536 + 7, 3];
  const items: Sm4CbcItem[] = lengths.map((n) => ({
    plain: random(n),
    iv: random(16),
  }));
  // An unaligned stream and one with a caller-provided, longer `out`.
  const raw = random(1001);
  items.push({ plain: raw.subarray(1), iv: random(16) });
  const out = new Uint8Array(2000);
  items.push({ plain: random(999), iv: random(16), out });
  const copies = items.map((it) => it.plain.slice());
  const outs = c.encryptCbcMany(items);
  assertEqual(outs.length, items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    assertEquals(outs[i], c.encryptCbc(it.plain, it.iv), `stream ${i}`);
    assertEquals(it.plain, copies[i], "plaintext untouched");
  }
  assertEqual(outs[outs.length - 1]!.buffer, out.buffer);
  assertEqual(outs[outs.length - 1]!.length, 1008);
});

Deno.test("decryption inverts encryption at every length up to 300", () => {
  const c = sm4(random(16));
  const iv = random(16);
  for (let n = 0; n <= 300; n++) {
    const plain = random(n);
    const ct = c.encryptCbc(plain, iv);
    assertEqual(ct.length, 16 * (Math.floor(n / 16) + 1));
    assertEquals(c.decryptCbc(ct, iv), plain);
    if (n % 16 === 0) {
      assertEquals(c.decryptEcb(c.encryptEcb(plain)), plain);
      assertEquals(c.decryptCbcNoPad(c.encryptCbcNoPad(plain, iv), iv), plain);
    }
  }
});

Deno.test("in-place CBC encryption and decryption work", () => {
  const c = sm4(random(16));
  const iv = random(16);
  const plain = random(1024);
  const expect = c.encryptCbcNoPad(plain, iv);
  const buf = plain.slice();
  c.encryptCbcNoPad(buf, iv, buf);
  assertEquals(buf, expect);
  c.decryptCbcNoPad(buf, iv, buf);
  assertEquals(buf, plain);
  assertThrows(
    () => c.encryptCbcNoPad(buf.subarray(0, 512), iv, buf.subarray(16)),
    RangeError,
  );
  // PKCS#7 decryption in place returns a view of the caller's buffer.
  const sealed = c.encryptCbc(plain.subarray(0, 1000), iv);
  const opened = c.decryptCbc(sealed, iv, sealed);
  assertEqual(opened.buffer, sealed.buffer);
  assertEquals(opened, plain.subarray(0, 1000));
});

Deno.test("sm4 rejects a key that is not 16 bytes or not a Uint8Array", () => {
  for (const n of [0, 8, 15, 17, 24, 32]) {
    assertThrows(() => sm4(new Uint8Array(n)), RangeError);
  }
  for (const k of ["0123456789abcdef", null, undefined, 16, [1, 2]]) {
    assertThrows(() => sm4(k as unknown as Uint8Array), TypeError);
  }
  assertThrows(
    () => sm4(new Uint16Array(8) as unknown as Uint8Array),
    TypeError,
  );
  assertThrows(() => sm4KeySchedule(new Uint8Array(17)), RangeError);
});

Deno.test("bad lengths of blocks, IVs and outputs are RangeErrors", () => {
  const c = sm4(new Uint8Array(16));
  assertThrows(() => c.encryptBlock(new Uint8Array(15)), RangeError);
  assertThrows(() => c.decryptBlock(new Uint8Array(17)), RangeError);
  assertThrows(
    () => c.encryptBlock(new Uint8Array(16), new Uint8Array(15)),
    RangeError,
  );
  assertThrows(() => c.encryptEcb(new Uint8Array(17)), RangeError);
  assertThrows(
    () => c.encryptCbcNoPad(new Uint8Array(20), new Uint8Array(16)),
    RangeError,
  );
  assertThrows(
    () => c.encryptCbc(new Uint8Array(20), new Uint8Array(15)),
    RangeError,
  );
  assertThrows(
    () =>
      c.encryptCbc(new Uint8Array(16), new Uint8Array(16), new Uint8Array(16)),
    RangeError,
  );
  assertThrows(
    () =>
      c.decryptCbc(new Uint8Array(32), new Uint8Array(16), new Uint8Array(16)),
    RangeError,
  );
});

Deno.test("bad ciphertext length and bad padding give one opaque error", () => {
  const c = sm4(random(16));
  const iv = random(16);
  const messages = new Set<string>();
  const expectFail = (ct: Uint8Array): void => {
    try {
      c.decryptCbc(ct, iv);
    } catch (e) {
      assert(e instanceof Sm4DecryptError);
      messages.add(e.message);
      return;
    }
    throw new Error("decryptCbc accepted bad input");
  };
  expectFail(new Uint8Array(0));
  expectFail(new Uint8Array(15));
  expectFail(new Uint8Array(33));
  // Craft last blocks whose plaintext has each kind of bad padding.
  const badTails = [
    [0], // pad byte 0
    [17], // pad byte > 16
    [255],
    [3, 3, 2], // ... 2 3 3 is wrong: bytes must all equal 3
  ];
  for (const tail of badTails) {
    const block = random(16);
    for (let i = 0; i < tail.length; i++) {
      block[16 - tail.length + i] = tail[i]!;
    }
    if (tail.length === 3) {
      block[13] = 2;
      block[14] = 3;
      block[15] = 3;
    }
    expectFail(c.encryptCbcNoPad(block, iv));
  }
  const sixteen = new Uint8Array(16).fill(16);
  sixteen[0] = 15;
  expectFail(c.encryptCbcNoPad(sixteen, iv));
  assertEqual(messages.size, 1);
  // Good padding of 16 passes and yields an empty plaintext.
  assertEqual(c.decryptCbc(c.encryptCbc(new Uint8Array(0), iv), iv).length, 0);
});

Deno.test("a failed decryption zeroes the caller's output buffer", () => {
  const c = sm4(random(16));
  const iv = random(16);
  const ct = c.encryptCbcNoPad(new Uint8Array(64).fill(0x20), iv);
  const out = new Uint8Array(64).fill(1);
  assertThrows(() => c.decryptCbc(ct, iv, out), Sm4DecryptError);
  assert(out.every((b) => b === 0));
});

Deno.test("no method modifies its inputs", () => {
  const key = random(16);
  const keyCopy = key.slice();
  const c = sm4(key);
  const plain = random(100);
  const iv = random(16);
  const plainCopy = plain.slice(), ivCopy = iv.slice();
  const ct = c.encryptCbc(plain, iv);
  const ctCopy = ct.slice();
  c.decryptCbc(ct, iv);
  c.encryptBlock(plain.subarray(0, 16));
  c.decryptBlock(ct.subarray(0, 16));
  c.encryptEcb(plain.subarray(0, 96));
  c.decryptEcb(ct.subarray(0, 96));
  c.encryptCbcMany([{ plain, iv }]);
  assertEquals(key, keyCopy);
  assertEquals(plain, plainCopy);
  assertEquals(iv, ivCopy);
  assertEquals(ct, ctCopy);
  c.destroy();
  assertEquals(key, keyCopy);
});

Deno.test("destroy wipes the round keys and makes the cipher unusable", () => {
  const c = sm4(random(16));
  // The live round-key words, read through the internal test hook.
  const rk = sm4Internals.roundKeysOf!(c);
  assertEquals(rk.length, 64);
  assert(rk.some((w) => w !== 0), "the key schedule filled the words");
  // They are the words the rounds use: flipping one bit changes the output.
  const block = random(16);
  const before = c.encryptBlock(block);
  rk[0]! ^= 1;
  assertNotEquals(c.encryptBlock(block), before);
  rk[0]! ^= 1;
  assertEquals(c.encryptBlock(block), before);
  c.destroy();
  assert(rk.every((w) => w === 0), "destroy zeroed every round-key word");
  assertThrows(() => c.encryptBlock(new Uint8Array(16)), TypeError);
  assertThrows(() => c.decryptBlock(new Uint8Array(16)), TypeError);
  assertThrows(
    () => c.encryptCbc(new Uint8Array(1), new Uint8Array(16)),
    TypeError,
  );
  assertThrows(
    () => c.decryptCbc(new Uint8Array(16), new Uint8Array(16)),
    TypeError,
  );
  assertThrows(() => c.encryptCbcMany([]), TypeError);
});

Deno.test("CBC with PKCS#7 agrees with `openssl enc -sm4-cbc` in both directions", async () => {
  const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 255, 4096, 65535, 65536];
  for (let i = 0; i < 8; i++) {
    lengths.push(Math.floor(Math.random() * 400 * 1024));
  }
  for (const n of lengths) {
    const key = random(16), iv = random(16), plain = random(n);
    const args = ["enc", "-sm4-cbc", "-K", toHex(key), "-iv", toHex(iv)];
    const c = sm4(key);
    // We encrypt, OpenSSL decrypts.
    const ours = c.encryptCbc(plain, iv);
    assertEquals(await openssl(["enc", "-d", ...args.slice(1)], ours), plain);
    // OpenSSL encrypts, we decrypt; the ciphertexts agree too.
    const theirs = await openssl(args, plain);
    assertEquals(theirs, ours, `length ${n}`);
    assertEquals(c.decryptCbc(theirs, iv), plain, `length ${n}`);
    c.destroy();
  }
});

Deno.test("encryptCbcMany checks every item before encrypting any", () => {
  const c = sm4(random(16));
  const out = new Uint8Array(32);
  assertThrows(
    () =>
      c.encryptCbcMany([
        { plain: random(20), iv: random(16), out },
        { plain: random(20), iv: random(15) },
      ]),
    RangeError,
  );
  assert(out.every((b) => b === 0));
  assertEquals(c.encryptCbcMany([]), []);
});
