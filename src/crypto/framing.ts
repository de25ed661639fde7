// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * MindSpore's encrypted checkpoint framing, as a stream.
 *
 * The plaintext file body is cut into pieces; each piece is encrypted on its
 * own with a fresh random 16-byte IV and written as one block:
 *
 * ```text
 * u32 LE  magic       0x7F3A5ED8 AES-GCM | 0x7F3A5ED9 AES-CBC | 0x7F3A5EDA SM4-CBC
 * [16]    tag         AES-GCM only
 * i32 LE  block_len   = 4 + 16 + 4 + cipher_len
 * i32 LE  iv_len      = 16
 * [16]    iv
 * i32 LE  cipher_len
 * [cipher_len] ciphertext
 * ```
 *
 * Blocks follow each other with no file header or trailer. MindSpore writes
 * 64 MiB pieces; its reader takes each block's length from the block header
 * and accepts blocks up to 64 MiB + 50 bytes, so smaller pieces, which
 * encrypt in parallel and keep memory low, still give files MindSpore reads.
 *
 * What the framing cannot detect: every block is sealed on its own, and
 * nothing binds a block to its position, so blocks that are reordered,
 * repeated, or whole blocks removed from the end, decrypt without error
 * (and CBC blocks are not authenticated at all). The CRC-32 that every file
 * `saveCheckpoint` writes carries inside its plaintext catches those (see
 * `docs/format.md`); the load functions report it, like every other
 * failure of an encrypted file, as a `DecryptionError`.
 *
 * This module is the public face of four: `_block_header.ts` (the header
 * and the magic numbers), `encrypting_sink.ts`, `_block_index.ts` (where
 * each block and its plaintext are) and `decrypting_source.ts`.
 *
 * @module
 */

export { detectCipher } from "./_block_header.ts";
export * from "./encrypting_sink.ts";
export * from "./decrypting_source.ts";
