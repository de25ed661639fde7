// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `deno task bench:s3 [GiB] [rounds]` — object storage against AWS's own
 * SDK, on the same server and the same bytes, in one run:
 *
 * - save: 1 GiB (the benchmark network: 4 large tensors and 3072 small
 *   ones, fed tensor by tensor) through `S3Store.write` (multipart, 8 MiB
 *   parts, 4 in flight), once with every part signed (`signPayload: true`,
 *   what "auto" does over http) and once `UNSIGNED-PAYLOAD`
 *   (`signPayload: false`, what "auto" does over https), vs `@aws-sdk/lib-storage`'s `Upload` of the same
 *   contiguous bytes (8 MiB parts, queue of 4);
 * - load: the object read through `S3Store.open` with sequential 16 MiB
 *   `readAt`s vs the SDK's `GetObject` with 8 MiB ranges, 4 in flight.
 *
 * Also the CPU time this process spent per candidate (user + system, from
 * `process.cpuUsage()`), which the load of other work on the machine
 * disturbs less than wall time.
 *
 * Rounds interleave the candidates so that load from other work on the
 * machine hits both alike; every read is checked against the written bytes
 * (CRC-32). Needs a server: `eval "$(scripts/ceph-dev.sh env)"` (memstore
 * holds the objects in RAM: 2 objects of 1 GiB live at once). Network
 * access: `deno task bench:s3` grants `--allow-net=127.0.0.1,localhost`
 * (any port, so `CKPT_S3_ENDPOINT` picks it); for another endpoint run the
 * same command line with that host in `--allow-net`.
 */
import { cpuUsage } from "node:process";
import { crc32 } from "node:zlib";
import { GetObjectCommand, S3Client } from "npm:@aws-sdk/client-s3@3.1178.0";
import { Upload } from "npm:@aws-sdk/lib-storage@3.1178.0";
import { s3OptionsFromEnv, S3Store } from "../src/store/s3/mod.ts";
import { benchNetwork } from "./_network.ts";

const MIB = 1024 * 1024;
const PART = 8 * MIB;
const CONCURRENCY = 4;
const scale = Number(Deno.args[0] ?? 1);
const rounds = Number(Deno.args[1] ?? 2);

const endpoint = Deno.env.get("CKPT_S3_ENDPOINT");
const bucket = Deno.env.get("CKPT_S3_BUCKET");
const env = s3OptionsFromEnv();
if (
  endpoint === undefined || bucket === undefined ||
  env.credentials === undefined
) {
  console.error(
    'bench:s3 needs a server: run scripts/ceph-dev.sh start, then eval "$(scripts/ceph-dev.sh env)"',
  );
  Deno.exit(2);
}
const region = env.region ?? "us-east-1";
const credentials = env.credentials;

const storeOf = (signPayload: boolean) =>
  new S3Store({
    endpoint,
    region,
    credentials,
    partSize: PART,
    concurrency: CONCURRENCY,
    signPayload,
  });
/** Every body signed (SHA-256 of each part): the default over http. */
const store = storeOf(true);
/** `UNSIGNED-PAYLOAD` parts (`signPayload: false`; "auto" over https). */
const unsigned = storeOf(false);
const sdk = new S3Client({
  endpoint,
  region,
  credentials: {
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
  },
  forcePathStyle: true,
  // Ceph RGW 16 does not know the SDK's default CRC32 trailers.
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});

const { network, bytes } = benchNetwork(scale);
const chunks = [...network.values()].map((t) =>
  new Uint8Array(
    t.data.buffer as ArrayBuffer,
    t.data.byteOffset,
    t.data.byteLength,
  )
);
const total = bytes.byteLength;
const expected = crc32(bytes) >>> 0;
const MBs = (ms: number) => total / 1e6 / (ms / 1e3);
const run = `bench-s3-${crypto.randomUUID().slice(0, 8)}`;

async function ours(key: string, via = store): Promise<number> {
  const t0 = performance.now();
  const r = await via.write(`s3://${bucket}/${key}`, async (sink) => {
    for (const c of chunks) await sink.write(c);
  });
  const ms = performance.now() - t0;
  if (r.bytes !== total) throw new Error(`wrote ${r.bytes} of ${total}`);
  return ms;
}

async function theirs(key: string): Promise<number> {
  const t0 = performance.now();
  await new Upload({
    client: sdk,
    params: { Bucket: bucket, Key: key, Body: bytes },
    partSize: PART,
    queueSize: CONCURRENCY,
  }).done();
  return performance.now() - t0;
}

// Touched once here, so that the first load measured does not pay the
// page faults of a fresh 1 GiB buffer (measured: ×0.27 in round 1 vs ×0.82
// in round 2 without this, with 4× the CPU time).
const into = new Uint8Array(total).fill(1);

function check(what: string): void {
  const got = crc32(into) >>> 0;
  if (got !== expected) throw new Error(`${what}: CRC-32 ${got} ≠ ${expected}`);
  into.fill(0, 0, Math.min(total, 4096));
}

async function ourRead(key: string): Promise<number> {
  const t0 = performance.now();
  await using reader = await store.open(`s3://${bucket}/${key}`);
  for (let at = 0; at < total; at += 16 * MIB) {
    await reader.readAt(at, into.subarray(at, Math.min(total, at + 16 * MIB)));
  }
  const ms = performance.now() - t0;
  check("our read");
  return ms;
}

async function theirRead(key: string): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const at = next;
      next += PART;
      const end = Math.min(total, at + PART) - 1;
      const reply = await sdk.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: `bytes=${at}-${end}`,
        }),
      );
      into.set(await reply.Body!.transformToByteArray(), at);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = performance.now() - t0;
  check("SDK read");
  return ms;
}

console.log(
  `bench:s3 — ${
    (total / MIB).toFixed(0)
  } MiB to ${endpoint} bucket ${bucket}, ${
    PART / MIB
  } MiB parts, ${CONCURRENCY} in flight, ${rounds} round(s)`,
);
const NAMES = [
  "save ours",
  "save ours unsigned",
  "save SDK",
  "load ours",
  "load SDK",
];
const rows: Record<string, number[]> = Object.fromEntries(
  NAMES.map((n) => [n, []]),
);
const cpu: Record<string, number[]> = Object.fromEntries(
  NAMES.map((n) => [n, []]),
);

/** Runs one candidate, recording its wall time (returned by `fn`) and CPU time. */
async function measure(name: string, fn: () => Promise<number>): Promise<void> {
  const before = cpuUsage();
  const ms = await fn();
  const used = cpuUsage(before);
  rows[name]!.push(ms);
  cpu[name]!.push((used.user + used.system) / 1000);
}
for (let round = 1; round <= rounds; round++) {
  const a = `${run}/ours-${round}.bin`;
  const b = `${run}/sdk-${round}.bin`;
  const u = `${run}/unsigned-${round}.bin`;
  // Alternate who goes first.
  if (round % 2 === 1) {
    await measure("save ours", () => ours(a));
    await measure("save SDK", () => theirs(b));
    await measure("save ours unsigned", () => ours(u, unsigned));
    await store.remove(`s3://${bucket}/${u}`);
    await measure("load ours", () => ourRead(a));
    await measure("load SDK", () => theirRead(b));
  } else {
    await measure("save ours unsigned", () => ours(u, unsigned));
    await store.remove(`s3://${bucket}/${u}`);
    await measure("save SDK", () => theirs(b));
    await measure("save ours", () => ours(a));
    await measure("load SDK", () => theirRead(b));
    await measure("load ours", () => ourRead(a));
  }
  await store.remove(`s3://${bucket}/${a}`);
  await store.remove(`s3://${bucket}/${b}`);
  const i = round - 1;
  console.log(
    `round ${round}: save ours ${
      MBs(rows["save ours"]![i]!).toFixed(0)
    } MB/s, SDK ${MBs(rows["save SDK"]![i]!).toFixed(0)} MB/s (×${
      (rows["save SDK"]![i]! / rows["save ours"]![i]!).toFixed(2)
    }), unsigned ${MBs(rows["save ours unsigned"]![i]!).toFixed(0)} MB/s (×${
      (rows["save SDK"]![i]! / rows["save ours unsigned"]![i]!).toFixed(2)
    }); load ours ${MBs(rows["load ours"]![i]!).toFixed(0)} MB/s, SDK ${
      MBs(rows["load SDK"]![i]!).toFixed(0)
    } MB/s (×${
      (rows["load SDK"]![i]! / rows["load ours"]![i]!).toFixed(2)
    }); CPU ms ours/SDK save ${cpu["save ours"]![i]!.toFixed(0)}/${
      cpu["save SDK"]![i]!.toFixed(0)
    }, unsigned ${cpu["save ours unsigned"]![i]!.toFixed(0)}, load ${
      cpu["load ours"]![i]!.toFixed(0)
    }/${cpu["load SDK"]![i]!.toFixed(0)}; load average ${
      Deno.loadavg().map((x) => x.toFixed(2)).join(" ")
    }`,
  );
}
const best = (k: string) => Math.min(...rows[k]!);
console.log(
  `best: save ours ${MBs(best("save ours")).toFixed(0)} MB/s vs SDK ${
    MBs(best("save SDK")).toFixed(0)
  } MB/s = ×${(best("save SDK") / best("save ours")).toFixed(2)}, unsigned ${
    MBs(best("save ours unsigned")).toFixed(0)
  } MB/s = ×${
    (best("save SDK") / best("save ours unsigned")).toFixed(2)
  }; load ours ${MBs(best("load ours")).toFixed(0)} MB/s vs SDK ${
    MBs(best("load SDK")).toFixed(0)
  } MB/s = ×${
    (best("load SDK") / best("load ours")).toFixed(2)
  } (×>1: ours faster)`,
);
sdk.destroy();
