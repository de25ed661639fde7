// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Worker that runs SM4-CBC (PKCS#7) for `_sm4_pool.ts`, so the JS thread of
 * the caller stays free. Buffers come and go by transfer, never by copy.
 */

import { type Sm4, sm4 } from "./sm4.ts";

/** A message from the pool. */
export type Sm4WorkerRequest =
  | { type: "key"; key: Uint8Array }
  | {
    type: "run";
    id: number;
    op: "encrypt" | "decrypt";
    iv: Uint8Array;
    input: ArrayBuffer;
    inputLength: number;
    output: ArrayBuffer;
  };

/** A reply to a `run` request (or, with `id` 0, the word that the worker is ready). */
export interface Sm4WorkerReply {
  id: number;
  input: ArrayBuffer;
  output: ArrayBuffer;
  /** Bytes of output written, or -1 when decryption failed. */
  length: number;
}

interface _WorkerScope {
  onmessage: ((event: MessageEvent<Sm4WorkerRequest>) => void) | null;
  postMessage(message: Sm4WorkerReply, transfer: Transferable[]): void;
}

const scope = globalThis as unknown as _WorkerScope;
let cipher: Sm4 | null = null;

scope.onmessage = (event) => {
  const m = event.data;
  if (m.type === "key") {
    cipher?.destroy();
    cipher = sm4(m.key);
    m.key.fill(0);
    const empty = new ArrayBuffer(0);
    scope.postMessage({ id: 0, input: empty, output: empty, length: 0 }, []);
    return;
  }
  const input = new Uint8Array(m.input, 0, m.inputLength);
  const output = new Uint8Array(m.output);
  let length = -1;
  try {
    length = m.op === "encrypt"
      ? cipher!.encryptCbc(input, m.iv, output).byteLength
      : cipher!.decryptCbc(input, m.iv, output).byteLength;
  } catch {
    length = -1;
  }
  scope.postMessage(
    { id: m.id, input: m.input, output: m.output, length },
    [m.input, m.output],
  );
};
