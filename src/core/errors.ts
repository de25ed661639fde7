/**
 * The error classes callers catch when reading checkpoints. Bad arguments are
 * plain `TypeError` / `RangeError`; missing permissions are
 * `Deno.errors.PermissionDenied`.
 *
 * @module
 */

/**
 * A checkpoint file is malformed: truncated, a length that lies, an unknown
 * dtype, overlapping safetensors offsets, a checksum that does not match.
 * The message names the file and what is wrong.
 *
 * @example
 * ```ts
 * import { CorruptCheckpointError } from "@ckpt/monitor";
 * const e = new CorruptCheckpointError("model.ckpt", "file ends inside entry 3");
 * console.assert(e.path === "model.ckpt");
 * ```
 */
export class CorruptCheckpointError extends Error {
  /** The file that is corrupt. */
  readonly path: string;
  /** What is wrong with it, without the path. */
  readonly reason: string;

  /**
   * Makes the error.
   *
   * @param path The file that is corrupt.
   * @param reason What is wrong with it.
   * @param options Standard error options (`cause`).
   */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`Cannot read checkpoint "${path}": ${reason}`, options);
    this.name = "CorruptCheckpointError";
    this.path = path;
    this.reason = reason;
  }
}

/**
 * An encrypted checkpoint could not be decrypted: wrong key, wrong mode,
 * tampered or truncated data, a plaintext that does not parse or whose
 * CRC-32 check differs. The message is the same for every cause, so it
 * reveals nothing about which check failed; `cause` keeps the underlying
 * error for debugging (do not show it to whoever supplied the file).
 *
 * @example
 * ```ts
 * import { DecryptionError } from "@ckpt/monitor";
 * const e = new DecryptionError("model.ckpt");
 * console.assert(e.message.includes("model.ckpt"));
 * ```
 */
export class DecryptionError extends Error {
  /** The file that could not be decrypted. */
  readonly path: string;

  /**
   * Makes the error.
   *
   * @param path The file that could not be decrypted.
   * @param options Standard error options.
   */
  constructor(path: string, options?: ErrorOptions) {
    super(
      `Cannot decrypt checkpoint "${path}": wrong key or mode, or the file was modified`,
      options,
    );
    this.name = "DecryptionError";
    this.path = path;
  }
}

/**
 * A checkpoint was read with the wrong expectation about encryption: an
 * encrypted file without a key (the message names the mode read from the
 * file), or a plain file with a key.
 *
 * @example
 * ```ts
 * import { EncryptionMismatchError } from "@ckpt/monitor";
 * const e = new EncryptionMismatchError("m.ckpt", "SM4-CBC", null);
 * console.assert(e.fileMode === "SM4-CBC");
 * ```
 */
export class EncryptionMismatchError extends Error {
  /** The file. */
  readonly path: string;
  /** The cipher the file is encrypted with, or `null` for a plain file. */
  readonly fileMode: string | null;
  /** The cipher the caller asked for, or `null` when no key was given. */
  readonly requestedMode: string | null;

  /**
   * Makes the error.
   *
   * @param path The file.
   * @param fileMode The file's cipher (`null` if plain).
   * @param requestedMode The cipher asked for (`null` if no key).
   */
  constructor(
    path: string,
    fileMode: string | null,
    requestedMode: string | null,
  ) {
    super(
      fileMode === null
        ? `Cannot decrypt checkpoint "${path}": it is not encrypted, but a key was given`
        : `Cannot read checkpoint "${path}": it is encrypted with ${fileMode}; pass its key as decKey (the cipher is read from the file)`,
    );
    this.name = "EncryptionMismatchError";
    this.path = path;
    this.fileMode = fileMode;
    this.requestedMode = requestedMode;
  }
}
