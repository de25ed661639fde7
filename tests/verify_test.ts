// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  checksumFile,
  saveCheckpoint,
  type Tensor,
  verifyCheckpoint,
  type VerifyResult,
} from "../mod.ts";
import { FIXTURES, withTempDir } from "./_helpers.ts";

const w: Tensor = {
  dtype: "Float32",
  shape: [4, 4],
  data: Float32Array.from({ length: 16 }, (_, i) => i / 3),
};

function failed(r: VerifyResult, kind: string): void {
  ok(!r.ok, `expected a failure of kind ${kind}`);
  if (!r.ok) equal(r.kind, kind, r.reason);
}

async function writeMeta(dir: string, files: unknown[]): Promise<void> {
  const last = files.at(-1) as { name: string } | undefined;
  await Deno.writeTextFile(
    `${dir}/meta.json`,
    JSON.stringify({
      last_epoch: 1,
      last_step: 1,
      last_ckpt_file: last?.name ?? "x-1_1.ckpt",
      files,
    }),
  );
}

Deno.test("verifyCheckpoint passes a good file in both formats and counts its entries", async () => {
  await withTempDir(async (dir) => {
    for (const format of ["ckpt", "safetensors"] as const) {
      const path = `${dir}/m.${format}`;
      const saved = await saveCheckpoint(path, { w }, {
        format,
        appendInfo: { epoch_num: 2 },
      });
      const r = await verifyCheckpoint(path);
      deepEqual(r, {
        ok: true,
        path,
        format,
        bytes: saved.bytes,
        entries: 2,
        checksum: null,
        checkedAgainst: null,
        fileCheck: "crc32",
      });
      const e = await verifyCheckpoint(path, { expected: saved });
      ok(e.ok);
      equal(e.checksum, saved.checksum);
      equal(e.checkedAgainst, "expected");
    }
  });
});

Deno.test("verifyCheckpoint compares size and checksum with the sibling meta.json entry", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/CKP_rank_0-1_1.ckpt`;
    const saved = await saveCheckpoint(path, { w }, { fileMode: 0o600 });
    const entry = {
      name: "CKP_rank_0-1_1.ckpt",
      bytes: saved.bytes,
      checksum: saved.checksum,
      epoch: 1,
      step: 1,
      global_step: 1,
    };
    await writeMeta(dir, [entry]);
    const r = await verifyCheckpoint(path);
    ok(r.ok);
    equal(r.checkedAgainst, "meta.json");

    await writeMeta(dir, [{ ...entry, bytes: saved.bytes + 1 }]);
    failed(await verifyCheckpoint(path), "size");
    await writeMeta(dir, [{ ...entry, checksum: "crc32:00000000" }]);
    failed(await verifyCheckpoint(path), "checksum");
    await writeMeta(dir, [{ ...entry, checksum: "md5:00" }]);
    failed(await verifyCheckpoint(path), "meta");
    // meta: false skips meta.json
    ok((await verifyCheckpoint(path, { meta: false })).ok);
    // A meta.json that does not list the file: nothing to compare with.
    await writeMeta(dir, [{ ...entry, name: "other.ckpt" }]);
    const r2 = await verifyCheckpoint(path);
    ok(r2.ok);
    equal(r2.checkedAgainst, null);
  });
});

Deno.test("verifyCheckpoint fails on a malformed meta.json instead of ignoring it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    await saveCheckpoint(path, { w });
    for (
      const text of [
        "{not json",
        "[]",
        '{"last_epoch":1,"last_step":1}',
        '{"last_epoch":1,"last_step":1,"last_ckpt_file":"../x.ckpt"}',
        '{"last_epoch":1,"last_step":1,"last_ckpt_file":"m.ckpt","files":[{"name":"m.ckpt"}]}',
      ]
    ) {
      await Deno.writeTextFile(`${dir}/meta.json`, text);
      failed(await verifyCheckpoint(path), "meta");
    }
  });
});

Deno.test("verifyCheckpoint reports truncation at every length as corrupt, never throws", async () => {
  await withTempDir(async (dir) => {
    for (const format of ["ckpt", "safetensors"] as const) {
      const path = `${dir}/m.${format}`;
      await saveCheckpoint(path, { w, b: w }, { format, fileMode: 0o600 });
      const bytes = await Deno.readFile(path);
      const cut = `${dir}/cut.${format}`;
      for (let n = 0; n < bytes.length; n++) {
        await Deno.writeFile(cut, bytes.subarray(0, n));
        const r = await verifyCheckpoint(cut, { meta: false });
        // A .ckpt cut exactly between two entries is a valid smaller file;
        // it must then hold fewer entries.
        if (r.ok) {
          equal(format, "ckpt", `safetensors cut at ${n} verified`);
          ok(r.entries < 2, `cut at ${n} kept every entry`);
        } else {
          equal(r.kind, "corrupt", `cut at ${n}: ${r.reason}`);
        }
      }
    }
  });
});

Deno.test("verifyCheckpoint catches a .ckpt cut between entries by the file's check, or without it by the recorded size", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.ckpt`;
    await saveCheckpoint(path, { w, b: w }, { fileMode: 0o600 });
    const bytes = await Deno.readFile(path);
    // The mark (2 bytes), two equal entries, the trailer (17 bytes).
    const entry = (bytes.length - 2 - 17) / 2;
    await Deno.writeFile(path, bytes.subarray(0, 2 + entry));
    failed(await verifyCheckpoint(path), "corrupt");
    await Deno.writeFile(path, bytes.subarray(0, 2 + 2 * entry));
    failed(await verifyCheckpoint(path), "corrupt");

    const bare = `${dir}/bare.ckpt`;
    const plain = await saveCheckpoint(bare, { w, b: w }, {
      fileMode: 0o600,
      check: false,
    });
    const all = await Deno.readFile(bare);
    await Deno.writeFile(bare, all.subarray(0, all.length / 2));
    const r = await verifyCheckpoint(bare);
    ok(r.ok && r.fileCheck === null, "without a check, half of it parses");
    failed(await verifyCheckpoint(bare, { expected: plain }), "size");
  });
});

Deno.test("verifyCheckpoint reports a missing file, a folder and garbage", async () => {
  await withTempDir(async (dir) => {
    failed(await verifyCheckpoint(`${dir}/none.ckpt`), "missing");
    failed(await verifyCheckpoint(dir), "not-a-file");
    await Deno.writeFile(`${dir}/g.safetensors`, new Uint8Array(64).fill(7));
    failed(await verifyCheckpoint(`${dir}/g.safetensors`), "corrupt");
  });
});

Deno.test("verifyCheckpoint passes MindSpore's own fixtures", async () => {
  let n = 0;
  for await (const e of Deno.readDir(FIXTURES)) {
    if (!e.name.endsWith(".ckpt") || e.name.includes("enc")) continue;
    const path = `${FIXTURES}${e.name}`;
    const r = await verifyCheckpoint(path, {
      expected: { checksum: await checksumFile(path) },
    });
    ok(r.ok, `${e.name}: ${r.ok ? "" : r.reason}`);
    n++;
  }
  ok(n > 0);
});

Deno.test("verifyCheckpoint rejects bad arguments", async () => {
  await rejects(verifyCheckpoint(1 as unknown as string), TypeError);
  await rejects(verifyCheckpoint(""), RangeError);
  await rejects(verifyCheckpoint("a.ckpt", null as never), TypeError);
  await rejects(
    verifyCheckpoint("a.ckpt", { expected: { bytes: -1 } }),
    RangeError,
  );
  await rejects(
    verifyCheckpoint("a.ckpt", { expected: { checksum: 5 as never } }),
    TypeError,
  );
});

Deno.test("verifyCheckpoint checks every GCM tag of an encrypted file and says when the key is missing or wrong", async () => {
  await withTempDir(async (dir) => {
    const key = new Uint8Array(16).map((_, i) => i + 1);
    for (const encMode of ["AES-GCM", "AES-CBC", "SM4-CBC"] as const) {
      const path = `${dir}/${encMode}.ckpt`;
      await saveCheckpoint(path, { w }, {
        encKey: key,
        encMode,
        fileMode: 0o600,
      });
      ok((await verifyCheckpoint(path, { decKey: key, decMode: encMode })).ok);
      failed(await verifyCheckpoint(path), "encryption");
      failed(
        await verifyCheckpoint(path, {
          decKey: key.map((b) => b ^ 1),
          decMode: encMode,
        }),
        "decryption",
      );
    }
    // A flipped ciphertext byte, with no checksum to compare with: the GCM
    // tag catches it.
    const path = `${dir}/AES-GCM.ckpt`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
    await Deno.writeFile(path, bytes);
    failed(
      await verifyCheckpoint(path, { decKey: key, decMode: "AES-GCM" }),
      "decryption",
    );
  });
});
