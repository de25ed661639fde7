// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The three ciphers MindSpore can encrypt checkpoints with, behind one
 * interface that encrypts or decrypts one framing piece with a given IV.
 * AES-GCM and AES-CBC run on Web Crypto (off the JS thread); SM4-CBC runs on
 * the pure-TypeScript SM4 of `sm4.ts`.
 *
 * @module
 */

import { describeValue as describe } from "../core/_describe.ts";
import { Sm4Pool } from "./_sm4_pool.ts";

/**
 * A cipher mode, spelled as MindSpore spells `enc_mode` / `dec_mode`.
 *
 * - `"AES-GCM"`: AES-128/192/256 by key length, 16-byte IV, 16-byte tag, no
 *   additional data.
 * - `"AES-CBC"`: AES-128/192/256 by key length, PKCS#7 padding.
 * - `"SM4-CBC"`: SM4 (16-byte key), PKCS#7 padding.
 */
export type EncMode = "AES-GCM" | "AES-CBC" | "SM4-CBC";

/** Every {@linkcode EncMode}. */
export const ENC_MODES: readonly EncMode[] = Object.freeze([
  "AES-GCM",
  "AES-CBC",
  "SM4-CBC",
]);

const KEY_LENGTHS: Readonly<Record<EncMode, readonly number[]>> = {
  "AES-GCM": [16, 24, 32],
  "AES-CBC": [16, 24, 32],
  "SM4-CBC": [16],
};

/** Options of {@linkcode validateCipher}: how error messages name things. */
export interface ValidateCipherOptions {
  /**
   * The key's name in messages, such as `"encKey"`.
   *
   * @default {"key"}
   */
  keyName?: string;
  /**
   * The mode's name in messages, such as `"encMode"`.
   *
   * @default {"mode"}
   */
  modeName?: string;
}

/**
 * Checks a key and a mode before anything is encrypted or written.
 *
 * @param key The raw key: 16, 24 or 32 bytes for AES, 16 for SM4.
 * @param mode One of {@linkcode ENC_MODES}.
 * @param options How error messages name the key and the mode.
 * @returns The mode, typed.
 * @throws {TypeError} When `key` is not a `Uint8Array`.
 * @throws {RangeError} When `mode` is unknown, or the key length does not fit
 * the mode.
 *
 * @example Accept AES-192 and reject a short SM4 key
 * ```ts
 * import { validateCipher } from "@ckpt/monitor";
 * import { throws } from "node:assert/strict";
 * validateCipher(new Uint8Array(24), "AES-GCM");
 * throws(() => validateCipher(new Uint8Array(8), "SM4-CBC"), RangeError);
 * ```
 */
export function validateCipher(
  key: unknown,
  mode: unknown,
  options: ValidateCipherOptions = {},
): EncMode {
  const keyName = options.keyName ?? "key";
  const modeName = options.modeName ?? "mode";
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot use ${keyName}: expected a Uint8Array, received ${describe(key)}`,
    );
  }
  if (typeof mode !== "string" || !(ENC_MODES as string[]).includes(mode)) {
    throw new RangeError(
      `Cannot use ${modeName}: expected one of ${
        ENC_MODES.join(", ")
      }, received ${describe(mode)}`,
    );
  }
  const lengths = KEY_LENGTHS[mode as EncMode];
  if (!lengths.includes(key.byteLength)) {
    throw new RangeError(
      `Cannot use ${keyName} for ${mode}: expected ${
        lengths.join(", ")
      } bytes, received ${key.byteLength} bytes`,
    );
  }
  return mode as EncMode;
}

/**
 * Encrypts and decrypts one framing piece at a time with a key imported once.
 *
 * Both methods read their input before they return (the caller may reuse the
 * input as soon as the call returns, before the promise settles), and both
 * may be called several times without awaiting: calls in flight together run
 * in parallel where the platform allows.
 */
export interface PieceCipher {
  /** The mode. */
  readonly mode: EncMode;
  /** Bytes of authentication tag at the end of a ciphertext: 16 for GCM, else 0. */
  readonly tagLength: number;
  /**
   * Length of the ciphertext for a plaintext of `plainLength` bytes, tag
   * included.
   */
  cipherLength(plainLength: number): number;
  /**
   * Encrypts `plain` with `iv`.
   *
   * @param plain The plaintext.
   * @param iv The IV: 16 bytes (GCM also takes 12).
   * @returns The ciphertext; for GCM the tag is its last 16 bytes.
   */
  encrypt(plain: Uint8Array, iv: Uint8Array): Promise<Uint8Array>;
  /**
   * Decrypts `cipher` (for GCM: ciphertext then tag) with `iv`.
   *
   * @param cipher The ciphertext.
   * @param iv The IV it was encrypted with.
   * @returns The plaintext. Rejects when the tag or the padding is wrong.
   */
  decrypt(cipher: Uint8Array, iv: Uint8Array): Promise<Uint8Array>;
  /**
   * Gives an output of {@linkcode PieceCipher.encrypt} back once the caller
   * is done with it, so its memory can be reused. Optional to call.
   *
   * @param output A result of `encrypt`.
   */
  recycle(output: Uint8Array): void;
  /** Forgets the key and wipes what can be wiped. */
  destroy(): void;
}

/**
 * Imports `key` for `mode` once, for many pieces.
 *
 * @param key The raw key (see {@linkcode validateCipher}).
 * @param mode The mode.
 * @returns A cipher for pieces.
 * @throws {TypeError} When `key` is not a `Uint8Array`.
 * @throws {RangeError} When the mode is unknown or the key length wrong.
 *
 * @example Encrypt and decrypt one piece with AES-GCM
 * ```ts
 * import { importCipher } from "@ckpt/monitor";
 * import { deepEqual } from "node:assert/strict";
 * const cipher = await importCipher(new Uint8Array(32), "AES-GCM");
 * const iv = crypto.getRandomValues(new Uint8Array(16));
 * const sealed = await cipher.encrypt(new Uint8Array([1, 2, 3]), iv);
 * deepEqual(sealed.length, 3 + 16);
 * deepEqual(await cipher.decrypt(sealed, iv), new Uint8Array([1, 2, 3]));
 * cipher.destroy();
 * ```
 */
export async function importCipher(
  key: Uint8Array,
  mode: EncMode,
): Promise<PieceCipher> {
  validateCipher(key, mode);
  if (mode === "SM4-CBC") return await _importSm4(key);
  return await _importWebCrypto(key, mode);
}

/** A copy of `bytes` Web Crypto accepts (and that we own). */
function _own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** `bytes` as Web Crypto wants them, copying only when the buffer is shared. */
function _forWebCrypto(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : _own(bytes);
}

let _allocatorPrimed = false;

/**
 * Frees one large, never touched buffer, once per process.
 *
 * Web Crypto in Deno allocates a fresh input copy and a fresh output for
 * every call. glibc's malloc maps each allocation over its threshold
 * (128 KiB at first) straight from the OS and gives freed memory back at
 * once, so every page of every call is faulted in again: ~330,000 page
 * faults per GiB encrypted in 1 MiB pieces, which cost more than the AES.
 * malloc raises both thresholds when it frees a large mapped block (to that
 * size for mapping, twice that for giving memory back), after which the
 * same pages are reused: under 100 faults per GiB, and Web Crypto 4-5 times
 * faster on our machines (1 MiB calls, 8 in flight: 260-320 MB/s before,
 * 1,180-1,440 MB/s after, two one-off runs). Freeing this untouched
 * 30 MiB buffer (under malloc's 32 MiB cap) does exactly that. The cost: the
 * process may keep up to ~60 MiB of freed memory per malloc arena instead
 * of returning it. Other allocators simply free the buffer.
 */
function _primeAllocator(): void {
  if (_allocatorPrimed) return;
  _allocatorPrimed = true;
  // `transfer` is ES2024: Node.js 20 lacks it (and gets no priming).
  const buffer = new ArrayBuffer(30 * 1024 * 1024);
  if (typeof buffer.transfer === "function") buffer.transfer(0);
}

async function _importWebCrypto(
  key: Uint8Array,
  mode: "AES-GCM" | "AES-CBC",
): Promise<PieceCipher> {
  _primeAllocator();
  const raw = _own(key);
  const name = mode;
  let cryptoKey: CryptoKey | null = await crypto.subtle.importKey(
    "raw",
    raw,
    { name },
    false,
    ["encrypt", "decrypt"],
  );
  raw.fill(0);
  const gcm = mode === "AES-GCM";
  const params = (iv: Uint8Array): AesGcmParams | AesCbcParams =>
    gcm ? { name, iv: _own(iv), tagLength: 128 } : { name, iv: _own(iv) };
  const live = (): CryptoKey => {
    if (cryptoKey === null) {
      throw new TypeError(`Cannot use ${mode} cipher: it was destroyed`);
    }
    return cryptoKey;
  };
  return {
    mode,
    tagLength: gcm ? 16 : 0,
    cipherLength: (n) => gcm ? n + 16 : (Math.floor(n / 16) + 1) * 16,
    async encrypt(plain, iv) {
      // Web Crypto copies `plain` synchronously, before the first await.
      const out = crypto.subtle.encrypt(
        params(iv),
        live(),
        _forWebCrypto(plain),
      );
      return new Uint8Array(await out);
    },
    async decrypt(cipher, iv) {
      const out = crypto.subtle.decrypt(
        params(iv),
        live(),
        _forWebCrypto(cipher),
      );
      return new Uint8Array(await out);
    },
    recycle(output) {
      // Web Crypto returns fresh memory for every call, freed only when the
      // garbage collector finds it; freeing it now lets the allocator hand
      // the same, already touched pages to the next call (docs/performance.md: fresh
      // pages are the slowest thing a save touches).
      const buffer = output.buffer;
      if (
        buffer instanceof ArrayBuffer &&
        typeof buffer.transfer === "function" && !buffer.detached &&
        output.byteLength === buffer.byteLength
      ) buffer.transfer(0);
    },
    destroy() {
      cryptoKey = null;
    },
  };
}

function _importSm4(key: Uint8Array): Promise<PieceCipher> {
  const pool = new Sm4Pool(key);
  return Promise.resolve({
    mode: "SM4-CBC",
    tagLength: 0,
    cipherLength: (n) => (Math.floor(n / 16) + 1) * 16,
    encrypt: (plain, iv) => pool.run("encrypt", plain, iv),
    decrypt: (cipher, iv) => pool.run("decrypt", cipher, iv),
    recycle: (output) => pool.recycle(output),
    destroy: () => pool.destroy(),
  });
}
