/**
 * SM4-CBC through the library's framing path against `openssl speed`, in
 * the same run: 256 MiB (or `-- <MiB>`) encrypted through
 * `createEncryptingSink` (default 1 MiB pieces, concurrency 8) into a sink
 * that discards the bytes, and decrypted back through `openDecryptingSource`
 * read sequentially in 16 MiB reads. Each round makes a fresh sink and a
 * fresh source, as each save and load does, so starting (or reusing) the
 * SM4 workers is part of the figure. Encryption is measured twice: into a
 * sink that takes the blocks in order (`write`), and into one that takes
 * them at their offsets (`writeAt`, as the local store's sink does, so the
 * encrypting sink has several blocks being written at once). Rounds interleave ours and
 * `openssl speed -elapsed -evp sm4-cbc -bytes 16384 -seconds 3`, and each
 * ratio is taken within its round. The load average is printed before and
 * after. Run with `deno task bench:sm4-framing`; `bench:sm4` runs it too.
 *
 * @module
 */

import { createEncryptingSink, openDecryptingSource } from "../mod.ts";

const MiB = 1 << 20;

function load(): string {
  try {
    return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  } catch {
    return "n/a";
  }
}

async function opensslSpeed(decrypt: boolean): Promise<number> {
  const args = ["speed", "-elapsed", "-evp", "sm4-cbc", "-bytes", "16384"];
  args.push("-seconds", "3");
  if (decrypt) args.push("-decrypt");
  const out = await new Deno.Command("openssl", { args, stderr: "null" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  const m = text.match(/^sm4-cbc\s+([\d.]+)k\s*$/im);
  if (m === null) throw new Error(`Cannot parse openssl speed:\n${text}`);
  return Number(m[1]) * 1000 / 1e6; // k = 1000 bytes/s -> MB/s
}

/** One framing encrypt (returns MB/s and the ciphertext file, kept once). */
async function encryptOnce(
  key: Uint8Array,
  plain: Uint8Array,
  keep: boolean,
  positional = false,
): Promise<{ mbps: number; file: Uint8Array | null }> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const write = (chunk: Uint8Array) => {
    size += chunk.byteLength;
    if (keep) parts.push(chunk.slice());
    return Promise.resolve();
  };
  // Positional writes here arrive in file order, so `parts` stays in order.
  const sink = createEncryptingSink(
    positional ? { write, writeAt: (_at, chunk) => write(chunk) } : { write },
    { key, mode: "SM4-CBC" },
  );
  const t0 = performance.now();
  for (let at = 0; at < plain.length; at += 16 * MiB) {
    await sink.write(plain.subarray(at, at + 16 * MiB));
  }
  await sink.finish();
  const ms = performance.now() - t0;
  let file: Uint8Array | null = null;
  if (keep) {
    file = new Uint8Array(size);
    parts.reduce((at, p) => (file!.set(p, at), at + p.length), 0);
  }
  return { mbps: plain.length / ms / 1000, file };
}

async function decryptOnce(
  key: Uint8Array,
  file: Uint8Array,
  into: Uint8Array,
): Promise<number> {
  const t0 = performance.now();
  const source = await openDecryptingSource({
    size: file.length,
    readAt: (at, to) =>
      Promise.resolve(to.set(file.subarray(at, at + to.length))),
  }, { key, mode: "SM4-CBC", path: "mem" });
  try {
    for (let at = 0; at < source.size; at += 16 * MiB) {
      await source.readAt(
        at,
        into.subarray(at, Math.min(source.size, at + 16 * MiB)),
      );
    }
  } finally {
    source.close();
  }
  return into.length / (performance.now() - t0) / 1000;
}

/** Figures of {@linkcode framingRounds}, in MB/s (10^6 bytes/s). */
export interface FramingRound {
  enc: number;
  /** Encryption into a sink with `writeAt`. */
  encAt: number;
  dec: number;
  sslEnc: number;
  sslDec: number;
}

/** Runs the framing rounds and prints them with their ratios. */
export async function framingRounds(
  size: number,
  rounds = 3,
): Promise<FramingRound[]> {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const plain = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(plain.subarray(i, Math.min(size, i + 65536)));
  }
  const back = new Uint8Array(size);
  // Warm-up and check: the round trip gives the plaintext back.
  const { file } = await encryptOnce(key, plain, true);
  await decryptOnce(key, file!, back);
  for (let i = 0; i < size; i++) {
    if (back[i] !== plain[i]) throw new Error(`framing round trip: byte ${i}`);
  }
  console.log(`framing: load average before ${load()}`);
  const out: FramingRound[] = [];
  for (let r = 0; r < rounds; r++) {
    const enc = (await encryptOnce(key, plain, false)).mbps;
    const sslEnc = await opensslSpeed(false);
    const encAt = (await encryptOnce(key, plain, false, true)).mbps;
    const dec = await decryptOnce(key, file!, back);
    const sslDec = await opensslSpeed(true);
    out.push({ enc, encAt, dec, sslEnc, sslDec });
    console.log(
      `framing round ${r + 1}: encrypt ${enc.toFixed(1)} MB/s ` +
        `(openssl ${sslEnc.toFixed(1)}, x${(enc / sslEnc).toFixed(2)}), ` +
        `positional ${encAt.toFixed(1)} MB/s (x${
          (encAt / sslEnc).toFixed(2)
        }), ` +
        `decrypt ${dec.toFixed(1)} MB/s ` +
        `(openssl ${sslDec.toFixed(1)}, x${(dec / sslDec).toFixed(2)})`,
    );
  }
  const med = (f: (r: FramingRound) => number) =>
    out.map(f).sort((a, b) => a - b)[out.length >> 1]!;
  console.log(
    `framing ${size / MiB} MiB, median of ${rounds} per-round ratios: ` +
      `encrypt x${med((r) => r.enc / r.sslEnc).toFixed(2)}, ` +
      `positional x${med((r) => r.encAt / r.sslEnc).toFixed(2)}, ` +
      `decrypt x${med((r) => r.dec / r.sslDec).toFixed(2)} ` +
      `(load average after ${load()})`,
  );
  return out;
}

if (import.meta.main) {
  await framingRounds(Number(Deno.args[0] ?? 256) * MiB);
}
