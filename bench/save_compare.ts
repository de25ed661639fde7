// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Save/load throughput and peak memory of a 1 GiB Float32 network, as
 * ratios against raw I/O of the same bytes, measured in the same run:
 *
 * - save (`.ckpt`, safetensors; fsync, rename and folder fsync included)
 *   vs one raw write loop of 4 MiB chunks + fsync of the same bytes;
 * - the cost of the file's own check: save and load with it (the default)
 *   vs the same without it (`check: false`);
 * - load (`loadCheckpoint`) vs a raw read of the same file (one buffer of
 *   the file's size filled by a read loop);
 * - load + first use: the load, then one read of a byte in every 4 KiB page
 *   of every loaded tensor (what a caller's first use of the values costs
 *   at least). On VMs whose hypervisor maps a page into the process only
 *   when the process itself first touches it (shadow paging: a kernel
 *   `read()` into fresh memory does not map it for the process), the
 *   first touch of freshly read memory costs ~15 µs per page; a load that
 *   checks its file's CRC pays it inside the load, one that does not
 *   leaves it to the caller. Compare the checked and unchecked loads on
 *   this line;
 * - peak RSS while saving, above the RSS just before the save
 *   (`Deno.memoryUsage().rss` sampled every millisecond during two extra,
 *   untimed saves per format).
 *
 * - save with appending writes cut into parts written side by side at
 *   their offsets (`offset`: parts of at least `--split` MiB, default 4)
 *   vs the same save with its writes in order;
 *
 * Run: `npx --yes deno@2.9.6 task bench:save [--scale=1] [--reps=5] [--split=4]`
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { loadCheckpoint, saveCheckpoint, type Tensor } from "../mod.ts";
import { benchNetwork, rawRead, rawWrite } from "./_network.ts";
import { _positional } from "../src/core/_positional.ts";

const args = Object.fromEntries(
  Deno.args.map((a) => a.replace(/^--/, "").split("=") as [string, string]),
);
const scale = Number(args.scale ?? 1);
const reps = Number(args.reps ?? 5);
const MB = 1e6;

/** Samples the process RSS every millisecond until stopped; returns the peak. */
function watchRss(): { stop(): number } {
  let peak = Deno.memoryUsage().rss;
  const id = setInterval(() => {
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }, 1);
  return {
    stop() {
      clearInterval(id);
      return Math.max(peak, Deno.memoryUsage().rss);
    },
  };
}

/** Reads one byte of every 4 KiB page of every loaded tensor. */
function firstUse(loaded: Map<string, Tensor | string>): number {
  let sum = 0;
  for (const v of loaded.values()) {
    if (typeof v === "string") continue;
    const b = new Uint8Array(
      v.data.buffer,
      v.data.byteOffset,
      v.data.byteLength,
    );
    for (let i = 0; i < b.length; i += 4096) sum += b[i]!;
  }
  return sum;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const { network, bytes } = benchNetwork(scale);
const dir = await Deno.makeTempDir({ prefix: "ckpt_bench_" });
const FORMATS = ["ckpt", "safetensors"] as const;
/**
 * Each format with and without the file's own check, and with appending
 * writes of 2 × `SPLIT` bytes and more cut into parts written side by side
 * at their offsets (`_positional.split`; "offset").
 */
const KINDS = [
  ...FORMATS,
  ...FORMATS.map((f) => `${f} nocheck` as const),
  ...FORMATS.map((f) => `${f} offset` as const),
] as const;
const SPLIT = Number(args.split ?? 4) * 2 ** 20;
const DEFAULT_SPLIT = _positional.split;
const formatOf = (kind: string) =>
  kind.split(" ")[0] as (typeof FORMATS)[number];
const times: Record<string, number[]> = {};
const peaks: Record<string, number[]> = { ckpt: [], safetensors: [] };
const cpu: Record<string, number[]> = {};
/** Starts a wall-clock and CPU (all threads: user + system) timer. */
function timer(): (k: string) => void {
  const t = performance.now();
  const c = cpuUsage();
  return (k: string) => {
    (times[k] ??= []).push(performance.now() - t);
    const d = cpuUsage(c);
    (cpu[k] ??= []).push((d.user + d.system) / 1000);
  };
}
const fileBytes: Record<string, number> = {};
const rotate = <T>(xs: readonly T[], r: number): T[] =>
  xs.map((_, i) => xs[(i + r) % xs.length]!);
console.log(
  `network: ${network.size} Float32 tensors, ${
    (bytes.length / 2 ** 20).toFixed(0)
  } MiB; ${reps} rounds (order rotated each round); files in ${dir}`,
);
try {
  for (let r = 0; r < reps; r++) {
    // Writes: raw loop + fsync, then the two formats, in a rotating order.
    for (const kind of rotate(["raw", ...KINDS] as const, r)) {
      const path = `${dir}/m.${kind.replace(" ", ".")}`;
      await Deno.remove(path).catch(() => {});
      if (kind === "raw") {
        const done = timer();
        await rawWrite(path, bytes);
        done("write raw");
        continue;
      }
      // "offset": parts written side by side; every other kind in order.
      _positional.split = kind.endsWith("offset") ? SPLIT : 0;
      const done = timer();
      const saved = await saveCheckpoint(path, network, {
        format: formatOf(kind),
        check: !kind.endsWith("nocheck"),
      }).finally(() => _positional.split = DEFAULT_SPLIT);
      done(`save ${kind}`);
      fileBytes[kind] = saved.bytes;
    }
    // Reads of each (page-cached) file: raw read vs loadCheckpoint.
    for (const format of rotate(KINDS, r)) {
      const path = `${dir}/m.${format.replace(" ", ".")}`;
      for (const how of rotate(["raw", "load"] as const, r)) {
        const done = timer();
        if (how === "raw") {
          const raw = await rawRead(path);
          done(`read raw ${format}`);
          if (raw.length !== fileBytes[format]) {
            throw new Error("size mismatch");
          }
        } else {
          const loaded = await loadCheckpoint(path);
          done(`load ${format}`);
          if (loaded.size !== network.size) throw new Error("count mismatch");
          const used = timer();
          firstUse(loaded);
          used(`use ${format}`);
          (times[`load+use ${format}`] ??= []).push(
            times[`load ${format}`]!.at(-1)! + times[`use ${format}`]!.at(-1)!,
          );
          (cpu[`load+use ${format}`] ??= []).push(
            cpu[`load ${format}`]!.at(-1)! + cpu[`use ${format}`]!.at(-1)!,
          );
        }
      }
    }
    console.log(
      `round ${r + 1}: ` +
        Object.entries(times).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(0)}`)
          .join(", ") +
        " (ms)",
    );
  }
  // Peak memory, in separate untimed saves (the sampler costs CPU).
  for (let r = 0; r < 2; r++) {
    for (const format of FORMATS) {
      const path = `${dir}/mem.${format}`;
      await Deno.remove(path).catch(() => {});
      const base = Deno.memoryUsage().rss;
      const watch = watchRss();
      await saveCheckpoint(path, network, { format });
      peaks[format]!.push(watch.stop() - base);
      await Deno.remove(path);
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

const mbps = (ms: number) => (bytes.length / MB / (ms / 1000)).toFixed(0);
const min = (k: string) => Math.min(...times[k]!);
/** Median over rounds of baseline time / our time (> 1: ours is faster). */
const ratio = (base: string, ours: string) =>
  median(times[base]!.map((b, i) => b / times[ours]![i]!));
const line = (label: string, k: string, base?: string) =>
  `  ${label.padEnd(24)} best ${mbps(min(k)).padStart(5)} MB/s, median ${
    mbps(median(times[k]!)).padStart(5)
  } MB/s, CPU ${median(cpu[k]!).toFixed(0).padStart(5)} ms` +
  (base === undefined
    ? ""
    : `; vs ${base}: best/best ${
      (min(base) / min(k)).toFixed(2)
    }x, median of rounds ${ratio(base, k).toFixed(2)}x (rounds ${
      times[base]!.map((b, i) => (b / times[k]![i]!).toFixed(2)).join(" ")
    })`);
console.log(
  "\nthroughput of the tensor bytes (MB/s = 10^6 B/s); a ratio > 1 means faster than the baseline",
);
console.log(line("raw write loop + fsync", "write raw"));
for (const f of FORMATS) {
  console.log(line(`save ${f}`, `save ${f}`, "write raw"));
  console.log(
    `  ${"".padEnd(24)} peak RSS above the pre-save RSS: median +${
      (median(peaks[f]!) / 2 ** 20).toFixed(1)
    } MiB, max +${(Math.max(...peaks[f]!) / 2 ** 20).toFixed(1)} MiB`,
  );
}
for (const f of FORMATS) {
  console.log(line(`save ${f} offset`, `save ${f} offset`, "write raw"));
  console.log(line(`save ${f} offset`, `save ${f} offset`, `save ${f}`));
}
for (const f of FORMATS) {
  console.log(line(`save ${f} nocheck`, `save ${f} nocheck`, "write raw"));
  console.log(line(`save ${f} (check)`, `save ${f}`, `save ${f} nocheck`));
}
for (const f of KINDS) {
  console.log(line(`raw read of the ${f}`, `read raw ${f}`));
  console.log(line(`load ${f}`, `load ${f}`, `read raw ${f}`));
}
for (const f of FORMATS) {
  console.log(line(`load ${f} (check)`, `load ${f}`, `load ${f} nocheck`));
  console.log(
    line(`load+use ${f} (check)`, `load+use ${f}`, `load+use ${f} nocheck`),
  );
}
console.log(
  `  file sizes: ckpt ${fileBytes.ckpt} B, safetensors ${fileBytes.safetensors} B` +
    ` (tensor bytes ${bytes.length})`,
);
