/**
 * SM4-CBC (PKCS#7) throughput of `src/crypto/sm4.ts` against OpenSSL and
 * `npm:sm-crypto`, all measured in the same run, with the ratios the issue
 * asks for. Run with `deno task bench:sm4` (optionally `-- <MiB>`; default
 * 256).
 *
 * What is measured, each on the same machine in this run:
 * - ours, one stream on the main thread (`encryptCbc` / `decryptCbc` over
 *   each 128 MiB half);
 * - ours, independent 16 MiB pieces interleaved two at a time on the main
 *   thread (`encryptCbcMany`);
 * - ours, both cores: two module workers loading `sm4.ts`, each given half
 *   the data as independent 16 MiB pieces (own IV each, as the framing
 *   writes them); buffers are transferred, not copied, and reused across
 *   rounds (the first round is a warm-up);
 * - `openssl speed -elapsed -evp sm4-cbc -bytes 16384 -seconds 3` (and
 *   `-decrypt`), one core, in every round; `-elapsed` makes OpenSSL divide
 *   by wall-clock time as we do (by default it divides by its CPU time,
 *   which overstates it when the machine is busy; that figure is shown
 *   once too), plus `-multi 2` (both cores) for reference;
 * - `openssl enc -sm4-cbc` on the same bytes, through pipes;
 * - `npm:sm-crypto` (the most used npm SM4 package) on 4 MiB, scaled;
 * - the library's framing path (`bench/sm4_framing.ts`): `SIZE` encrypted
 *   through `createEncryptingSink` into a discarding sink and decrypted
 *   through `openDecryptingSource`, against `openssl speed -elapsed`.
 *
 * Every implementation's output is checked against a known-answer vector or
 * OpenSSL before anything is timed.
 *
 * @module
 */

import { sm4, type Sm4CbcItem } from "../src/crypto/sm4.ts";
import type { Sm4WorkerJob, Sm4WorkerReply } from "./sm4_worker.ts";
import smCrypto from "npm:sm-crypto@0.5.8";
import process from "node:process";
import { framingRounds } from "./sm4_framing.ts";

const MiB = 1 << 20;
const SIZE = Number(Deno.args[0] ?? 256) * MiB;
const PIECE = 16 * MiB;
const STRIDE = PIECE + 16;
const ROUNDS = 3;

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function fromHex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function fillRandom(b: Uint8Array): void {
  for (let i = 0; i < b.length; i += 65536) {
    crypto.getRandomValues(b.subarray(i, Math.min(b.length, i + 65536)));
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function mbps(bytes: number, ms: number): number {
  return bytes / ms / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function openssl(args: string[], input?: Uint8Array): Promise<{
  stdout: Uint8Array;
  ms: number;
}> {
  const t0 = performance.now();
  const child = new Deno.Command("openssl", {
    args,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writing = input === undefined ? Promise.resolve() : (async () => {
    const w = child.stdin.getWriter();
    await w.write(input);
    await w.close();
  })();
  const [out] = await Promise.all([child.output(), writing]);
  const ms = performance.now() - t0;
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return { stdout: out.stdout, ms };
}

/** `openssl speed` result for 16 KiB blocks, in MB/s (10^6 bytes/s). */
async function opensslSpeed(extra: string[]): Promise<number> {
  const args = [
    "speed",
    ...extra,
    "-evp",
    "sm4-cbc",
    "-bytes",
    "16384",
    "-seconds",
    "3",
  ];
  const { stdout } = await openssl(args);
  const text = new TextDecoder().decode(stdout);
  // The table's last line: "SM4-CBC   115096.22k" (1000s of bytes/s).
  const m = text.match(/^SM4-CBC\s+([\d.]+)k\s*$/im) ??
    text.match(/^evp\s+([\d.]+)k\s*$/im);
  if (m === null) {
    throw new Error(`Cannot parse openssl speed output:\n${text}`);
  }
  return Number(m[1]) / 1000;
}

// --- data -----------------------------------------------------------------

const key = new Uint8Array(16);
fillRandom(key);
const iv = new Uint8Array(16);
fillRandom(iv);
const half = SIZE / 2;
const pieces = Math.ceil(half / PIECE); // per half / per worker
const plain = [new Uint8Array(half), new Uint8Array(half)];
plain.forEach(fillRandom);
const ivs = [new Uint8Array(16 * pieces), new Uint8Array(16 * pieces)];
ivs.forEach(fillRandom);
// Output buffers are allocated and touched once, as a framing writer's pool
// would be: first-touch page faults are not cipher speed (docs/performance.md).
const single = [new Uint8Array(half + 16), new Uint8Array(half + 16)];
const back = [new Uint8Array(half + 16), new Uint8Array(half + 16)];
const pieceOut = [
  new Uint8Array(STRIDE * pieces),
  new Uint8Array(STRIDE * pieces),
];
const pieceBack = [
  new Uint8Array(STRIDE * pieces),
  new Uint8Array(STRIDE * pieces),
];
for (const b of [...single, ...back, ...pieceOut, ...pieceBack]) b.fill(1);

console.log(
  `SM4-CBC with PKCS#7, ${SIZE / MiB} MiB; Deno ${Deno.version.deno}, ` +
    `V8 ${Deno.version.v8}, ${navigator.hardwareConcurrency} CPUs`,
);

// --- correctness before timing -------------------------------------------

{
  const k = fromHex("0123456789abcdeffedcba9876543210");
  const c = sm4(k);
  if (hex(c.encryptBlock(k)) !== "681edf34d206965e86b3e94f536e4246") {
    throw new Error("sm4.ts fails GB/T 32907-2016 example 1");
  }
  c.destroy();
  const sample = plain[0]!.subarray(0, MiB + 5);
  const cc = sm4(key);
  const ours = cc.encryptCbc(sample, iv);
  const theirs = await openssl(
    ["enc", "-sm4-cbc", "-K", hex(key), "-iv", hex(iv)],
    sample,
  );
  if (!equalBytes(ours, theirs.stdout)) {
    throw new Error("sm4.ts disagrees with openssl enc -sm4-cbc");
  }
  cc.destroy();
  console.log(
    "check: sm4.ts matches the GB/T vector and openssl enc (1 MiB+5)",
  );
}

// --- the timed rounds -------------------------------------------------------
// The machines are shared and noisy, so each round measures every contender
// back to back, and the ratios are taken per round (then the median).

const cipher = sm4(key);
const workers = [0, 1].map(() =>
  new Worker(new URL("./sm4_worker.ts", import.meta.url), { type: "module" })
);
// Buffers move between threads; these hold whichever ArrayBuffer is home.
const plainBufs: ArrayBuffer[] = plain.map((p) => p.buffer as ArrayBuffer);
const pieceBufs: ArrayBuffer[] = pieceOut.map((p) => p.buffer as ArrayBuffer);
const backBufs: ArrayBuffer[] = pieceBack.map((p) => p.buffer as ArrayBuffer);
const plainOf = (h: number) => new Uint8Array(plainBufs[h]!);

/**
 * Throughput by this process's CPU time (all threads) for the last
 * measurement: bytes per CPU-second, what `openssl speed` reports without
 * `-elapsed`. Unlike wall-clock figures it barely moves when other
 * processes compete for the cores.
 */
let lastCpu = 0;
function cpuStart(): { user: number; system: number } {
  return process.cpuUsage();
}
function cpuEnd(start: { user: number; system: number }): void {
  const d = process.cpuUsage(start);
  lastCpu = mbps(SIZE, (d.user + d.system) / 1000);
}

function timeSingle(op: "encrypt" | "decrypt"): number {
  const c0 = cpuStart();
  const t0 = performance.now();
  for (let h = 0; h < 2; h++) {
    if (op === "encrypt") cipher.encryptCbc(plainOf(h), iv, single[h]!);
    else cipher.decryptCbc(single[h]!, iv, back[h]!);
  }
  const wall = mbps(SIZE, performance.now() - t0);
  cpuEnd(c0);
  return wall;
}

function pieceItems(h: number): Sm4CbcItem[] {
  const p = plainOf(h), o = new Uint8Array(pieceBufs[h]!);
  const items: Sm4CbcItem[] = [];
  for (let i = 0; i < pieces; i++) {
    const n = Math.min(PIECE, half - i * PIECE);
    items.push({
      plain: p.subarray(i * PIECE, i * PIECE + n),
      iv: ivs[h]!.subarray(16 * i, 16 * i + 16),
      out: o.subarray(i * STRIDE, i * STRIDE + (Math.floor(n / 16) + 1) * 16),
    });
  }
  return items;
}

function timeMany(): number {
  const items = [...pieceItems(0), ...pieceItems(1)];
  const c0 = cpuStart();
  const t0 = performance.now();
  cipher.encryptCbcMany(items);
  const wall = mbps(SIZE, performance.now() - t0);
  cpuEnd(c0);
  return wall;
}

function job(w: number, msg: Sm4WorkerJob): Promise<Sm4WorkerReply> {
  return new Promise((resolve) => {
    workers[w]!.onmessage = (e: MessageEvent<Sm4WorkerReply>) =>
      resolve(e.data);
    workers[w]!.postMessage(msg, [msg.input, msg.output]);
  });
}

async function timeWorkers(op: "encrypt" | "decrypt"): Promise<number> {
  const c0 = cpuStart();
  const t = performance.now();
  const replies = await Promise.all([0, 1].map((w) =>
    job(w, {
      op,
      key,
      ivs: ivs[w]!,
      input: op === "encrypt" ? plainBufs[w]! : pieceBufs[w]!,
      output: op === "encrypt" ? pieceBufs[w]! : backBufs[w]!,
      piece: PIECE,
      count: pieces,
      plainLength: half,
    })
  ));
  const ms = performance.now() - t;
  cpuEnd(c0);
  replies.forEach((r, w) => {
    if (op === "encrypt") {
      plainBufs[w] = r.input;
      pieceBufs[w] = r.output;
    } else {
      pieceBufs[w] = r.input;
      backBufs[w] = r.output;
    }
  });
  return mbps(SIZE, ms);
}

/** Every output of the round agrees with the plaintext and each other. */
function verifyRound(): void {
  for (let h = 0; h < 2; h++) {
    const p = plainOf(h);
    if (!equalBytes(back[h]!.subarray(0, half), p)) {
      throw new Error("single-stream round trip failed");
    }
    const c = new Uint8Array(pieceBufs[h]!);
    const d = new Uint8Array(backBufs[h]!);
    for (let i = 0; i < pieces; i++) {
      const n = Math.min(PIECE, half - i * PIECE);
      const pc = p.subarray(i * PIECE, i * PIECE + n);
      if (!equalBytes(d.subarray(i * STRIDE, i * STRIDE + n), pc)) {
        throw new Error("worker round trip failed");
      }
      if (i === 0) {
        const expect = cipher.encryptCbc(pc, ivs[h]!.subarray(0, 16));
        if (!equalBytes(c.subarray(0, expect.length), expect)) {
          throw new Error("worker ciphertext disagrees with main thread");
        }
      }
    }
  }
}

// Warm-up: JIT in each worker and on the main thread (small sizes would do,
// but this also checks the whole pipeline once).
await timeWorkers("encrypt");
await timeWorkers("decrypt");
timeSingle("encrypt");
timeSingle("decrypt");
verifyRound();

interface Round {
  singleEnc: number;
  singleDec: number;
  manyEnc: number;
  workerEnc: number;
  workerDec: number;
  sslEnc: number;
  sslDec: number;
  /** The same, by CPU time (bytes per CPU-second). */
  cpu: {
    singleEnc: number;
    singleDec: number;
    manyEnc: number;
    workerEnc: number;
    workerDec: number;
    sslEnc: number;
    sslDec: number;
  };
}
const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const singleEnc = timeSingle("encrypt"), cSingleEnc = lastCpu;
  const singleDec = timeSingle("decrypt"), cSingleDec = lastCpu;
  const manyEnc = timeMany(), cManyEnc = lastCpu;
  const workerEnc = await timeWorkers("encrypt"), cWorkerEnc = lastCpu;
  const workerDec = await timeWorkers("decrypt"), cWorkerDec = lastCpu;
  const round: Round = {
    singleEnc,
    singleDec,
    manyEnc,
    workerEnc,
    workerDec,
    sslEnc: await opensslSpeed(["-elapsed"]),
    sslDec: await opensslSpeed(["-elapsed", "-decrypt"]),
    cpu: {
      singleEnc: cSingleEnc,
      singleDec: cSingleDec,
      manyEnc: cManyEnc,
      workerEnc: cWorkerEnc,
      workerDec: cWorkerDec,
      sslEnc: await opensslSpeed([]),
      sslDec: await opensslSpeed(["-decrypt"]),
    },
  };
  verifyRound();
  rounds.push(round);
  const line = (o: Record<string, unknown>) =>
    Object.entries(o).filter(([, v]) => typeof v === "number").map((
      [k, v],
    ) => `${k} ${(v as number).toFixed(1)}`).join(", ");
  console.log(`round ${r + 1} wall: ${line({ ...round })}`);
  console.log(`round ${r + 1} cpu:  ${line(round.cpu)}`);
}
workers.forEach((w) => w.terminate());

// --- OpenSSL with both cores, and through pipes (reference) ----------------

const sslEnc2 = await opensslSpeed(["-elapsed", "-multi", "2"]);
const sslDec2 = await opensslSpeed(["-elapsed", "-multi", "2", "-decrypt"]);

let encMs = 0, decMs = 0;
for (let h = 0; h < 2; h++) {
  const args = ["-sm4-cbc", "-K", hex(key), "-iv", hex(iv)];
  const e = await openssl(["enc", ...args], plainOf(h));
  if (!equalBytes(e.stdout, single[h]!)) {
    throw new Error("openssl enc disagrees with sm4.ts on the same bytes");
  }
  encMs += e.ms;
  const d = await openssl(["enc", "-d", ...args], single[h]!);
  if (!equalBytes(d.stdout, plainOf(h))) {
    throw new Error("openssl enc -d did not return the plaintext");
  }
  decMs += d.ms;
}
const pipeEnc = mbps(SIZE, encMs);
const pipeDec = mbps(SIZE, decMs);

// --- npm:sm-crypto ------------------------------------------------------------

const SMC = 4 * MiB;
const smcPlain = plainOf(0).subarray(0, SMC);
const smcKey = Array.from(key);
const smcIv = Array.from(iv);
let t0 = performance.now();
const smcCt: number[] = smCrypto.sm4.encrypt(smcPlain, smcKey, {
  mode: "cbc",
  iv: smcIv,
  output: "array",
});
const smcEnc = mbps(SMC, performance.now() - t0);
if (!equalBytes(Uint8Array.from(smcCt), cipher.encryptCbc(smcPlain, iv))) {
  throw new Error("sm-crypto disagrees with sm4.ts");
}
t0 = performance.now();
const smcBack: number[] = smCrypto.sm4.decrypt(smcCt, smcKey, {
  mode: "cbc",
  iv: smcIv,
  output: "array",
});
const smcDec = mbps(SMC, performance.now() - t0);
if (!equalBytes(Uint8Array.from(smcBack), smcPlain)) {
  throw new Error("sm-crypto round trip failed");
}
cipher.destroy();

// --- report -------------------------------------------------------------------

const med = (f: (r: Round) => number) => median(rounds.map(f));
const fmt = (v: number) => Number.isNaN(v) ? "-" : v.toFixed(1);
const fmt2 = (v: number) => v.toFixed(2);
const x = (v: number) => `${v.toFixed(2)}x`;
const table = (title: string, rows: [string, number, number][]) => {
  console.log(`\n${title}\n`);
  console.log("| implementation | encrypt MB/s | decrypt MB/s |");
  console.log("| --- | ---: | ---: |");
  for (const [name, e, d] of rows) {
    console.log(`| ${name} | ${fmt(e)} | ${fmt(d)} |`);
  }
};

const singleEnc = med((r) => r.singleEnc), singleDec = med((r) => r.singleDec);
const wEnc = med((r) => r.workerEnc), wDec = med((r) => r.workerDec);
table(
  `Wall clock, MB/s (10^6 bytes/s), median of ${ROUNDS} rounds unless "once":`,
  [
    ["sm4.ts, one stream, main thread", singleEnc, singleDec],
    [
      "sm4.ts, 16 MiB pieces, 2 interleaved, main thread",
      med((r) => r.manyEnc),
      NaN,
    ],
    ["sm4.ts, 2 module workers, 16 MiB pieces", wEnc, wDec],
    [
      "openssl speed -elapsed -evp sm4-cbc -bytes 16384 -seconds 3",
      med((r) => r.sslEnc),
      med((r) => r.sslDec),
    ],
    ["openssl speed -elapsed -multi 2 ... (once)", sslEnc2, sslDec2],
    ["openssl enc -sm4-cbc, same bytes via pipes (once)", pipeEnc, pipeDec],
    [`npm:sm-crypto@0.5.8, ${SMC / MiB} MiB (once)`, smcEnc, smcDec],
  ],
);
table(
  "CPU time, MB per CPU-second (all threads), median of the rounds:",
  [
    [
      "sm4.ts, one stream",
      med((r) => r.cpu.singleEnc),
      med((r) => r.cpu.singleDec),
    ],
    [
      "sm4.ts, 2 interleaved streams",
      med((r) => r.cpu.manyEnc),
      NaN,
    ],
    [
      "sm4.ts, 2 module workers",
      med((r) => r.cpu.workerEnc),
      med((r) => r.cpu.workerDec),
    ],
    [
      "openssl speed -evp sm4-cbc -bytes 16384 -seconds 3 (no -elapsed)",
      med((r) => r.cpu.sslEnc),
      med((r) => r.cpu.sslDec),
    ],
  ],
);

const ratio = (
  name: string,
  e: (r: Round) => number,
  d: (r: Round) => number,
  note = "",
) =>
  console.log(
    `  ${name.padEnd(46)} encrypt ${x(med(e))}, decrypt ${x(med(d))}${note}`,
  );
console.log(
  "\nCores obtained (wall MB/s over MB per CPU-second; 1.0 = one whole core):",
);
console.log(
  `  sm4.ts 2 workers: encrypt ${
    fmt2(med((r) => r.workerEnc / r.cpu.workerEnc))
  }, decrypt ${fmt2(med((r) => r.workerDec / r.cpu.workerDec))}; ` +
    `openssl speed: encrypt ${fmt2(med((r) => r.sslEnc / r.cpu.sslEnc))}, ` +
    `decrypt ${fmt2(med((r) => r.sslDec / r.cpu.sslDec))}`,
);
console.log("\nRatios (median of the per-round ratios):");
ratio(
  "2 workers / openssl speed -elapsed (wall)",
  (r) => r.workerEnc / r.sslEnc,
  (r) => r.workerDec / r.sslDec,
  "   (issue: >= 1.5x)",
);
ratio(
  "one stream / openssl speed -elapsed (wall)",
  (r) => r.singleEnc / r.sslEnc,
  (r) => r.singleDec / r.sslDec,
);
ratio(
  "2 workers / openssl speed, per CPU-second",
  (r) => r.cpu.workerEnc / r.cpu.sslEnc,
  (r) => r.cpu.workerDec / r.cpu.sslDec,
  "   (x2 on two idle cores)",
);
ratio(
  "one stream / openssl speed, per CPU-second",
  (r) => r.cpu.singleEnc / r.cpu.sslEnc,
  (r) => r.cpu.singleDec / r.cpu.sslDec,
);
console.log(
  `  ${"2 workers / openssl speed -multi 2 (wall, once)".padEnd(46)} ` +
    `encrypt ${x(wEnc / sslEnc2)}, decrypt ${x(wDec / sslDec2)}`,
);
console.log(
  `  ${"one stream / sm-crypto (wall)".padEnd(46)} encrypt ${
    x(singleEnc / smcEnc)
  }, decrypt ${x(singleDec / smcDec)}   (issue: >= 10x)`,
);
console.log(
  `  ${"2 workers / sm-crypto (wall)".padEnd(46)} encrypt ${
    x(wEnc / smcEnc)
  }, decrypt ${x(wDec / smcDec)}`,
);

// --- The library's framing path (what saves and loads run) -----------------

console.log(
  "\nframing path: createEncryptingSink / openDecryptingSource " +
    "(fresh sink and source per round) against openssl speed -elapsed",
);
await framingRounds(SIZE);
