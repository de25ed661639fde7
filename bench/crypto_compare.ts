/**
 * `deno task bench:crypto [MiB] [rounds] [--sweep] [--quick]` — an AES-256-GCM
 * encrypted save of 1 GiB (64 Float32 tensors of 16 MiB) against, in the
 * same run:
 *
 * - the best Web Crypto AES-256-GCM throughput on the same bytes in memory
 *   (calls of 32 KiB to 16 MiB, 4 to 16 in flight, each output freed as soon
 *   as it is done with; the best of all of them);
 * - the same save without encryption;
 * - the same encrypted save with the blocks written in order, one write
 *   after another (the local store's sink with its positional `writeAt`
 *   hidden: what every save did before positional writes);
 * - the same serialisation and encryption into a sink that drops the bytes
 *   (no disk), which isolates what framing and serialisation add to Web
 *   Crypto from what the disk adds.
 *
 * The encrypted save writes its blocks at their offsets, several at once
 * (`_positional` in `src/core/_positional.ts`: handles on the temporary
 * file, blocks in flight); `--sweep` also measures other values of both.
 * `--quick` tries only the four Web Crypto configurations that were ever
 * the fastest (32 KiB × 16, 512 KiB × 8, 1 MiB × 8, 4 MiB × 4).
 *
 * Also the longest the JS thread was blocked during each save: the largest
 * gap between ticks of a 1 ms `setInterval`; and how many cores the process
 * kept busy (CPU time of all its threads, `process.cpuUsage()`, over the
 * wall time). Rounds are interleaved so that
 * noise from other work on the machine hits every candidate alike; figures
 * are medians of the rounds, ratios are taken within each round.
 */
import { createEncryptingSink, saveCheckpoint, type Tensor } from "../mod.ts";
import { encodeCkpt } from "../src/format/ckpt.ts";
import { orderedStore } from "../tests/_crypto_helpers.ts";
import { _positional } from "../src/core/_positional.ts";
import { cpuUsage } from "node:process";

/** CPU milliseconds (user + system, every thread) since `from`. */
const cpuMs = (from: ReturnType<typeof cpuUsage>) => {
  const d = cpuUsage(from);
  return (d.user + d.system) / 1000;
};

const MIB = 1024 * 1024;
const args = Deno.args.filter((a) => !a.startsWith("--"));
const sweep = Deno.args.includes("--sweep");
/** `--quick`: only the Web Crypto configurations that were ever the best. */
const quick = Deno.args.includes("--quick");
const totalMib = Number(args[0] ?? 1024);
const rounds = Number(args[1] ?? 3);
const TENSOR_MIB = 16;
const count = Math.max(1, Math.round(totalMib / TENSOR_MIB));
const total = count * TENSOR_MIB * MIB;
const MB = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1e3);

// Touched, non-trivial data (fresh pages would measure the page faults).
const network = new Map<string, Tensor>();
for (let i = 0; i < count; i++) {
  const data = new Float32Array(TENSOR_MIB * MIB / 4);
  for (let j = 0; j < data.length; j += 1024) data[j] = i + j / 7;
  network.set(`layer${i}.weight`, {
    dtype: "Float32",
    shape: [data.length],
    data,
  });
}
const tensors = [...network.values()].map((t) =>
  new Uint8Array(
    t.data.buffer as ArrayBuffer,
    t.data.byteOffset,
    t.data.byteLength,
  )
);
const key = crypto.getRandomValues(new Uint8Array(32));
const webKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, [
  "encrypt",
]);

/** Web Crypto alone: every tensor cut into `piece`-byte calls, `inFlight` at once. */
async function webCrypto(piece: number, inFlight: number): Promise<number> {
  const t0 = performance.now();
  const pending: Promise<ArrayBuffer>[] = [];
  for (const bytes of tensors) {
    for (let at = 0; at < bytes.length; at += piece) {
      pending.push(crypto.subtle.encrypt(
        { name: "AES-GCM", iv: crypto.getRandomValues(new Uint8Array(16)) },
        webKey,
        bytes.subarray(at, at + piece),
      ));
      // Freed at once, as the encrypting sink does (see DEFAULT_PIECE_SIZE).
      if (pending.length >= inFlight) (await pending.shift()!).transfer(0);
    }
  }
  for (const out of await Promise.all(pending)) out.transfer(0);
  return MB(total, performance.now() - t0);
}

/**
 * Starts a 1 ms interval timer; `stop()` ends it and returns the largest gap
 * between its ticks (up to now), in milliseconds.
 */
function gapMeter(): { stop(): number } {
  let gap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(gap, performance.now() - last);
    },
  };
}

/** How a save is run: plain, encrypted in order, or positional with a tuning. */
type SaveKind =
  | { kind: "plain" }
  | { kind: "ordered" }
  | { kind: "positional"; handles: number; blocks: number };

/** One save; returns MB/s of tensor bytes and the largest timer gap. */
async function save(
  dir: string,
  how: SaveKind,
): Promise<{ mbs: number; gap: number; cores: number }> {
  const tuning = { ..._positional };
  if (how.kind === "positional") {
    _positional.handles = how.handles;
    _positional.blocks = how.blocks;
  }
  // Ordered: every write in order on one handle, as before positional writes.
  if (how.kind === "ordered") _positional.split = 0;
  try {
    const meter = gapMeter();
    const cpu0 = cpuUsage();
    const t0 = performance.now();
    const path = `${dir}/bench.ckpt`;
    await saveCheckpoint(
      path,
      network,
      how.kind === "plain" ? {} : {
        encKey: key,
        encMode: "AES-GCM",
        ...(how.kind === "ordered" ? { store: orderedStore } : {}),
      },
    );
    const ms = performance.now() - t0;
    const gap = meter.stop();
    const cores = cpuMs(cpu0) / ms;
    await Deno.remove(path);
    return { mbs: MB(total, ms), gap, cores };
  } finally {
    Object.assign(_positional, tuning);
  }
}

/**
 * The largest timer gap while the JS thread does nothing for `ms`: the noise
 * floor of the machine (other processes competing for the CPUs).
 */
async function idleGap(ms: number): Promise<number> {
  const meter = gapMeter();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return meter.stop();
}

/** Serialise and encrypt to nowhere: the save without the disk. */
async function encodeEncrypted(): Promise<
  { mbs: number; gap: number; cores: number }
> {
  const meter = gapMeter();
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  const sink = createEncryptingSink({ write: () => Promise.resolve() }, {
    key,
    mode: "AES-GCM",
  });
  await encodeCkpt(
    sink,
    [...network].map(([name, value]) => ({ name, value })),
  );
  await sink.finish();
  const ms = performance.now() - t0;
  const gap = meter.stop();
  return { mbs: MB(total, ms), gap, cores: cpuMs(cpu0) / ms };
}

/** Web Crypto call sizes (MiB) and calls in flight tried for the baseline. */
const allConfigs: [number, number][] = [
  [1 / 32, 8],
  [1 / 32, 16],
  [1 / 16, 8],
  [1 / 8, 8],
  [1 / 4, 8],
  [0.5, 8],
  [1, 4],
  [1, 8],
  [2, 4],
  [4, 4],
  [8, 4],
  [16, 4],
];
const configs = quick
  ? allConfigs.filter(([mib, n]) =>
    (mib === 1 / 32 && n === 16) || (mib === 0.5 && n === 8) ||
    (mib === 1 && n === 8) || (mib === 4 && n === 4)
  )
  : allConfigs;
const dir = await Deno.makeTempDir({ prefix: "ckpt_bench_" });
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
/** The encrypted saves measured: in order, then positional tunings. */
const defaults = { ..._positional };
const positional: SaveKind[] = [
  { kind: "positional", ...defaults },
  ...(sweep
    ? ([[2, 4], [4, 8], [8, 8], [8, 16]] as const).map(([handles, blocks]) => ({
      kind: "positional" as const,
      handles,
      blocks,
    }))
    : []),
];
const label = (how: SaveKind) =>
  how.kind === "positional"
    ? `positional ${how.handles} handles x ${how.blocks} blocks`
    : how.kind === "ordered"
    ? "ordered writes (before)"
    : "plain save";
/** Per candidate: MB/s, gap, and ratios to the round's baselines. */
const results = new Map<
  string,
  {
    mbs: number[];
    gap: number[];
    web: number[];
    plain: number[];
    ordered: number[];
    mem: number[];
    cores: number[];
  }
>();
const record = (
  name: string,
  r: { mbs: number; gap: number; cores: number },
  web: number,
  plain: number,
  ordered: number,
  mem: number,
) => {
  const e = results.get(name) ??
    {
      mbs: [],
      gap: [],
      web: [],
      plain: [],
      ordered: [],
      mem: [],
      cores: [],
    };
  e.mbs.push(r.mbs);
  e.gap.push(r.gap);
  e.web.push(r.mbs / web);
  e.plain.push(r.mbs / plain);
  e.ordered.push(r.mbs / ordered);
  e.mem.push(r.mbs / mem);
  e.cores.push(r.cores);
  results.set(name, e);
};
const webs: number[] = [];
const idles: number[] = [];
const loads: string[] = [];
const loadavg = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
try {
  console.log(
    `${count} tensors, ${
      (total / MIB).toFixed(0)
    } MiB, ${rounds} rounds, ${navigator.hardwareConcurrency} CPUs; load average ${loadavg()}`,
  );
  for (let r = 0; r < rounds; r++) {
    let roundWeb = 0;
    let webConfig = "";
    for (const [mib, inFlight] of configs) {
      const mbs = await webCrypto(Math.round(mib * MIB), inFlight);
      if (mbs > roundWeb) {
        roundWeb = mbs;
        webConfig = `${mib * 1024} KiB x${inFlight}`;
      }
    }
    webs.push(roundWeb);
    const idle = await idleGap(2000);
    idles.push(idle);
    const mem = await encodeEncrypted();
    // Saves in a rotated order each round, so that no candidate always
    // follows the same one.
    const kinds: SaveKind[] = [
      { kind: "plain" },
      { kind: "ordered" },
      ...positional,
    ];
    const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]!);
    const got = new Map<string, { mbs: number; gap: number; cores: number }>();
    for (const how of order) got.set(label(how), await save(dir, how));
    const plain = got.get("plain save")!;
    const ordered = got.get(label({ kind: "ordered" }))!;
    const baselines = [roundWeb, plain.mbs, ordered.mbs, mem.mbs] as const;
    record("encode+encrypt, no disk", mem, ...baselines);
    for (const how of kinds) {
      record(label(how), got.get(label(how))!, ...baselines);
    }
    loads.push(loadavg());
    console.log(
      `round ${r + 1} (load ${loads.at(-1)}): idle gap ${
        idle.toFixed(1)
      } ms, Web Crypto best ${roundWeb.toFixed(0)} MB/s (${webConfig})`,
    );
    for (const [name, value] of [["encode+encrypt, no disk", mem], ...got]) {
      const v = value as { mbs: number; gap: number; cores: number };
      console.log(
        `  ${(name as string).padEnd(36)} ${
          v.mbs.toFixed(0).padStart(5)
        } MB/s, max gap ${v.gap.toFixed(1).padStart(5)} ms, /web ${
          (v.mbs / roundWeb).toFixed(2)
        }, /plain ${(v.mbs / plain.mbs).toFixed(2)}, /ordered ${
          (v.mbs / ordered.mbs).toFixed(2)
        }, /no-disk ${(v.mbs / mem.mbs).toFixed(2)}, ${
          v.cores.toFixed(2)
        } cores busy`,
      );
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
console.log(
  `\nmedians of ${rounds} rounds (ratios within each round); Web Crypto best ${
    median(webs).toFixed(0)
  } MB/s, idle JS-thread gap ${median(idles).toFixed(1)} ms (max ${
    Math.max(...idles).toFixed(1)
  }):`,
);
for (const [name, e] of results) {
  console.log(
    `  ${name.padEnd(36)} ${median(e.mbs).toFixed(0).padStart(5)} MB/s, /web ${
      median(e.web).toFixed(2)
    }, /plain ${median(e.plain).toFixed(2)}, /ordered ${
      median(e.ordered).toFixed(2)
    }, /no-disk ${median(e.mem).toFixed(2)}, ${
      median(e.cores).toFixed(2)
    } cores busy, max gap median ${median(e.gap).toFixed(1)} ms (max ${
      Math.max(...e.gap).toFixed(1)
    })`,
  );
}
console.log(
  `targets: positional (default) /web >= 0.80, /plain >= 0.90, max gap <= 20 ms`,
);
console.log(`load average per round: ${loads.join(" | ")}`);
