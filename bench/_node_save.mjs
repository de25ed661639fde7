// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Run under Node.js by bench/node_compare.ts: saves the same bytes through
// the built package's NodeStore and through fs.writeFile + fsync, rounds
// interleaved (the order turning each round), in a fresh folder.
// Usage: node _node_save.mjs PACKAGE_DIR WORK_DIR MIB ROUNDS
// Prints one JSON line per round, then one summary line.
import { open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const [pkgDir, workDir, mibArg, roundsArg] = process.argv.slice(2);
const pkg = JSON.parse(await readFile(join(pkgDir, "package.json"), "utf8"));
const { NodeStore, encodeCkpt } = await import(
  pathToFileURL(join(pkgDir, pkg.exports["."].default)).href
);

const MIB = 1024 * 1024;
const size = Number(mibArg) * MIB;
const rounds = Number(roundsArg);
const PIECE = 4 * MIB; // what the format layer hands a sink at most

// Incompressible bytes: one random 4 MiB block, varied per piece.
const data = new Uint8Array(size);
const block = new Uint8Array(PIECE);
for (let i = 0; i < PIECE; i += 65536) {
  crypto.getRandomValues(block.subarray(i, i + 65536));
}
for (let at = 0; at < size; at += PIECE) {
  data.set(block.subarray(0, Math.min(PIECE, size - at)), at);
  data[at] ^= at / PIECE;
}

const store = new NodeStore();
const tensor = {
  dtype: "Float32",
  shape: [size / 4],
  data: new Float32Array(data.buffer, 0, size / 4),
};

/** The `.ckpt` file's bytes, encoded once in memory. */
async function ckptBytes() {
  const parts = [];
  await encodeCkpt({
    write: (chunk) => {
      parts.push(chunk.slice());
      return Promise.resolve();
    },
  }, [{ name: "w", value: tensor }]);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
const ckpt = await ckptBytes();

/** The baseline: `fs.writeFile`, then fsync, of `bytes`. */
async function writeFileSync(path, bytes) {
  await writeFile(path, bytes);
  const file = await open(path, "r+");
  await file.sync();
  await file.close();
}

/**
 * Each variant writes its file and returns once it is durable. Pairs: a
 * baseline and the store writing the same bytes.
 */
const variants = {
  "fs.writeFile+fsync": (path) => writeFileSync(path, data),
  "fs.writeFile+fsync(.ckpt bytes)": (path) => writeFileSync(path, ckpt),
  "NodeStore.write": async (path) => {
    await store.write(path, async (sink) => {
      for (let at = 0; at < size; at += PIECE) {
        await sink.write(data.subarray(at, at + PIECE));
      }
    });
  },
  "NodeStore.write(encodeCkpt)": async (path) => {
    await store.write(
      path,
      (sink) => encodeCkpt(sink, [{ name: "w", value: tensor }]),
    );
  },
};

const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < rounds; round++) {
  const line = { round };
  // The order turns each round, so that no variant always follows the
  // removal of the same other variant's 1 GiB file.
  const order = Object.entries(variants);
  order.push(...order.splice(0, round % order.length));
  for (const [name, run] of order) {
    const path = join(workDir, `bench_${round}.bin`);
    const start = performance.now();
    await run(path);
    const ms = performance.now() - start;
    times[name].push(ms);
    line[name] = Math.round(ms);
    await rm(path, { force: true });
  }
  console.log(JSON.stringify(line));
}

// Medians, and the fastest rounds (least disturbed by other processes on
// a shared machine); speed = the baseline's time for the same bytes / the
// variant's time.
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const fastest = (xs) => Math.min(...xs);
const baselineOf = {
  "fs.writeFile+fsync": "fs.writeFile+fsync",
  "NodeStore.write": "fs.writeFile+fsync",
  "fs.writeFile+fsync(.ckpt bytes)": "fs.writeFile+fsync(.ckpt bytes)",
  "NodeStore.write(encodeCkpt)": "fs.writeFile+fsync(.ckpt bytes)",
};
const summary = {};
for (const [name, xs] of Object.entries(times)) {
  const base = times[baselineOf[name]];
  summary[name] = {
    medianMs: Math.round(median(xs)),
    fastestMs: Math.round(fastest(xs)),
    mibPerSMedian: Math.round(size / MIB / (median(xs) / 1000)),
    speedVsBaselineMedian: Number((median(base) / median(xs)).toFixed(3)),
    speedVsBaselineFastest: Number((fastest(base) / fastest(xs)).toFixed(3)),
  };
}
console.log(
  JSON.stringify({ node: process.version, mib: size / MIB, rounds, summary }),
);
