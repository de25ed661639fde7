// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Helpers shared by the crypto tests: hex, in-memory sinks and sources.
import {
  type ByteSink,
  type ByteSource,
  type CheckpointStore,
  createEncryptingSink,
  type EncMode,
  localStore,
  type StoreWriteOptions,
} from "../mod.ts";

export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A sink that keeps copies of what it is given. */
export class MemorySink implements ByteSink {
  parts: Uint8Array[] = [];
  write(chunk: Uint8Array): Promise<void> {
    this.parts.push(chunk.slice());
    return Promise.resolve();
  }
  bytes(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    readAt(position: number, into: Uint8Array): Promise<void> {
      if (position < 0 || position + into.byteLength > bytes.byteLength) {
        return Promise.reject(new RangeError("read past the end"));
      }
      into.set(bytes.subarray(position, position + into.byteLength));
      return Promise.resolve();
    },
  };
}

/** Deterministic bytes. */
export function pattern(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export async function readAll(source: ByteSource): Promise<Uint8Array> {
  const out = new Uint8Array(source.size);
  await source.readAt(0, out);
  return out;
}

/** `plain` framed and encrypted as a file, in pieces of `pieceSize` bytes. */
export async function encryptBytes(
  plain: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
  pieceSize: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const out = new MemorySink();
  const sink = createEncryptingSink(out, { key, mode, pieceSize });
  await sink.write(plain);
  await sink.finish();
  return out.bytes();
}

/** The local store with its sink's `writeAt` hidden: the ordered writer. */
export const orderedStore: CheckpointStore = Object.assign(
  Object.create(localStore) as CheckpointStore,
  {
    write: (
      path: string,
      produce: (sink: ByteSink) => Promise<void>,
      options?: StoreWriteOptions,
    ) =>
      localStore.write(
        path,
        (sink) => produce({ write: (chunk) => sink.write(chunk) }),
        options,
      ),
  },
);
