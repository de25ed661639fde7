// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { atomicWrite, checksumFile, writeFileAtomic } from "../mod.ts";
import { listDir, withTempDir } from "./_helpers.ts";

const enc = new TextEncoder();

Deno.test("atomicWrite commits the bytes, returns their size and zlib CRC-32, and leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    const result = await atomicWrite(`${dir}/f.bin`, async (sink) => {
      await sink.write(enc.encode("hello, "));
      await sink.write(new Uint8Array(0));
      await sink.write(enc.encode("world"));
    });
    // zlib.crc32(b"hello, world") == 0xffab723a
    deepEqual(result, { bytes: 12, checksum: "crc32:ffab723a" });
    equal(await Deno.readTextFile(`${dir}/f.bin`), "hello, world");
    deepEqual(await listDir(dir), ["f.bin"]);
    equal(await checksumFile(`${dir}/f.bin`), result.checksum);
  });
});

Deno.test("atomicWrite checksums a multi-MiB file the same as checksumFile", async () => {
  await withTempDir(async (dir) => {
    const big = new Uint8Array(9 * 1024 * 1024 + 7);
    for (let i = 0; i < big.length; i += 997) big[i] = i & 255;
    const r = await atomicWrite(`${dir}/big`, async (sink) => {
      await sink.write(big.subarray(0, 5));
      await sink.write(big.subarray(5));
    });
    equal(r.bytes, big.length);
    equal(await checksumFile(`${dir}/big`), r.checksum);
    deepEqual(await Deno.readFile(`${dir}/big`), big);
  });
});

Deno.test("atomicWrite makes the file read-only (0400) by default and honours fileMode", async () => {
  await withTempDir(async (dir) => {
    await writeFileAtomic(`${dir}/a`, enc.encode("a"));
    equal((await Deno.stat(`${dir}/a`)).mode! & 0o777, 0o400);
    await writeFileAtomic(`${dir}/b`, enc.encode("b"), { fileMode: 0o640 });
    equal((await Deno.stat(`${dir}/b`)).mode! & 0o777, 0o640);
  });
});

Deno.test("atomicWrite replaces an existing read-only file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/meta.json`;
    await writeFileAtomic(path, enc.encode("old"));
    await writeFileAtomic(path, enc.encode("new content"));
    equal(await Deno.readTextFile(path), "new content");
    equal((await Deno.stat(path)).mode! & 0o777, 0o400);
    deepEqual(await listDir(dir), ["meta.json"]);
  });
});

Deno.test("atomicWrite removes the temp file and keeps the old file when the writer fails", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/x.ckpt`;
    await writeFileAtomic(path, enc.encode("previous"));
    const boom = new Error("disk on fire");
    await rejects(
      atomicWrite(path, async (sink) => {
        await sink.write(new Uint8Array(1 << 20));
        throw boom;
      }),
      (e) => e === boom,
    );
    equal(await Deno.readTextFile(path), "previous");
    deepEqual(await listDir(dir), ["x.ckpt"]);
  });
});

/** Replaces `Deno.FsFile.prototype.syncData` during `body`. */
async function withSyncData(
  fake: (this: Deno.FsFile) => Promise<void>,
  body: () => Promise<void>,
): Promise<void> {
  const real = Deno.FsFile.prototype.syncData;
  Deno.FsFile.prototype.syncData = fake;
  try {
    await body();
  } finally {
    Deno.FsFile.prototype.syncData = real;
  }
}

const MIB = 1024 * 1024;

Deno.test("atomicWrite starts a background fdatasync every 64 MiB and still commits the bytes", async () => {
  await withTempDir(async (dir) => {
    const real = Deno.FsFile.prototype.syncData;
    let calls = 0;
    const chunk = new Uint8Array(16 * MIB);
    for (let i = 0; i < chunk.length; i += 4096) chunk[i] = (i >> 12) & 255;
    await withSyncData(function () {
      calls++;
      return real.call(this);
    }, async () => {
      const r = await atomicWrite(`${dir}/big`, async (sink) => {
        for (let i = 0; i < 9; i++) await sink.write(chunk); // 144 MiB
      });
      equal(r.bytes, 144 * MIB);
    });
    ok(calls >= 1 && calls <= 2, `${calls} background syncs`);
    equal((await Deno.stat(`${dir}/big`)).size, 144 * MIB);
    deepEqual(await listDir(dir), ["big"]);
  });
});

Deno.test("a failed background fdatasync fails atomicWrite, removes the temp file and keeps the old file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/x.ckpt`;
    await writeFileAtomic(path, enc.encode("previous"));
    const boom = new Error("injected fdatasync failure");
    const chunk = new Uint8Array(16 * MIB);
    // The failure surfaces at a later write or, at the latest, before the
    // final fsync: in both cases the save must fail.
    for (const writes of [4, 12]) {
      await withSyncData(() => Promise.reject(boom), async () => {
        await rejects(
          atomicWrite(path, async (sink) => {
            for (let i = 0; i < writes; i++) await sink.write(chunk);
          }),
          (e) => e === boom,
        );
      });
      equal(await Deno.readTextFile(path), "previous");
      deepEqual(await listDir(dir), ["x.ckpt"]);
    }
  });
});

Deno.test("atomicWrite never shows a partial file under the final name while writing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/y.bin`;
    await atomicWrite(path, async (sink) => {
      await sink.write(new Uint8Array(1000));
      // Mid-write: only the temp file exists, under a hidden .tmp name.
      const names = await listDir(dir);
      equal(names.length, 1);
      ok(/^\.y\.bin\.[0-9a-f]{12}\.tmp$/.test(names[0]!), names[0]);
      await rejects(Deno.stat(path), Deno.errors.NotFound);
    });
    equal((await Deno.stat(path)).size, 1000);
  });
});

Deno.test("a sink kept after atomicWrite ended rejects writes", async () => {
  await withTempDir(async (dir) => {
    let kept: { write(c: Uint8Array): Promise<void> } | undefined;
    await atomicWrite(`${dir}/z`, (sink) => {
      kept = sink;
      return Promise.resolve();
    });
    await rejects(kept!.write(new Uint8Array(1)), TypeError);
  });
});

Deno.test("atomicWrite fails with NotFound when the folder does not exist, leaving nothing", async () => {
  await withTempDir(async (dir) => {
    await rejects(
      writeFileAtomic(`${dir}/missing/f`, enc.encode("x")),
      Deno.errors.NotFound,
    );
    deepEqual(await listDir(dir), []);
  });
});

Deno.test("atomicWrite rejects bad arguments with TypeError/RangeError naming the value", async () => {
  await rejects(
    atomicWrite(42 as unknown as string, () => Promise.resolve()),
    /path must be a string, received number 42/,
  );
  await rejects(atomicWrite("", () => Promise.resolve()), RangeError);
  await rejects(atomicWrite("a\0b", () => Promise.resolve()), RangeError);
  await rejects(
    atomicWrite("/tmp/x", null as unknown as () => Promise<void>),
    TypeError,
  );
  await rejects(
    writeFileAtomic("/tmp/x", "text" as unknown as Uint8Array),
    /data must be a Uint8Array, received string "text"/,
  );
  await rejects(
    writeFileAtomic("/tmp/x", new Uint8Array(1), { fileMode: 0o1000 }),
    /fileMode must be an integer from 0 to 0o777, received 512/,
  );
});
