// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Opening a checkpoint named on the command line: path checks, cipher
// detection, key handling. Not exported from the package.

import { type EncMode, validateCipher } from "../crypto/cipher.ts";
import { detectCipher } from "../crypto/framing.ts";
import {
  type CheckpointReader,
  type LoadCheckpointOptions,
  openCheckpoint,
} from "../checkpoint/checkpoint.ts";
import { InputError, statOrNull } from "./_util.ts";
import { storeFor } from "../store/resolve.ts";

/** Key options of the subcommands that read files. */
export interface CliDecrypt {
  /** The key, from `--dec-key-hex`. */
  decKey?: Uint8Array;
  /** The cipher, from `--dec-mode` (else read from the file). */
  decMode?: EncMode;
}

/** An input file, opened (or, encrypted without a key, only looked at). */
export interface CliInput {
  /** The reader, or `null` for an encrypted file given no key. */
  reader: CheckpointReader | null;
  /** `"ckpt"` or `"safetensors"`. */
  format: string;
  /** The file's size. */
  fileBytes: number;
  /** The cipher read from the file's first bytes, or `null`. */
  cipher: EncMode | null;
}

/** Checks that `path` is a file and returns its size. */
export async function fileSize(path: string): Promise<number> {
  const info = await statOrNull(path);
  if (info === null) {
    throw new InputError(`${JSON.stringify(path)} does not exist`);
  }
  if (info.kind === "directory") {
    throw new InputError(
      `${JSON.stringify(path)} is a folder, not a checkpoint file`,
    );
  }
  return info.size;
}

/** The first `n` bytes of a file (fewer when it is shorter). */
async function _firstBytes(path: string, n: number): Promise<Uint8Array> {
  await using file = await storeFor(path).open(path);
  const buf = new Uint8Array(Math.min(n, file.size));
  await file.readAt(0, buf);
  return buf;
}

/**
 * Opens a checkpoint for reading. An encrypted file without a key gives
 * `reader: null` when `needKey` is false, and the library's
 * `EncryptionMismatchError` (naming the cipher) otherwise.
 */
export async function openInput(
  path: string,
  decrypt: CliDecrypt,
  needKey = false,
): Promise<CliInput> {
  const fileBytes = await fileSize(path);
  const cipher = detectCipher(await _firstBytes(path, 4));
  if (cipher !== null && decrypt.decKey === undefined && !needKey) {
    return {
      reader: null,
      // Only .ckpt files are encrypted (MindSpore has no encrypted safetensors).
      format: "ckpt",
      fileBytes,
      cipher,
    };
  }
  const options: LoadCheckpointOptions = {};
  if (decrypt.decKey !== undefined) {
    // Without --dec-mode, the cipher the file says it has.
    const decMode = decrypt.decMode ?? cipher ?? "AES-GCM";
    checkKey(decrypt.decKey, decMode, "dec");
    options.decKey = decrypt.decKey;
    options.decMode = decMode;
  }
  const reader = await openCheckpoint(path, options);
  return { reader, format: reader.format, fileBytes, cipher };
}

/** Checks a key's length for a mode: a wrong one is a bad argument (exit 2). */
export function checkKey(
  key: Uint8Array,
  mode: EncMode,
  flag: "enc" | "dec",
): void {
  try {
    validateCipher(key, mode, {
      keyName: `--${flag}-key-hex`,
      modeName: `--${flag}-mode`,
    });
  } catch (e) {
    throw new InputError((e as Error).message.replace(/^Cannot use /, ""));
  }
}
