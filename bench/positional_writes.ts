// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Ways to write encrypted blocks to a file, without the cipher: `[MiB]` of
 * 2 MiB blocks, each after a 48-byte header, then fsync. Candidates, rounds
 * interleaved, medians printed with the load average:
 *
 * - `seq`: one handle, header then block, in order, 4 writes queued (the
 *   encrypting sink before positional writes);
 * - `hK`: K handles on the file, blocks dealt round-robin, each `seek` +
 *   header + block (what the local store's `writeAt` does);
 * - `h2j`: 2 handles, header and block joined first (a copy into fresh
 *   memory per block);
 * - `node4`: `node:fs/promises` positional `write(buf, 0, len, position)`
 *   on one handle, 4 in flight.
 *
 * Run: `npx --yes deno@2.9.6 run --allow-read=/tmp --allow-write=/tmp
 * --allow-sys=loadavg bench/positional_writes.ts [MiB=1024] [rounds=3]`
 *
 * @module
 */
import { open as fsOpen } from "node:fs/promises";
const MIB = 1 << 20;
const total = Number(Deno.args[0] ?? 1024) * MIB;
const rounds = Number(Deno.args[1] ?? 3);
const BLOCK = 2 * MIB;
const n = total / BLOCK;
const bufs: Uint8Array[] = [];
for (let i = 0; i < 16; i++) bufs.push(new Uint8Array(BLOCK).fill(i + 1));
const header = new Uint8Array(48).fill(7);
const dir = await Deno.makeTempDir({ prefix: "ckpt_bench_" });
async function writeAll(f: Deno.FsFile, b: Uint8Array) {
  let d = 0;
  while (d < b.length) d += await f.write(b.subarray(d));
}
async function seq(): Promise<number> {
  const p = `${dir}/seq.bin`;
  const t = performance.now();
  const f = await Deno.open(p, { write: true, create: true, truncate: true });
  // 4 queued, as the sink does
  let chain = Promise.resolve();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const b = bufs[i % 16]!;
    chain = chain.then(() => writeAll(f, header)).then(() => writeAll(f, b));
    pending.push(chain);
    while (pending.length >= 4) await pending.shift();
  }
  await chain;
  await f.sync();
  f.close();
  const ms = performance.now() - t;
  await Deno.remove(p);
  return ms;
}
async function handles(k: number, joined: boolean): Promise<number> {
  const p = `${dir}/h.bin`;
  const t = performance.now();
  const f0 = await Deno.open(p, { write: true, create: true, truncate: true });
  const hs = [f0];
  for (let i = 1; i < k; i++) hs.push(await Deno.open(p, { write: true }));
  const chains: Promise<void>[] = hs.map(() => Promise.resolve());
  const pending: Promise<void>[] = [];
  const blockLen = 48 + BLOCK;
  const joinedBufs = joined
    ? bufs.map((b) => {
      const j = new Uint8Array(blockLen);
      j.set(header);
      j.set(b, 48);
      return j;
    })
    : [];
  for (let i = 0; i < n; i++) {
    const h = i % k;
    const f = hs[h]!;
    const pos = i * blockLen;
    const b = bufs[i % 16]!;
    const c = chains[h]!.then(async () => {
      await f.seek(pos, Deno.SeekMode.Start);
      if (joined) await writeAll(f, joinedBufs[i % 16]!);
      else {
        await writeAll(f, header);
        await writeAll(f, b);
      }
    });
    chains[h] = c;
    pending.push(c);
    while (pending.length >= 2 * k) await pending.shift();
  }
  await Promise.all(chains);
  await f0.sync();
  for (const h of hs) h.close();
  const ms = performance.now() - t;
  await Deno.remove(p);
  return ms;
}
async function nodePos(k: number): Promise<number> {
  const p = `${dir}/n.bin`;
  const t = performance.now();
  const fh = await fsOpen(p, "w");
  const pending: Promise<unknown>[] = [];
  const blockLen = 48 + BLOCK;
  for (let i = 0; i < n; i++) {
    const pos = i * blockLen;
    pending.push(
      fh.write(header, 0, 48, pos).then(() =>
        fh.write(bufs[i % 16]!, 0, BLOCK, pos + 48)
      ),
    );
    while (pending.length >= k) await pending.shift();
  }
  await Promise.all(pending);
  await fh.sync();
  await fh.close();
  const ms = performance.now() - t;
  // check file size
  const st = await Deno.stat(p);
  if (st.size !== n * blockLen) throw new Error("size " + st.size);
  await Deno.remove(p);
  return ms;
}
const cands: [string, () => Promise<number>][] = [
  ["seq", seq],
  ["h2", () => handles(2, false)],
  ["h4", () => handles(4, false)],
  ["h8", () => handles(8, false)],
  ["h2j", () => handles(2, true)],
  ["node4", () => nodePos(4)],
];
const res: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  for (const [name, fn] of cands) {
    (res[name] ??= []).push(total / 1e6 / ((await fn()) / 1e3));
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [name, xs] of Object.entries(res)) {
  console.log(
    name,
    xs.map((x) => x.toFixed(0)).join(" "),
    "median",
    med(xs).toFixed(0),
    "MB/s",
  );
}
console.log("load", Deno.loadavg().join(" "));
await Deno.remove(dir, { recursive: true });
