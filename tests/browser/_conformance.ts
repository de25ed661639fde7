// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The store conformance check that runs inside Chromium (on a page's main
 * thread and in a dedicated Worker) against the built `ckpt.js`. It uses the
 * real OPFS: the test only collects the results.
 *
 * @module
 */

import type * as Lib from "../../browser.ts";
import type { CheckpointStore } from "../../src/store/store.ts";
import type { ByteSink } from "../../src/core/io.ts";
import type {
  DirectoryHandle,
  FileHandle,
  StorageManagerLike,
} from "../../src/store/opfs/_opfs_types.ts";

/** The browser build's exports. */
export type CkptLib = typeof Lib;

/** One check's outcome. */
export interface CheckResult {
  /** `<context>: <check>`. */
  readonly name: string;
  /** Whether it passed. */
  readonly ok: boolean;
  /** The error, when it failed. */
  readonly detail?: string;
}

/** Where one conformance run works and what it probes. */
export interface ConformanceOptions {
  /** Names the context in results (`"main"`, `"worker:sync"`, …). */
  readonly label: string;
  /** Options for the store under test. */
  readonly store: Lib.OpfsStoreOptions;
  /** Whether writes here must go through a sync access handle. */
  readonly expectSyncHandle: boolean;
  /** A lock path another context holds for the whole run, if any. */
  readonly heldElsewhere?: string;
}

/** Loads the browser build served next to the test page. */
export function loadLib(): Promise<CkptLib> {
  const url = new URL("/ckpt.js", location.href).href;
  return import(url) as Promise<CkptLib>;
}

// --- helpers ---------------------------------------------------------------

/** A byte-at-a-time CRC-32 table, built bit by bit. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** A reference CRC-32, a byte at a time (not the store's slice-by-8). */
export function referenceCrc32(bytes: Uint8Array): string {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return `crc32:${((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0")}`;
}

const patterns = new Map<string, Uint8Array>();

/**
 * Deterministic bytes (xorshift32) so a reloaded page can rebuild them;
 * made once per size and seed (do not modify them).
 */
export function patternBytes(size: number, seed: number): Uint8Array {
  const key = `${size}:${seed}`;
  const known = patterns.get(key);
  if (known !== undefined) return known;
  const out = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  patterns.set(key, out);
  return out;
}

function fail(message: string): never {
  throw new Error(message);
}

function same(a: Uint8Array, b: Uint8Array, what: string): void {
  if (a.byteLength !== b.byteLength) {
    fail(`${what}: ${a.byteLength} bytes, expected ${b.byteLength}`);
  }
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) fail(`${what}: bytes differ at ${i}`);
  }
}

function equal(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: got ${a}, expected ${e}`);
}

async function rejects(
  p: Promise<unknown>,
  test: (e: unknown) => boolean,
  what: string,
): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    if (!test(error)) fail(`${what}: wrong error ${String(error)}`);
    return error;
  }
  return fail(`${what}: did not reject`);
}

const code = (e: unknown): unknown => (e as { code?: unknown }).code;

/** Writes `bytes` in uneven chunks through a buffer reused between chunks. */
function chunked(bytes: Uint8Array): (sink: ByteSink) => Promise<void> {
  return async (sink) => {
    const reused = new Uint8Array(300_000);
    let at = 0;
    let step = 1;
    while (at < bytes.byteLength) {
      const n = Math.min(step, reused.byteLength, bytes.byteLength - at);
      reused.set(bytes.subarray(at, at + n));
      await sink.write(reused.subarray(0, n));
      reused.fill(0xee); // The store must not keep a view of it.
      at += n;
      step = step * 7 + 13;
    }
  };
}

async function rawDir(path: string[]): Promise<DirectoryHandle> {
  const storage = (navigator as unknown as { storage: StorageManagerLike })
    .storage;
  let dir = await storage.getDirectory!();
  for (const s of path) dir = await dir.getDirectoryHandle(s);
  return dir;
}

async function names(store: CheckpointStore, dir: string): Promise<string[]> {
  return ((await store.list(dir)) ?? []).map((e) => e.name).sort();
}

// --- the checks ------------------------------------------------------------

/**
 * Runs every check against a fresh folder `opfs:/conf/<label>`.
 *
 * @param lib The browser build.
 * @param options Where and how.
 * @returns One result per check.
 */
export async function runConformance(
  lib: CkptLib,
  options: ConformanceOptions,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const store = new lib.OpfsStore(options.store);
  const folder = options.label.replace(/[^a-z0-9]+/gi, "_");
  const base = `opfs:/conf/${folder}`;
  const check = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
      results.push({ name: `${options.label}: ${name}`, ok: true });
    } catch (error) {
      const detail = error instanceof Error
        ? `${error.name}: ${error.message}`
        : String(error);
      results.push({ name: `${options.label}: ${name}`, ok: false, detail });
    }
  };
  const data = patternBytes(1024 * 1024 + 17, 0x5eed);
  const file = `${base}/model.ckpt`;

  await check(
    "ensureDir makes nested folders; stat and list see them",
    async () => {
      await (await rawDir([])).removeEntry("conf", { recursive: true })
        .catch(() => {});
      equal(await store.list(base), null, "list before ensureDir");
      equal(await store.stat(base), null, "stat before ensureDir");
      await store.ensureDir(`${base}/sub/deeper`);
      await store.ensureDir(`${base}/sub/deeper`); // again: a no-op
      equal((await store.stat(base))?.kind, "directory", "stat kind");
      equal(
        await store.list(base),
        [{ name: "sub", kind: "directory" }],
        "list",
      );
    },
  );

  await check(
    "write commits the bytes; checksum and read-back agree",
    async () => {
      const result = await store.write(file, chunked(data));
      equal(
        result,
        { bytes: data.byteLength, checksum: referenceCrc32(data) },
        "result",
      );
      same(await store.readFile(file, data.byteLength), data, "readFile");
      const st = await store.stat(file);
      equal([st?.kind, st?.size, st?.isSymlink], [
        "file",
        data.byteLength,
        false,
      ], "stat");
      if (typeof st?.mtimeMs !== "number") fail("stat: no mtime");
      equal(
        await names(store, base),
        ["model.ckpt", "sub"],
        "no temporary file left",
      );
    },
  );

  await check(
    "checksum over small and big chunks (the helper Worker's part)",
    async () => {
      const mixed = patternBytes(3 * 1024 * 1024 + 1000, 0xc0ffee);
      const cuts = [
        0,
        100,
        100 + 1024 * 1024,
        105 + 1024 * 1024,
        mixed.byteLength - 7,
        mixed.byteLength,
      ];
      const r = await store.write(`${base}/mixed.bin`, async (sink) => {
        for (let i = 1; i < cuts.length; i++) {
          await sink.write(mixed.subarray(cuts[i - 1]!, cuts[i]!));
        }
      });
      equal(
        r,
        { bytes: mixed.byteLength, checksum: referenceCrc32(mixed) },
        "result",
      );
      same(
        await store.readFile(`${base}/mixed.bin`, 1 << 30),
        mixed,
        "read back",
      );
      equal(await store.remove(`${base}/mixed.bin`), true, "remove");
    },
  );

  await check("open reads ranges; bounds and close are enforced", async () => {
    const reader = await store.open(file);
    equal(reader.size, data.byteLength, "size");
    for (
      const [at, n] of [[0, 10], [700_001, 65_536], [data.byteLength - 5, 5]]
    ) {
      const into = new Uint8Array(n!);
      await reader.readAt(at!, into);
      same(into, data.subarray(at!, at! + n!), `readAt(${at}, ${n})`);
    }
    await rejects(
      reader.readAt(data.byteLength - 2, new Uint8Array(3)),
      (e) => e instanceof RangeError,
      "read past end",
    );
    const pending = reader.readAt(0, new Uint8Array(1024));
    await reader.close();
    await pending; // a read in flight finishes
    await rejects(
      reader.readAt(0, new Uint8Array(1)),
      (e) => e instanceof TypeError,
      "read after close",
    );
    await rejects(
      store.readFile(file, 100),
      (e) => e instanceof RangeError && String(e).includes(file),
      "readFile over maxBytes",
    );
  });

  await check(
    "nothing is visible before commit; the old file stays readable",
    async () => {
      const v2 = patternBytes(768 * 1024, 0xbeef);
      let release = (): void => {};
      const gate = new Promise<void>((r) => release = r);
      let midway = (): void => {};
      const reached = new Promise<void>((r) => midway = r);
      const writing = store.write(file, async (sink) => {
        await sink.write(v2.subarray(0, 1024 * 1024));
        midway();
        await gate;
        await sink.write(v2.subarray(1024 * 1024));
      });
      let probeError: unknown = null;
      try {
        await Promise.race([reached, writing]);
        same(
          await store.readFile(file, 1 << 30),
          data,
          "old content during write",
        );
        // (createWritable also makes Chromium's own `<name>.crswap`.)
        const listed = (await names(store, base)).filter((n) =>
          !n.endsWith(".crswap")
        );
        equal(
          listed.filter((n) => n.includes("model.ckpt")).length,
          2,
          "final + one temporary name",
        );
        if (options.expectSyncHandle) {
          // A sync access handle is open on the temporary file: a second
          // one must be refused, which proves the fast path is in use.
          const temp = listed.find((n) => n.endsWith(".tmp"))!;
          const dir = await rawDir(["conf", folder]);
          const handle = await dir.getFileHandle(temp) as FileHandle;
          await rejects(
            handle.createSyncAccessHandle!(),
            (e) => (e as Error).name === "NoModificationAllowedError",
            "second sync handle",
          );
        }
      } catch (error) {
        probeError = error;
      } finally {
        release();
      }
      const result = await writing;
      if (probeError !== null) throw probeError;
      equal(result.checksum, referenceCrc32(v2), "checksum of v2");
      same(await store.readFile(file, 1 << 30), v2, "new content after commit");
      await store.write(file, (sink) => sink.write(data));
    },
  );

  await check(
    "a failed produce leaves nothing and keeps the old file",
    async () => {
      const boom = new Error("produce failed on purpose");
      const err = await rejects(
        store.write(file, async (sink) => {
          await sink.write(new Uint8Array(1024 * 1024).fill(7));
          throw boom;
        }),
        (e) => e === boom,
        "write with a failing produce",
      );
      equal(err === boom, true, "the producer's own error");
      await rejects(
        store.write(`${base}/fresh.bin`, () => Promise.reject(boom)),
        (e) => e === boom,
        "first write failing",
      );
      same(await store.readFile(file, 1 << 30), data, "old content");
      equal(await names(store, base), ["model.ckpt", "sub"], "listing");
      equal(await store.stat(`${base}/fresh.bin`), null, "no new file");
    },
  );

  await check("overwrite: false refuses an existing file", async () => {
    const e = await rejects(
      store.write(file, (s) => s.write(new Uint8Array(1)), {
        overwrite: false,
      }),
      (e) => code(e) === "EEXIST",
      "overwrite false",
    );
    if (!String(e).includes(file)) fail("error does not name the file");
    same(await store.readFile(file, 1 << 30), data, "content kept");
    await store.write(
      `${base}/new.bin`,
      (s) => s.write(new Uint8Array([1, 2])),
      { overwrite: false },
    );
    equal(
      await store.readFile(`${base}/new.bin`, 10),
      new Uint8Array([1, 2]),
      "new file",
    );
  });

  await check("remove, missing paths, folders", async () => {
    equal(await store.remove(`${base}/new.bin`), true, "remove");
    equal(await store.remove(`${base}/new.bin`), false, "remove again");
    equal(
      await store.remove(`${base}/nowhere/x`),
      false,
      "remove under a missing folder",
    );
    await rejects(
      store.remove(`${base}/sub`),
      (e) => code(e) === "EISDIR",
      "remove a folder",
    );
    equal(await store.stat(`${base}/missing`), null, "stat missing");
    equal(await store.list(`${base}/missing`), null, "list missing");
    const e = await rejects(
      store.open(`${base}/missing`),
      lib.isNotFound,
      "open missing",
    );
    if (!String(e).includes(`${base}/missing`)) {
      fail("ENOENT does not name the path");
    }
    await rejects(
      store.open(`${base}/sub`),
      (e) => (e as Error).name === "CorruptCheckpointError",
      "open a folder",
    );
    await rejects(
      store.write(`${base}/nowhere/x`, (s) => s.write(new Uint8Array(1))),
      lib.isNotFound,
      "write into a missing folder",
    );
    await rejects(
      store.stat("/not/opfs"),
      (e) => e instanceof TypeError,
      "a non-opfs path",
    );
    await rejects(
      store.stat("opfs:/a/../b"),
      (e) => e instanceof RangeError,
      "a .. segment",
    );
  });

  await check("lock: exclusive, wait: false, release order", async () => {
    const path = `${base}/monitor.lock`;
    const first = await store.lock(path);
    if (first === null) fail("first lock refused");
    equal(
      await store.lock(path, { wait: false }),
      null,
      "second taker with wait: false",
    );
    const order: string[] = [];
    const waiting = store.lock(path).then((l) => {
      order.push("second");
      return l;
    });
    await new Promise((r) => setTimeout(r, 50));
    order.push("release");
    await first.release();
    await first.release(); // harmless
    const second = await waiting;
    equal(order, ["release", "second"], "the waiter got it after the release");
    await second!.release();
    const third = await store.lock(path, { wait: false });
    if (third === null) fail("free lock refused");
    await third[Symbol.asyncDispose]();
    if (options.heldElsewhere !== undefined) {
      equal(
        await store.lock(options.heldElsewhere, { wait: false }),
        null,
        "a lock the other context holds",
      );
    }
  });

  await check("removeIncomplete removes crashed writes only", async () => {
    const dir = await rawDir(["conf", folder]);
    for (
      const n of [
        ".model.ckpt.0123456789ab.tmp",
        ".meta.json.aaaaaaaaaaaa.tmp",
        "notes.tmp",
      ]
    ) {
      const w = await (await dir.getFileHandle(n, { create: true }))
        .createWritable();
      await w.write(new Uint8Array(10));
      await w.close();
    }
    let release = (): void => {};
    const gate = new Promise<void>((r) => release = r);
    let started = (): void => {};
    const begun = new Promise<void>((r) => started = r);
    const live = store.write(`${base}/live.ckpt`, async (sink) => {
      await sink.write(new Uint8Array(100));
      started();
      await gate;
    });
    try {
      await begun;
      equal(await store.removeIncomplete(base, { prefixes: ["meta.json"] }), [
        `${base}/.meta.json.aaaaaaaaaaaa.tmp`,
      ], "with prefixes");
      equal(await store.removeIncomplete(base), [
        `${base}/.model.ckpt.0123456789ab.tmp`,
      ], "the rest, not the live write");
    } finally {
      release();
    }
    equal((await live).bytes, 100, "the live write committed");
    equal(await names(store, base), [
      "live.ckpt",
      "model.ckpt",
      "notes.tmp",
      "sub",
    ], "left");
    equal(
      await store.removeIncomplete(`${base}/missing`),
      [],
      "missing folder",
    );
  });

  await check("a persistent copy for the reload check", async () => {
    await store.ensureDir("opfs:/persist");
    const bytes = patternBytes(1024 * 1024 + 3, seedOf(options.label));
    const r = await store.write(
      `opfs:/persist/${folder}.bin`,
      (s) => s.write(bytes),
    );
    equal(r.checksum, referenceCrc32(bytes), "checksum");
  });

  return results;
}

/** The seed of a context's persistent file. */
function seedOf(label: string): number {
  let h = 7;
  for (const ch of label) h = (h * 31 + ch.charCodeAt(0)) | 0;
  return h;
}

/**
 * After a reload: the files {@linkcode runConformance} left in
 * `opfs:/persist` are still there, byte for byte.
 *
 * @param lib The browser build.
 * @param labels The contexts that wrote them.
 * @returns One result per file.
 */
export async function checkPersisted(
  lib: CkptLib,
  labels: readonly string[],
): Promise<CheckResult[]> {
  const store = new lib.OpfsStore();
  const out: CheckResult[] = [];
  for (const label of labels) {
    const folder = label.replace(/[^a-z0-9]+/gi, "_");
    const name = `after reload: ${label}'s file is intact`;
    try {
      const expected = patternBytes(1024 * 1024 + 3, seedOf(label));
      same(
        await store.readFile(`opfs:/persist/${folder}.bin`, 1 << 30),
        expected,
        "content",
      );
      out.push({ name, ok: true });
    } catch (error) {
      out.push({ name, ok: false, detail: String(error) });
    }
  }
  return out;
}

/**
 * With a tiny quota (set by the test through the DevTools protocol): a
 * write that does not fit fails with `EDQUOT` naming the file, the old file
 * is unchanged and no temporary file is left.
 *
 * @param lib The browser build.
 * @param label Names the context.
 * @param storeOptions Options for the store.
 * @returns One result.
 */
export async function checkQuota(
  lib: CkptLib,
  label: string,
  storeOptions: Lib.OpfsStoreOptions,
): Promise<CheckResult> {
  const name = `${label}: a full quota is a clear error and leaves nothing`;
  try {
    const store = new lib.OpfsStore(storeOptions);
    const dir = `opfs:/quota/${label.replace(/[^a-z0-9]+/gi, "_")}`;
    await store.ensureDir(dir);
    const file = `${dir}/big.ckpt`;
    const small = patternBytes(1000, 3);
    await store.write(file, (s) => s.write(small));
    const big = new Uint8Array(8 * 1024 * 1024);
    const e = await rejects(
      store.write(file, async (sink) => {
        for (let i = 0; i < 8; i++) {
          await sink.write(big.subarray(i << 20, (i + 1) << 20));
        }
      }),
      (e) => code(e) === "EDQUOT",
      "write over quota",
    );
    if (!String(e).includes(file)) fail(`error does not name the file: ${e}`);
    same(await store.readFile(file, 1 << 20), small, "old content");
    equal(await names(store, dir), ["big.ckpt"], "no temporary file");
    return { name, ok: true };
  } catch (error) {
    return { name, ok: false, detail: String(error) };
  }
}
