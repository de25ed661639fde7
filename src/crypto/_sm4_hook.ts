// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal, for tests only: reads the live round-key words of an SM4 cipher
// (sm4.ts fills `roundKeysOf` in a static block, so the key stays in a
// private field and the rounds read it as before). Not exported by any
// entry point.

/** The cipher's 64 round-key words (encryption, then decryption), live. */
export const sm4Internals: { roundKeysOf?: (cipher: object) => Int32Array } =
  {};
