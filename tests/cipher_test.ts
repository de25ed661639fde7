// Copyright 2026 the @ckpt/monitor authors. MIT license.
import {
  deepEqual as assertEquals,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
import { ENC_MODES, importCipher, validateCipher } from "../mod.ts";
import { fromHex, toHex } from "./_crypto_helpers.ts";

interface Vector {
  name?: string;
  key: string;
  iv: string;
  aad?: string;
  plaintext: string;
  ciphertext: string;
  tag?: string;
}

const vectors = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/vectors/crypto_vectors.json", import.meta.url),
  ),
);
const fixtures = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/crypto_fixtures.json", import.meta.url),
  ),
);

// NIST SP 800-38A F.2.3 CBC-AES192.Encrypt (not in crypto_vectors.json;
// re-checked with `openssl enc -aes-192-cbc -nopad`).
const CBC_AES192: Vector = {
  name: "SP 800-38A F.2.3 CBC-AES192.Encrypt",
  key: "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
  iv: "000102030405060708090a0b0c0d0e0f",
  plaintext: "6bc1bee22e409f96e93d7e117393172a" +
    "ae2d8a571e03ac9c9eb76fac45af8e51" +
    "30c81c46a35ce411e5fbc1191a0a52ef" +
    "f69f2445df4f9b17ad2b417be66c3710",
  ciphertext: "4f021db243bc633d7178183a9fa071e8" +
    "b4d9ada9ad7dedf4e5e738763f69145a" +
    "571b242012fb7ae07fa9baac3df102e0" +
    "08b0e27988598881d920a9e64f5615cd",
};

Deno.test("validateCipher accepts every AES key size and a 16-byte SM4 key", () => {
  for (const n of [16, 24, 32]) {
    assertEquals(validateCipher(new Uint8Array(n), "AES-GCM"), "AES-GCM");
    assertEquals(validateCipher(new Uint8Array(n), "AES-CBC"), "AES-CBC");
  }
  assertEquals(validateCipher(new Uint8Array(16), "SM4-CBC"), "SM4-CBC");
  assertEquals(ENC_MODES, ["AES-GCM", "AES-CBC", "SM4-CBC"]);
});

Deno.test("validateCipher rejects a key that is not a Uint8Array with TypeError", () => {
  for (
    const key of [
      "0123456789abcdef",
      new ArrayBuffer(16),
      new Uint16Array(8),
      [1, 2, 3],
      null,
      undefined,
    ]
  ) {
    assertThrows(() => validateCipher(key, "AES-GCM"), TypeError);
  }
});

Deno.test("validateCipher rejects an unknown mode with RangeError", () => {
  for (const mode of ["aes-gcm", "AES-CTR", "SM4-GCM", "", 1, null]) {
    assertThrows(
      () => validateCipher(new Uint8Array(16), mode),
      (e: unknown) =>
        e instanceof RangeError && /AES-GCM, AES-CBC, SM4-CBC/.test(e.message),
    );
  }
});

Deno.test("validateCipher rejects a key of the wrong length for the mode", () => {
  for (const n of [0, 8, 15, 17, 20, 31, 33, 64]) {
    assertThrows(
      () => validateCipher(new Uint8Array(n), "AES-GCM"),
      RangeError,
    );
    assertThrows(
      () => validateCipher(new Uint8Array(n), "AES-CBC"),
      RangeError,
    );
  }
  for (const n of [0, 15, 17, 24, 32]) {
    assertThrows(
      () => validateCipher(new Uint8Array(n), "SM4-CBC"),
      (e: unknown) =>
        e instanceof RangeError && e.message.includes(`${n} bytes`),
    );
  }
});

Deno.test("importCipher checks its arguments like validateCipher", async () => {
  await assertRejects(importCipher(new Uint8Array(20), "AES-GCM"), RangeError);
  await assertRejects(
    importCipher("k" as unknown as Uint8Array, "AES-CBC"),
    TypeError,
  );
});

Deno.test("AES-CBC matches NIST SP 800-38A for 128, 192 and 256-bit keys", async () => {
  const all: Vector[] = [...vectors.aes_cbc_nopad, CBC_AES192];
  assertEquals(all.length, 3);
  for (const v of all) {
    const cipher = await importCipher(fromHex(v.key), "AES-CBC");
    const sealed = await cipher.encrypt(fromHex(v.plaintext), fromHex(v.iv));
    // PKCS#7 adds one full block after a whole number of blocks.
    assertEquals(sealed.length, v.plaintext.length / 2 + 16, v.name);
    assertEquals(toHex(sealed.subarray(0, -16)), v.ciphertext, v.name);
    assertEquals(
      toHex(await cipher.decrypt(sealed, fromHex(v.iv))),
      v.plaintext,
    );
    cipher.destroy();
  }
});

Deno.test("AES-256-CBC matches OpenSSL's PKCS#7 cases, both ways", async () => {
  for (const v of vectors.aes256_cbc_pkcs7_generated.vectors as Vector[]) {
    const cipher = await importCipher(fromHex(v.key), "AES-CBC");
    const plain = fromHex(v.plaintext);
    assertEquals(cipher.cipherLength(plain.length), v.ciphertext.length / 2);
    assertEquals(
      toHex(await cipher.encrypt(plain, fromHex(v.iv))),
      v.ciphertext,
    );
    assertEquals(
      toHex(await cipher.decrypt(fromHex(v.ciphertext), fromHex(v.iv))),
      v.plaintext,
    );
  }
});

Deno.test("AES-GCM matches the GCM spec test cases without AAD (12-byte IV)", async () => {
  const plain = (vectors.aes_gcm as Vector[]).filter((v) => v.aad === "");
  assertEquals(plain.length, 3);
  for (const v of plain) {
    const cipher = await importCipher(fromHex(v.key), "AES-GCM");
    const sealed = await cipher.encrypt(fromHex(v.plaintext), fromHex(v.iv));
    assertEquals(toHex(sealed), v.ciphertext + v.tag, v.name);
    assertEquals(
      toHex(await cipher.decrypt(sealed, fromHex(v.iv))),
      v.plaintext,
    );
  }
});

Deno.test("Web Crypto AES-GCM matches the GCM spec test cases with AAD", async () => {
  // MindSpore uses no AAD; this checks the platform the cipher stands on.
  const withAad = (vectors.aes_gcm as Vector[]).filter((v) => v.aad !== "");
  assertEquals(withAad.length, 2);
  for (const v of withAad) {
    const key = await crypto.subtle.importKey(
      "raw",
      fromHex(v.key),
      "AES-GCM",
      false,
      ["encrypt"],
    );
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: fromHex(v.iv), additionalData: fromHex(v.aad!) },
      key,
      fromHex(v.plaintext),
    );
    assertEquals(toHex(new Uint8Array(sealed)), v.ciphertext + v.tag, v.name);
  }
});

Deno.test("AES-GCM with 16-byte IVs matches OpenSSL for 128, 192 and 256-bit keys", async () => {
  const cases = fixtures.aes_gcm_iv16 as Vector[];
  assertEquals(
    new Set(cases.map((v) => v.key.length / 2)),
    new Set([16, 24, 32]),
  );
  for (const v of cases) {
    const cipher = await importCipher(fromHex(v.key), "AES-GCM");
    const sealed = await cipher.encrypt(fromHex(v.plaintext), fromHex(v.iv));
    assertEquals(toHex(sealed), v.ciphertext + v.tag);
    assertEquals(
      toHex(await cipher.decrypt(sealed, fromHex(v.iv))),
      v.plaintext,
    );
  }
});

Deno.test("AES-GCM rejects a flipped bit in the ciphertext or the tag", async () => {
  const cipher = await importCipher(new Uint8Array(16).fill(1), "AES-GCM");
  const iv = new Uint8Array(16).fill(2);
  const sealed = await cipher.encrypt(new Uint8Array(40).fill(3), iv);
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1;
    await assertRejects(cipher.decrypt(bad, iv));
  }
});

Deno.test("AES-CBC rejects bad padding", async () => {
  const cipher = await importCipher(new Uint8Array(16), "AES-CBC");
  const iv = new Uint8Array(16);
  // Encrypting a block of 0x00 without padding yields a block whose
  // decryption ends in 0x00: not valid PKCS#7.
  const raw = await cipher.encrypt(new Uint8Array(16), iv);
  await assertRejects(cipher.decrypt(raw.subarray(0, 16), iv));
});

Deno.test("a cipher reads its input before encrypt returns", async () => {
  const cipher = await importCipher(new Uint8Array(32), "AES-GCM");
  const iv = new Uint8Array(16);
  const input = new Uint8Array(1 << 20).fill(5);
  const expected = await cipher.encrypt(input, iv);
  const pending = cipher.encrypt(input, iv);
  input.fill(6);
  assertEquals(await pending, expected);
});

Deno.test("a destroyed cipher refuses to work", async () => {
  const cipher = await importCipher(new Uint8Array(16), "AES-CBC");
  cipher.destroy();
  await assertRejects(
    cipher.encrypt(new Uint8Array(1), new Uint8Array(16)),
    TypeError,
  );
});
