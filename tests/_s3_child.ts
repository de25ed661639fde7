// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child process of the S3 store tests, run with `--allow-net` for the test
 * gateway only. Argument 1 is the store's options as JSON; then a mode:
 *
 * - `lock <path> <leaseMs>`: takes the lock, prints `LOCKED`, waits to be killed.
 * - `upload <path>`: starts a write with one part in flight at a time,
 *   prints `UPLOADING` once the first part is on the server, waits to be killed.
 * - `fail <path> <missing-bucket-path>`: failure paths with Deno's default
 *   rejection handling (an unhandled rejection would end the process with
 *   code 1): a produce that throws after two parts, then a write to a
 *   missing bucket; prints one JSON line with what each rejected with.
 */
import { S3Store, type S3StoreOptions } from "../src/store/s3/mod.ts";

const [config, mode, path, extra] = Deno.args;
const options = JSON.parse(config!) as S3StoreOptions;
const MIB = 1024 * 1024;
const forever = () => new Promise<never>(() => setInterval(() => {}, 60_000));

if (mode === "lock") {
  const store = new S3Store({ ...options, lockLeaseMs: Number(extra) });
  await store.lock(path!, { owner: "killed child" });
  console.log("LOCKED");
  await forever();
} else if (mode === "upload") {
  const store = new S3Store({ ...options, partSize: 5 * MIB, concurrency: 1 });
  await store.write(path!, async (sink) => {
    const part = new Uint8Array(5 * MIB).fill(7);
    await sink.write(part);
    // With one part in flight, this returns only once part 1 is uploaded.
    await sink.write(part);
    console.log("UPLOADING");
    await forever();
  });
} else if (mode === "fail") {
  const store = new S3Store({ ...options, partSize: 5 * MIB });
  const out: Record<string, string> = {};
  try {
    await store.write(path!, async (sink) => {
      await sink.write(new Uint8Array(11 * MIB));
      throw new Error("produce failed on purpose");
    });
    out.produce = "resolved";
  } catch (error) {
    out.produce = String(error);
  }
  out.visible = String(await store.stat(path!));
  try {
    await store.write(extra!, async (sink) => {
      await sink.write(new Uint8Array(11 * MIB));
    });
    out.missingBucket = "resolved";
  } catch (error) {
    out.missingBucket = String(error);
  }
  console.log(JSON.stringify(out));
} else {
  throw new Error(`unknown mode ${mode}`);
}
