// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * S3Store against a real S3 server: Ceph's RADOS Gateway from
 * `scripts/ceph-dev.sh` in CI, or any S3 endpoint (MinIO, AWS) given by
 *
 *   CKPT_S3_ENDPOINT, CKPT_S3_BUCKET, AWS_ACCESS_KEY_ID,
 *   AWS_SECRET_ACCESS_KEY, AWS_REGION (default us-east-1)
 *
 * (`eval "$(scripts/ceph-dev.sh env)"`). Without them every test here is
 * ignored, so `deno task test` passes on a machine without a server; with
 * `CI` set and no server they fail. Each test works under its own random
 * prefix and removes what it wrote.
 */
import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { crc32 } from "node:zlib";
import {
  S3Error,
  s3OptionsFromEnv,
  S3Store,
  type S3StoreOptions,
} from "../src/store/s3/mod.ts";
import { isNotFound } from "../src/store/store.ts";
import { sha256 } from "./_helpers.ts";
import { removeTree, variable } from "./_s3_helpers.ts";

const MIB = 1024 * 1024;

interface Config {
  readonly options: S3StoreOptions;
  readonly bucket: string;
  readonly endpoint: URL;
}

function loadConfig(): Config | null {
  const endpoint = variable("CKPT_S3_ENDPOINT");
  const bucket = variable("CKPT_S3_BUCKET");
  const env = s3OptionsFromEnv();
  if (
    endpoint === undefined || bucket === undefined ||
    env.credentials === undefined
  ) return null;
  return {
    options: {
      endpoint,
      region: env.region ?? "us-east-1",
      credentials: env.credentials,
    },
    bucket,
    endpoint: new URL(endpoint),
  };
}

const config = loadConfig();

if (config === null && variable("CI") !== undefined) {
  Deno.test("S3Store: a test server is configured in CI", () => {
    throw new Error(
      "CI is set but CKPT_S3_ENDPOINT, CKPT_S3_BUCKET, AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not (or not granted by --allow-env): .ci/run must start scripts/ceph-dev.sh and export its env",
    );
  });
}

interface Ctx {
  readonly config: Config;
  readonly store: S3Store;
  /** `s3://bucket/<random>`: this test's folder. */
  readonly dir: string;
  /** This test's folder as a key prefix (`<random>/`). */
  readonly prefix: string;
}

function s3Test(name: string, fn: (ctx: Ctx) => Promise<void>): void {
  Deno.test({
    name: `S3Store: ${name}`,
    ignore: config === null,
    fn: async () => {
      const store = new S3Store(config!.options);
      const id = `test-${crypto.randomUUID().slice(0, 8)}`;
      const dir = `s3://${config!.bucket}/${id}`;
      try {
        await fn({ config: config!, store, dir, prefix: `${id}/` });
      } finally {
        await removeTree(store, dir);
      }
    },
  });
}

/** Deterministic, non-repeating bytes. */
function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, size >>> 2);
  let x = seed | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  for (let i = words.length * 4; i < size; i++) out[i] = i & 0xff;
  return out;
}

function crcOf(bytes: Uint8Array): string {
  return `crc32:${(crc32(bytes) >>> 0).toString(16).padStart(8, "0")}`;
}

/** Writes `data` in chunks of `chunk` bytes. */
function writeAll(
  store: S3Store,
  path: string,
  data: Uint8Array,
  chunk = 3 * MIB + 17,
  overwrite = true,
) {
  return store.write(path, async (sink) => {
    for (let at = 0; at < data.length; at += chunk) {
      await sink.write(data.subarray(at, Math.min(data.length, at + chunk)));
    }
  }, { overwrite });
}

/** Runs `deno run` on a child module; returns the child. */
function spawn(
  args: string[],
  stdout: "piped" | "null" = "piped",
): Deno.ChildProcess {
  return new Deno.Command("deno", {
    args: ["run", "--no-check", "--quiet", ...args],
    stdout,
    stderr: "piped",
  })
    .spawn();
}

const CHILD = new URL("./_s3_child.ts", import.meta.url).pathname;
const SDK_CHILD = new URL("./_s3_sdk_child.ts", import.meta.url).pathname;
const FAULT_CHILD = new URL("./_s3_fault_child.ts", import.meta.url).pathname;
// What AWS's SDK reads from the environment and the system when it loads.
const SDK_ENV = [
  "AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA",
  "AWS_LAMBDA_BENCHMARK_MODE",
  "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED",
  "AWS_PROFILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_CONFIG_FILE",
  "AWS_EXECUTION_ENV",
  "AWS_LAMBDA_FUNCTION_NAME",
  "_X_AMZN_TRACE_ID",
  "AWS_LAMBDA_MAX_CONCURRENCY",
  "HOME",
  "USERPROFILE",
  "HOMEPATH",
  "HOMEDRIVE",
].join(",");

/** Runs the SDK child to completion; returns its parsed stdout. */
async function sdk(config: Config, ...args: string[]): Promise<unknown> {
  const c = config.options;
  const out = await spawn([
    `--allow-net=${config.endpoint.host}`,
    `--allow-env=${SDK_ENV}`,
    "--allow-sys=osRelease",
    SDK_CHILD,
    JSON.stringify({
      endpoint: c.endpoint,
      region: c.region,
      accessKeyId: c.credentials.accessKeyId,
      secretAccessKey: c.credentials.secretAccessKey,
    }),
    ...args,
  ]).output();
  const err = new TextDecoder().decode(out.stderr);
  equal(out.code, 0, `the SDK child failed: ${err}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Starts our own child (net access to the gateway only). */
function child(config: Config, ...args: string[]): Deno.ChildProcess {
  return spawn([
    `--allow-net=${config.endpoint.host}`,
    CHILD,
    JSON.stringify(config.options),
    ...args,
  ]);
}

/** Reads the child's stdout until `line` appears (or the child ends). */
async function waitForLine(
  proc: Deno.ChildProcess,
  line: string,
): Promise<void> {
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  try {
    while (!seen.split("\n").includes(line)) {
      const { value, done } = await reader.read();
      if (done) {
        const err = await new Response(proc.stderr).text();
        throw new Error(
          `the child ended before printing ${line}: ${seen}${err}`,
        );
      }
      seen += value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function kill(proc: Deno.ChildProcess): Promise<void> {
  proc.kill("SIGKILL");
  await proc.status;
  await proc.stdout.cancel().catch(() => {});
  await proc.stderr.cancel().catch(() => {});
}

s3Test(
  "a 20 MiB file goes up in 8 MiB parts, commits, and reads back byte for byte (our reader and AWS's SDK)",
  async ({ config, store, dir, prefix }) => {
    const data = bytesOf(20 * MIB + 5, 1);
    const path = `${dir}/big.bin`;
    const result = await writeAll(store, path, data);
    deepEqual(result, { bytes: data.length, checksum: crcOf(data) });
    const stat = await store.stat(path);
    equal(stat?.kind, "file");
    equal(stat?.size, data.length);
    // Our reader, in unaligned pieces.
    await using reader = await store.open(path);
    equal(reader.size, data.length);
    const back = new Uint8Array(data.length);
    for (let at = 0; at < data.length; at += 5 * MIB + 3) {
      await reader.readAt(
        at,
        back.subarray(at, Math.min(data.length, at + 5 * MIB + 3)),
      );
    }
    equal(await sha256(back), await sha256(data));
    // An independent client reads the same bytes; the ETag of a multipart
    // object ends in "-<parts>": 20 MiB in 8 MiB parts is 3.
    const got = await sdk(
      config,
      "get",
      config.bucket,
      `${prefix}big.bin`,
    ) as Record<string, unknown>;
    equal(got.size, data.length);
    equal(got.sha256, await sha256(data));
    match(String(got.etag), /-3"?$/);
  },
);

s3Test(
  "signPayload: false sends UNSIGNED-PAYLOAD parts, which the server accepts and stores byte for byte",
  async ({ config, dir }) => {
    const unsigned = new S3Store({ ...config.options, signPayload: false });
    const data = bytesOf(17 * MIB + 3, 5);
    const path = `${dir}/unsigned.bin`;
    const result = await writeAll(unsigned, path, data);
    deepEqual(result, { bytes: data.length, checksum: crcOf(data) });
    equal(
      await sha256(await unsigned.readFile(path, 32 * MIB)),
      await sha256(data),
    );
  },
);

s3Test(
  "ranged reads: any position and length, across part boundaries, past the end refused",
  async ({ store, dir }) => {
    const data = bytesOf(17 * MIB + 11, 2);
    const path = `${dir}/ranges.bin`;
    await writeAll(store, path, data, 8 * MIB);
    await using reader = await store.open(path);
    const cases: [number, number][] = [
      [0, 1],
      [8 * MIB - 3, 7],
      [data.length - 4, 4],
      [5, 16 * MIB],
      [9 * MIB, 0],
    ];
    let x = 12345;
    for (let i = 0; i < 20; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const at = x % data.length;
      cases.push([at, Math.min(data.length - at, (x >> 3) % (3 * MIB))]);
    }
    for (const [at, length] of cases) {
      const into = new Uint8Array(length);
      await reader.readAt(at, into);
      ok(into.every((b, i) => b === data[at + i]), `bytes ${at}+${length}`);
    }
    await rejects(
      reader.readAt(data.length - 2, new Uint8Array(3)),
      RangeError,
    );
    // readFile checks the size with HEAD before reading.
    await rejects(store.readFile(path, data.length - 1), (e: unknown) => {
      ok(e instanceof RangeError);
      match(e.message, /ranges\.bin.*limit/);
      return true;
    });
    equal(
      await sha256(await store.readFile(path, data.length)),
      await sha256(data),
    );
  },
);

s3Test(
  "nothing is visible before the commit; a produce that fails aborts the upload (checked by a child with default rejection handling)",
  async ({ config, store, dir, prefix }) => {
    const path = `${dir}/pending.bin`;
    let seenDuring: unknown = "unset";
    let listedDuring: unknown = "unset";
    const data = bytesOf(19 * MIB, 3);
    await store.write(path, async (sink) => {
      await sink.write(data.subarray(0, 17 * MIB)); // two parts are on their way
      seenDuring = await store.stat(path);
      listedDuring = await store.list(dir);
      await sink.write(data.subarray(17 * MIB));
    });
    equal(seenDuring, null);
    equal(listedDuring, null);
    equal((await store.stat(path))?.size, data.length);

    const out = await child(
      config,
      "fail",
      `${dir}/failed.bin`,
      `s3://no-such-bucket-${prefix.slice(5, 13)}/x.bin`,
    )
      .output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    match(result.produce, /produce failed on purpose/);
    equal(result.visible, "null");
    match(
      result.missingBucket,
      /NoSuchBucket.*s3:\/\/no-such-bucket-[^/]+\/x\.bin|s3:\/\/no-such-bucket-[^/]+\/x\.bin.*NoSuchBucket/,
    );
    // The failed write's upload was aborted: the server lists none.
    deepEqual(await sdk(config, "uploads", config.bucket, prefix), []);
  },
);

s3Test(
  "overwrite: false refuses an existing object (single PUT and multipart) and leaves it unchanged",
  async ({ store, dir }) => {
    const small = `${dir}/small.bin`;
    const large = `${dir}/large.bin`;
    await writeAll(store, small, bytesOf(100, 4));
    await writeAll(store, large, bytesOf(9 * MIB, 5));
    for (const [path, size] of [[small, 50], [large, 9 * MIB + 1]] as const) {
      await rejects(
        writeAll(store, path, bytesOf(size, 6), 3 * MIB, false),
        (e: unknown) => {
          ok(e instanceof Deno.errors.AlreadyExists, String(e));
          match(String(e), /exists/);
          return true;
        },
      );
    }
    equal(
      await sha256(await store.readFile(small, 1000)),
      await sha256(bytesOf(100, 4)),
    );
    equal((await store.stat(large))?.size, 9 * MIB);
    // A new name is created.
    deepEqual(
      await writeAll(store, `${dir}/new.bin`, bytesOf(10, 7), 3, false),
      {
        bytes: 10,
        checksum: crcOf(bytesOf(10, 7)),
      },
    );
  },
);

s3Test(
  "overwrite: false, two multipart writers racing for one new key: on AWS one is refused; where the server ignores If-None-Match on the completion (Ceph RGW 16) both may commit; either way the object is one writer's whole bytes",
  async ({ config, dir }) => {
    const stores = [1, 2].map(() =>
      new S3Store({ ...config.options, partSize: 5 * MIB })
    );
    const bodies = [bytesOf(6 * MIB, 21), bytesOf(6 * MIB, 22)];
    const hashes = await Promise.all(bodies.map((b) => sha256(b)));
    let bothCommitted = 0;
    const rounds = 4;
    for (let round = 0; round < rounds; round++) {
      const path = `${dir}/race-${round}.bin`;
      // Both producers end together, so both HEADs (nothing there yet)
      // tend to come before either commit.
      let go: () => void = () => {};
      const together = new Promise<void>((ok) => go = ok);
      let ready = 0;
      const outcomes = await Promise.allSettled(
        stores.map((store, i) =>
          store.write(path, async (sink) => {
            await sink.write(bodies[i]!.subarray(0, 5 * MIB));
            if (++ready === 2) go();
            await together;
            await sink.write(bodies[i]!.subarray(5 * MIB));
          }, { overwrite: false })
        ),
      );
      for (const o of outcomes) {
        if (o.status === "rejected") {
          ok(o.reason instanceof Deno.errors.AlreadyExists, String(o.reason));
        }
      }
      const won = outcomes.filter((o) => o.status === "fulfilled").length;
      ok(won >= 1, "one writer commits");
      if (won === 2) bothCommitted++;
      const hash = await sha256(await stores[0]!.readFile(path, 7 * MIB));
      ok(hashes.includes(hash), "the object is one writer's whole bytes");
    }
    console.log(
      `  both writers committed in ${bothCommitted} of ${rounds} races (0 on a server that honours If-None-Match on CompleteMultipartUpload)`,
    );
  },
);

s3Test(
  "list, stat and remove: files and folders (common prefixes), missing paths",
  async ({ store, dir }) => {
    for (const name of ["a.bin", "b.bin", "sub/c.bin", "sub/deeper/d.bin"]) {
      await writeAll(store, `${dir}/${name}`, bytesOf(10, 8));
    }
    const sorted = (e: { name: string; kind: string }[] | null) =>
      e?.map((x) => `${x.kind}:${x.name}`).sort();
    deepEqual(sorted(await store.list(dir)), [
      "directory:sub",
      "file:a.bin",
      "file:b.bin",
    ]);
    deepEqual(sorted(await store.list(`${dir}/sub`)), [
      "directory:deeper",
      "file:c.bin",
    ]);
    equal(await store.list(`${dir}/nothing`), null);
    equal((await store.stat(`${dir}/sub`))?.kind, "directory");
    equal((await store.stat(`${dir}/a.bin`))?.kind, "file");
    equal(await store.stat(`${dir}/missing`), null);
    await rejects(store.open(`${dir}/missing`), (e: unknown) => isNotFound(e));
    await rejects(
      store.readFile(`${dir}/missing`, 10),
      (e: unknown) => isNotFound(e),
    );
    equal(await store.remove(`${dir}/a.bin`), true);
    equal(await store.remove(`${dir}/a.bin`), false);
    deepEqual(sorted(await store.list(dir)), ["directory:sub", "file:b.bin"]);
    // An empty folder shows, as after mkdir (a marker object "made/").
    await store.ensureDir(`${dir}/made`);
    equal((await store.stat(`${dir}/made`))?.kind, "directory");
    deepEqual(await store.list(`${dir}/made`), []);
    ok(sorted(await store.list(dir))?.includes("directory:made"));
    store.checkAccess(dir, "write");
  },
);

s3Test(
  "lock: one holder at a time; wait: false gets null, a waiter gets it on release",
  async ({ config, dir }) => {
    const a = new S3Store({ ...config.options, lockPollMs: 50 });
    const b = new S3Store({ ...config.options, lockPollMs: 50 });
    const path = `${dir}/.merge.lock`;
    const held = await a.lock(path, { owner: "a" });
    ok(held !== null);
    equal(await b.lock(path, { wait: false, owner: "b" }), null);
    const order: string[] = [];
    const waiter = b.lock(path, { owner: "b" }).then((lock) => {
      order.push("b took it");
      return lock;
    });
    await new Promise((r) => setTimeout(r, 300));
    order.push("a releases");
    await held.release();
    await held.release(); // twice is harmless
    const second = await waiter;
    deepEqual(order, ["a releases", "b took it"]);
    equal(await a.lock(path, { wait: false }), null);
    await second!.release();
    const third = await a.lock(path, { wait: false });
    ok(third !== null);
    await third.release();
  },
);

s3Test(
  "lock: a holder killed with SIGKILL leaves a claim taken over after its lease, by exactly one of two takers",
  async ({ config, dir }) => {
    const path = `${dir}/.merge.lock`;
    const proc = child(config, "lock", path, "1500");
    await waitForLine(proc, "LOCKED");
    await kill(proc);
    const timing = { lockLeaseMs: 1500, lockClockSkewMs: 200, lockPollMs: 50 };
    const a = new S3Store({ ...config.options, ...timing });
    const b = new S3Store({ ...config.options, ...timing });
    // Within the lease the dead holder's claim still counts.
    equal(await a.lock(path, { wait: false }), null);
    await new Promise((r) => setTimeout(r, 1900));
    const [la, lb] = await Promise.all([
      a.lock(path, { wait: false }),
      b.lock(path, { wait: false }),
    ]);
    equal(
      [la, lb].filter((l) => l !== null).length,
      1,
      "exactly one taker wins the stale claim",
    );
    const winner = (la ?? lb)!;
    // The winner renews: after two more lease periods it still holds it.
    await new Promise((r) => setTimeout(r, 3200));
    equal(await a.lock(path, { wait: false }), null);
    equal(winner.lost, false);
    await winner.release();
  },
);

s3Test(
  "removeIncomplete aborts the upload of a writer killed with SIGKILL, respecting prefixes",
  async ({ config, store, dir, prefix }) => {
    const proc = child(config, "upload", `${dir}/CKP-7.ckpt`);
    await waitForLine(proc, "UPLOADING");
    await kill(proc);
    deepEqual(await sdk(config, "uploads", config.bucket, prefix), [
      `${prefix}CKP-7.ckpt`,
    ]);
    equal(await store.stat(`${dir}/CKP-7.ckpt`), null);
    deepEqual(await store.removeIncomplete(dir, { prefixes: ["other"] }), []);
    deepEqual(await store.removeIncomplete(`${dir}/sub`), []);
    deepEqual(await store.removeIncomplete(dir, { prefixes: ["CKP"] }), [
      `${dir}/CKP-7.ckpt`,
    ]);
    deepEqual(await sdk(config, "uploads", config.bucket, prefix), []);
  },
);

s3Test(
  "wrong credentials and a missing bucket fail with errors naming the object and the S3 code",
  async ({ config, store, dir }) => {
    const wrong = new S3Store({
      ...config.options,
      credentials: {
        accessKeyId: config.options.credentials.accessKeyId,
        secretAccessKey: "wrong",
      },
    });
    await rejects(
      writeAll(wrong, `${dir}/x.bin`, bytesOf(10, 9)),
      (e: unknown) => {
        ok(e instanceof S3Error, String(e));
        equal(e.s3Code, "SignatureDoesNotMatch");
        match(
          e.message,
          new RegExp(
            `${
              dir.replace(/[/.]/g, "\\$&")
            }/x\\.bin.*SignatureDoesNotMatch.*AWS_SECRET_ACCESS_KEY`,
          ),
        );
        return true;
      },
    );
    const unknown = new S3Store({
      ...config.options,
      credentials: { accessKeyId: "NOSUCHKEY", secretAccessKey: "wrong" },
    });
    await rejects(unknown.stat(`${dir}/x.bin`), (e: unknown) => {
      ok(e instanceof S3Error, String(e));
      match(e.message, /x\.bin/);
      equal(e.status, 403);
      return true;
    });
    const missing = `s3://no-such-bucket-${
      crypto.randomUUID().slice(0, 8)
    }/run/x.bin`;
    for (
      const attempt of [
        () => store.open(missing),
        () => store.readFile(missing, 10),
        () => writeAll(store, missing, bytesOf(10, 1)),
      ]
    ) {
      await rejects(attempt(), (e: unknown) => {
        ok(e instanceof S3Error, String(e));
        equal(e.s3Code, "NoSuchBucket");
        match(e.message, /no-such-bucket-.*\/run\/x\.bin/);
        return true;
      });
    }
  },
);

s3Test(
  "retries: a dropped connection mid-part and SlowDown replies are retried; endless throttling fails after maxAttempts, aborted (fault proxy in a child)",
  async ({ config, dir }) => {
    const proc = spawn([
      "--allow-net=127.0.0.1",
      FAULT_CHILD,
      JSON.stringify(config.options),
      dir,
    ]);
    const out = await proc.output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    deepEqual(result.transient, {
      bytes: 12 * MIB,
      hits: [1, 1, 1],
      identical: true,
    });
    match(
      result.throttled,
      /S3Error: Cannot upload part 2 of "s3:\/\/.*\/throttled\.bin": SlowDown \(HTTP 503\) after 3 attempts/,
    );
    equal(result.throttledHits, 3);
    equal(result.throttledVisible, null);
    deepEqual(result.leftUploads, []);
  },
);
