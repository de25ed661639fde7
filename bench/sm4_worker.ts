/**
 * Module worker for `sm4_compare.ts`: encrypts or decrypts a run of
 * independent SM4-CBC pieces (each with its own IV) in buffers transferred
 * to it, and transfers them back.
 *
 * @module
 */

import { sm4, type Sm4CbcItem } from "../src/crypto/sm4.ts";

/** A job: pieces of `piece` bytes; ciphertext pieces sit at `stride`. */
export interface Sm4WorkerJob {
  /** What to do. */
  op: "encrypt" | "decrypt";
  /** The 16-byte key. */
  key: Uint8Array;
  /** One 16-byte IV per piece, back to back. */
  ivs: Uint8Array;
  /** Plaintext (encrypt: contiguous) or ciphertext pieces at `stride`. */
  input: ArrayBuffer;
  /** Ciphertext pieces (encrypt) or plaintext pieces (decrypt) at `stride`. */
  output: ArrayBuffer;
  /** Plaintext bytes per piece. */
  piece: number;
  /** Number of pieces. */
  count: number;
  /** Bytes of plaintext in all (the last piece may be shorter). */
  plainLength: number;
}

/** The reply: the buffers back, and the time spent inside the worker. */
export interface Sm4WorkerReply {
  /** The job's input buffer. */
  input: ArrayBuffer;
  /** The job's output buffer. */
  output: ArrayBuffer;
  /** Milliseconds spent encrypting or decrypting. */
  ms: number;
}

function run(job: Sm4WorkerJob): number {
  const { key, ivs, input, output, piece, count, plainLength } = job;
  const stride = piece + 16;
  const cipher = sm4(key);
  const t0 = performance.now();
  if (job.op === "encrypt") {
    const items: Sm4CbcItem[] = [];
    for (let i = 0; i < count; i++) {
      const n = Math.min(piece, plainLength - i * piece);
      items.push({
        plain: new Uint8Array(input, i * piece, n),
        iv: ivs.subarray(i * 16, i * 16 + 16),
        out: new Uint8Array(output, i * stride, (Math.floor(n / 16) + 1) * 16),
      });
    }
    cipher.encryptCbcMany(items);
  } else {
    for (let i = 0; i < count; i++) {
      const n = Math.min(piece, plainLength - i * piece);
      const len = (Math.floor(n / 16) + 1) * 16;
      cipher.decryptCbc(
        new Uint8Array(input, i * stride, len),
        ivs.subarray(i * 16, i * 16 + 16),
        new Uint8Array(output, i * stride, len),
      );
    }
  }
  const ms = performance.now() - t0;
  cipher.destroy();
  return ms;
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<Sm4WorkerJob>) => void) | null;
  postMessage(message: Sm4WorkerReply, transfer: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;
scope.onmessage = (e: MessageEvent<Sm4WorkerJob>): void => {
  const ms = run(e.data);
  const reply: Sm4WorkerReply = {
    input: e.data.input,
    output: e.data.output,
    ms,
  };
  scope.postMessage(reply, [e.data.input, e.data.output]);
};
