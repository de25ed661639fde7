// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `deno task bench:resume [MIB] [ROUNDS]`: the time to resume from a
 * checkpoint of MIB MiB (default 1024) as a ratio to a raw read of the same
 * file, measured in the same run, medians of interleaved rounds (page cache
 * warm for both: the file was just written or read).
 *
 * The documented path: `resume(directory, { network })` (find, restore
 * straight into the network's arrays and verify the CRC-32 meta.json records
 * from the same reads). Also shown: the older two-step path,
 * findResumeCheckpoint (stat, CRC-32 of every byte, header parse, resume
 * context) + loadParamsInto from an open reader. A third argument `gcm`
 * saves and resumes an AES-256-GCM file instead of a plain one.
 * baselines = the file read into an existing buffer of its size (the main
 * one: the network's arrays exist too); a 4 MiB-chunk loop into one reused
 * buffer; Deno.readFile (a fresh buffer).
 *
 * Then the peak memory of the documented resume: a child process
 * (`_resume_rss_child.ts`) builds the same network, runs `resume()` once and
 * reports its peak RSS (sampled every millisecond) above its RSS before the
 * network existed, minus the network's bytes (the goal: at most
 * 64 MiB above the network). Two children, after the timed rounds.
 *
 * @module
 */

import {
  CheckpointMonitor,
  findResumeCheckpoint,
  loadParamsInto,
  openCheckpoint,
  type Parameter,
  resume as resumeFrom,
  train,
} from "../mod.ts";

const MIB = Number(Deno.args[0] ?? 1024);
const ROUNDS = Number(Deno.args[1] ?? 5);
const GCM = Deno.args[2] === "gcm";
const KEY = new Uint8Array(32).fill(7);
const load = GCM ? { decKey: KEY } : {};
const TENSORS = 16;
const PER = (MIB * 1024 * 1024) / TENSORS / 4;

function network(): Parameter<"Float32">[] {
  return Array.from({ length: TENSORS }, (_, i) => ({
    name: `layer${i}.weight`,
    dtype: "Float32" as const,
    shape: [PER],
    data: new Float32Array(PER),
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const directory = await Deno.makeTempDir({ prefix: "resume_bench_" });
try {
  const source = network();
  // Distinct values, so no page of the file or the network is all zeros or
  // a copy of another (a VM host may merge such pages).
  source.forEach((p, i) => {
    for (let e = 0; e < PER; e++) p.data[e] = i + e / PER;
  });
  const monitor = new CheckpointMonitor({
    directory,
    rank: 0,
    saveNetworkParams: false,
    ...(GCM && { encKey: KEY }),
  });
  const t0 = performance.now();
  await train({
    epochs: 1,
    stepsPerEpoch: 1,
    network: source,
    step: () => {},
    callbacks: [monitor],
  });
  await monitor.close();
  const found0 = await findResumeCheckpoint(directory, load);
  const file = found0!.files[0]!;
  const bytes = (await Deno.stat(file)).size;
  console.log(
    `checkpoint: ${
      (bytes / 2 ** 20).toFixed(0)
    } MiB in ${TENSORS} tensors, saved in ${
      ((performance.now() - t0) / 1000).toFixed(2)
    } s; ${ROUNDS} rounds`,
  );
  source.length = 0; // free the source tensors

  const target = network();
  const readFile: number[] = [],
    readLoop: number[] = [],
    readInto: number[] = [];
  // A raw read into memory that already exists, as the network's does.
  const whole = new Uint8Array(bytes);
  whole.fill(1);
  const find: number[] = [], loads: number[] = [], findFull: number[] = [];
  const oneCall: number[] = [];
  const buffer = new Uint8Array(4 * 2 ** 20);
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now();
    const all = await Deno.readFile(file);
    readFile.push(performance.now() - t);
    if (all.byteLength !== bytes) throw new Error("short read");

    t = performance.now();
    {
      using f = await Deno.open(file);
      while ((await f.read(buffer)) !== null) { /* read */ }
    }
    readLoop.push(performance.now() - t);

    t = performance.now();
    {
      using f = await Deno.open(file);
      for (let at = 0; at < bytes;) {
        const n = await f.read(whole.subarray(at, at + buffer.length));
        if (n === null) break;
        at += n;
      }
    }
    readInto.push(performance.now() - t);

    t = performance.now();
    const found = await findResumeCheckpoint(directory, load);
    const tFind = performance.now();
    {
      await using reader = await openCheckpoint(found!.files[0]!, load);
      await loadParamsInto(target, reader, { strict: true });
    }
    find.push(tFind - t);
    loads.push(performance.now() - tFind);
    if (target[3]!.data[PER - 1] !== Math.fround(3 + (PER - 1) / PER)) {
      throw new Error("wrong values");
    }
    target[3]!.data.fill(0);

    t = performance.now();
    const resumed = await resumeFrom(directory, { network: target, ...load });
    oneCall.push(performance.now() - t);
    if (
      resumed === null ||
      target[3]!.data[PER - 1] !== Math.fround(3 + (PER - 1) / PER)
    ) {
      throw new Error("wrong values after resume()");
    }
    target[3]!.data.fill(0);

    t = performance.now();
    await findResumeCheckpoint(directory, { verify: "full", ...load });
    findFull.push(performance.now() - t);
  }
  const base = median(readFile);
  const resume = median(find) + median(loads);
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const gbs = (x: number) =>
    `${(bytes / 2 ** 30 / (x / 1000)).toFixed(2)} GiB/s`;
  console.log(
    `raw read, Deno.readFile:         ${ms(base)} (${gbs(base)})`,
  );
  console.log(
    `raw read, 4 MiB chunk loop:      ${ms(median(readLoop))} (${
      gbs(median(readLoop))
    })`,
  );
  console.log(
    `raw read into a 1 GiB buffer:    ${ms(median(readInto))} (${
      gbs(median(readInto))
    })`,
  );
  console.log(
    `findResumeCheckpoint (checksum): ${ms(median(find))}`,
  );
  console.log(
    `loadParamsInto from a reader:    ${ms(median(loads))}`,
  );
  const one = median(oneCall);
  console.log(
    `resume() (the documented path):  ${ms(one)} = ${
      (one / median(readInto)).toFixed(2)
    }x the raw read into a buffer, ${(one / base).toFixed(2)}x Deno.readFile${
      GCM ? " (AES-256-GCM file)" : ""
    }`,
  );
  console.log(
    `find + loadParamsInto total:     ${ms(resume)} = ${
      (resume / median(readInto)).toFixed(2)
    }x the raw read into a buffer, ${
      (resume / median(readLoop)).toFixed(2)
    }x the chunk loop, ${(resume / base).toFixed(2)}x Deno.readFile`,
  );
  console.log(
    `findResumeCheckpoint verify:"full" (reads every entry too): ${
      ms(median(findFull))
    } = ${(median(findFull) / base).toFixed(2)}x Deno.readFile`,
  );
  // Peak RSS of resume() alone, in a fresh process (see the module doc).
  const child = new URL("./_resume_rss_child.ts", import.meta.url).pathname;
  for (let r = 0; r < 2; r++) {
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "--quiet",
        `--allow-read=${directory}`,
        child,
        directory,
        String(MIB),
        String(TENSORS),
        ...(GCM ? ["gcm"] : []),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`the RSS child failed (${out.code})`);
    const m = JSON.parse(new TextDecoder().decode(out.stdout));
    console.log(
      `resume() peak RSS, child ${
        r + 1
      }: ${m.peakMiB} MiB = start ${m.startMiB} MiB + network ${m.networkMiB} MiB + ${m.overMiB} MiB (goal: <= 64 MiB above the network); getrusage peak ${m.maxRssMiB} MiB (${m.maxRssBeforeMiB} MiB before resume: inherited from this process)`,
    );
  }
} finally {
  await Deno.remove(directory, { recursive: true });
}
