// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child of `resume_compare.ts`: the peak memory of the documented resume,
 * in a process that does nothing else. It reads its RSS
 * (`Deno.memoryUsage().rss`) before and after building the network (the
 * same Float32 tensors as the parent's, every page written), then runs
 * `resume(directory, { network })` once while sampling the RSS every
 * millisecond (resume awaits every read, so the sampler runs while its
 * buffers are live). The kernel's own peak (`getrusage`'s `ru_maxrss`) is
 * printed too but cannot serve: a spawned process starts with its parent's
 * peak (the parent bench holds over 200 MiB), and `/proc/self/status`'s
 * `VmHWM` needs `--allow-all` in Deno. Prints one JSON line:
 * `{ startMiB, networkMiB, afterNetworkMiB, peakMiB, overMiB, maxRssBeforeMiB,
 * maxRssMiB }`, where
 * `overMiB` = peak − start − the network's bytes: what the resume itself
 * held above the runtime and the network.
 *
 * Usage: deno run --allow-read=<dir> _resume_rss_child.ts
 *   <directory> <MiB> <tensors> [gcm]
 *
 * @module
 */
import { resourceUsage } from "node:process";
import { type Parameter, resume } from "../mod.ts";

const [directory, mibArg, tensorsArg, mode] = Deno.args;
const MIB = Number(mibArg);
const TENSORS = Number(tensorsArg);
const PER = (MIB * 1024 * 1024) / TENSORS / 4;
const KEY = new Uint8Array(32).fill(7);

const MiB = 2 ** 20;
const start = Deno.memoryUsage().rss / MiB;
const network: Parameter<"Float32">[] = Array.from(
  { length: TENSORS },
  (_, i) => {
    const data = new Float32Array(PER);
    data.fill(i + 1); // every page written: the network's own footprint
    return { name: `layer${i}.weight`, dtype: "Float32", shape: [PER], data };
  },
);
const afterNetwork = Deno.memoryUsage().rss / MiB;
const maxRssBefore = resourceUsage().maxRSS / 1024; // kB
let sampled = afterNetwork;
const sampler = setInterval(() => {
  sampled = Math.max(sampled, Deno.memoryUsage().rss / MiB);
}, 1);
const resumed = await resume(directory!, {
  network,
  ...(mode === "gcm" ? { decKey: KEY } : {}),
});
clearInterval(sampler);
sampled = Math.max(sampled, Deno.memoryUsage().rss / MiB);
if (resumed === null) throw new Error("nothing to resume");
if (network[3]!.data[PER - 1] !== Math.fround(3 + (PER - 1) / PER)) {
  throw new Error("wrong values after resume()");
}
const maxRss = resourceUsage().maxRSS / 1024; // kB
const networkMiB = (TENSORS * PER * 4) / 2 ** 20;
console.log(JSON.stringify({
  startMiB: Math.round(start),
  networkMiB,
  afterNetworkMiB: Math.round(afterNetwork),
  peakMiB: Math.round(sampled),
  overMiB: Math.round(sampled - start - networkMiB),
  maxRssBeforeMiB: Math.round(maxRssBefore),
  maxRssMiB: Math.round(maxRss),
}));
