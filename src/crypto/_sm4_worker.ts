// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Worker that runs SM4-CBC (PKCS#7) for `_sm4_pool.ts`, so the JS thread of
 * the caller stays free. Buffers come and go by transfer, never by copy.
 * Each message carries its key (the workers are shared by every cipher of
 * the process) and one or more independent pieces; pieces to encrypt are
 * run two CBC chains at a time with `encryptCbcMany`.
 */

import { type Sm4, sm4, type Sm4CbcItem } from "./sm4.ts";

/** One piece of a `run` request. */
export interface Sm4WorkerPiece {
  iv: Uint8Array;
  input: ArrayBuffer;
  inputLength: number;
  output: ArrayBuffer;
}

/** A message from the pool. */
export interface Sm4WorkerRequest {
  id: number;
  op: "encrypt" | "decrypt";
  key: Uint8Array;
  pieces: Sm4WorkerPiece[];
}

/** One piece of a reply. */
export interface Sm4WorkerResult {
  input: ArrayBuffer;
  output: ArrayBuffer;
  /** Bytes of output written, or -1 when it failed. */
  length: number;
}

/** A reply to a request (or, with `id` 0, the word that the worker is ready). */
export interface Sm4WorkerReply {
  id: number;
  results: Sm4WorkerResult[];
}

interface _WorkerScope {
  onmessage: ((event: MessageEvent<Sm4WorkerRequest>) => void) | null;
  postMessage(message: Sm4WorkerReply, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as _WorkerScope;

function _run(cipher: Sm4, m: Sm4WorkerRequest): number[] {
  if (m.op === "encrypt") {
    const items: Sm4CbcItem[] = m.pieces.map((p) => ({
      plain: new Uint8Array(p.input, 0, p.inputLength),
      iv: p.iv,
      out: new Uint8Array(p.output),
    }));
    try {
      return cipher.encryptCbcMany(items).map((c) => c.byteLength);
    } catch {
      return m.pieces.map(() => -1);
    }
  }
  return m.pieces.map((p) => {
    try {
      const input = new Uint8Array(p.input, 0, p.inputLength);
      return cipher.decryptCbc(input, p.iv, new Uint8Array(p.output))
        .byteLength;
    } catch {
      return -1;
    }
  });
}

scope.onmessage = (event) => {
  const m = event.data;
  if (m.id === 0) {
    scope.postMessage({ id: 0, results: [] });
    return;
  }
  const cipher = sm4(m.key);
  m.key.fill(0);
  let lengths: number[];
  try {
    lengths = _run(cipher, m);
  } finally {
    cipher.destroy();
  }
  const transfer: ArrayBuffer[] = [];
  const results = m.pieces.map((p, i) => {
    transfer.push(p.input, p.output);
    return { input: p.input, output: p.output, length: lengths[i]! };
  });
  scope.postMessage({ id: m.id, results }, transfer);
};
