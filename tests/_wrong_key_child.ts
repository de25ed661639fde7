// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child of `wrong_key_test.ts`, run with Deno's default handling of
 * unhandled rejections (one ends the process): saves multi-block CBC files,
 * then reads them with a wrong key and with a flipped byte near a block's
 * end through every reading function. Prints one JSON line per attempt
 * (what came out: a typed error's name, or a verify result's kind) and
 * `done` last.
 *
 * Usage: deno run _wrong_key_child.ts <folder>
 */
import { encryptBytes } from "./_crypto_helpers.ts";
import {
  createEncryptingSink,
  type EncMode,
  loadCheckpoint,
  openCheckpoint,
  saveCheckpoint,
  verifyCheckpoint,
} from "../mod.ts";

const dir = Deno.args[0]!;
const MODES: EncMode[] = ["AES-CBC", "SM4-CBC"];

async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    const r = await run();
    if (typeof r === "object" && r !== null && "ok" in r) {
      const v = r as { ok: boolean; kind?: string };
      return v.ok ? "ok" : `verify:${v.kind}`;
    }
    return "loaded";
  } catch (error) {
    return (error as Error).name;
  }
}

/** Encrypts `plain` into `path` in pieces of `pieceSize` bytes. */
async function encryptFile(
  path: string,
  plain: Uint8Array,
  key: Uint8Array,
  mode: EncMode,
  pieceSize: number,
): Promise<void> {
  await Deno.writeFile(path, await encryptBytes(plain, key, mode, pieceSize));
}

const key = new Uint8Array(16).fill(1);
const wrong = new Uint8Array(16).fill(2);
const n = 800_000; // 3.2 MB: two AES blocks, four SM4 blocks by default
const network = {
  big: { dtype: "Float32", shape: [n], data: new Float32Array(n).fill(1.5) },
  small: { dtype: "Int32", shape: [2], data: new Int32Array([1, 2]) },
} as const;
const plainPath = `${dir}/plain.ckpt`;
await saveCheckpoint(plainPath, network, { fileMode: 0o600 });
const plain = await Deno.readFile(plainPath);

for (const mode of MODES) {
  const files: [string, string][] = [];
  const saved = `${dir}/${mode}-default.ckpt`;
  await saveCheckpoint(saved, network, {
    encKey: key,
    encMode: mode,
    fileMode: 0o600,
  });
  files.push(["default pieces", saved]);
  const small = `${dir}/${mode}-small.ckpt`;
  await encryptFile(small, plain, key, mode, 64 * 1024); // ~50 blocks
  files.push(["64 KiB pieces", small]);
  for (const [what, path] of files) {
    const cases: [string, Uint8Array, Uint8Array][] = [[
      "wrong key",
      wrong,
      await Deno.readFile(path),
    ]];
    const flipped = await Deno.readFile(path);
    flipped[flipped.length - 20]! ^= 0x40; // inside the last block's last 32 bytes
    cases.push(["flipped byte", key, flipped]);
    for (const [damage, decKey, bytes] of cases) {
      const file = `${dir}/case.ckpt`;
      await Deno.writeFile(file, bytes);
      const opts = { decKey, decMode: mode };
      const results = {
        load: await outcome(() => loadCheckpoint(file, opts)),
        open: await outcome(async () => {
          await using reader = await openCheckpoint(file, opts);
          for (const e of reader.entries) await reader.read(e.name);
        }),
        verify: await outcome(() =>
          verifyCheckpoint(file, { ...opts, meta: false })
        ),
      };
      console.log(JSON.stringify({ mode, what, damage, ...results }));
    }
  }
}
// A sink whose writes start failing midway, as a full disk does, with
// pieces in flight (SM4's in its Workers): the failure is what the writer
// sees, and nothing else rejects.
// Blocks of 256 KiB are written as they are (the 4th write fails); blocks
// of 16 KiB are gathered into 4 MiB writes (the first fails).
const sinkCases: [EncMode, number, number][] = [];
for (const m of [...MODES, "AES-GCM"] as EncMode[]) {
  sinkCases.push([m, 256 * 1024, 3], [m, 16 * 1024, 0]);
}
for (const [mode, pieceSize, failAfter] of sinkCases) {
  let writes = 0;
  const sink = createEncryptingSink({
    write: () =>
      ++writes > failAfter
        ? Promise.reject(new Error("disk full"))
        : Promise.resolve(),
  }, { key, mode, pieceSize, concurrency: 8 });
  let sinkFailure = "finished";
  try {
    for (let i = 0; i < 32; i++) await sink.write(new Uint8Array(100_000));
    await sink.finish();
  } catch (error) {
    sink.abort();
    sinkFailure = (error as Error).message;
  }
  console.log(JSON.stringify({ mode, sinkFailure }));
}
// Let anything left over settle before saying done.
await new Promise((resolve) => setTimeout(resolve, 100));
console.log("done");
