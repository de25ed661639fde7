// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child of `fuzz_test.ts`, run with Deno's default handling of unhandled
 * rejections (one ends the process): writes small checkpoints of both
 * formats, plain and encrypted in all three modes with small pieces (many
 * blocks), mutates them with a seeded generator and reads every mutant
 * through `loadCheckpoint`, `openCheckpoint` + every `read`, and
 * `verifyCheckpoint`; and, every `resumeEvery`-th mutant, as the newest
 * checkpoint of a monitor's folder (an intact older one beside it; every
 * other time a `meta.json` recording both as the library wrote them)
 * through `findResumeCheckpoint`, `resume` and the command line's
 * `inspect`, `verify` and `latest` (its `main`, as `cli.ts` runs it).
 * Prints one JSON summary line:
 * `{ cases, outcomes, failures, maxMs, maxRssMiB }`; a failure is an error
 * that is not one of the library's typed errors (for the command line: an
 * error thrown out of `main`, an exit status other than 0, 1, 2, or a
 * failure without a one-line `error:` message), a file the library wrote
 * that loaded or resumed with values other than those saved, or `null`
 * from a resume while checkpoints exist.
 *
 * Usage: deno run _fuzz_child.ts <folder> <seed> <mutants> [resumeEvery]
 */
import { encryptBytes, toHex } from "./_crypto_helpers.ts";
import { main as cli } from "../cli.ts";
import {
  checksumFile,
  CorruptCheckpointError,
  DecryptionError,
  type EncMode,
  EncryptionMismatchError,
  findResumeCheckpoint,
  loadCheckpoint,
  openCheckpoint,
  type Parameter,
  resume,
  saveCheckpoint,
  type Tensor,
  verifyCheckpoint,
} from "../mod.ts";

const [dir, seedArg, countArg, everyArg] = Deno.args;
const seed = Number(seedArg);
const count = Number(countArg);
const resumeEvery = Number(everyArg ?? 1);

/** mulberry32: a small seeded generator of uint32s. */
function generator(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
const next = generator(seed);
const below = (n: number) => next() % n;

const network = new Map<string, Tensor>([
  ["big", {
    dtype: "Float32",
    shape: [20, 30],
    data: Float32Array.from({ length: 600 }, (_, i) => i / 7),
  }],
  ["w", {
    dtype: "Int32",
    shape: [3, 4],
    data: Int32Array.from({ length: 12 }, (_, i) => i - 5),
  }],
  ["b", { dtype: "Bool", shape: [], data: new Uint8Array([1]) }],
]);
const appendInfo = new Map<string, string | bigint>([
  ["step_num", 7n],
  ["note", "päivä 日本 ✓ ".repeat(40)],
]);

/** The older checkpoint beside each mutant: other values, step 5. */
const olderNetwork = new Map<string, Tensor>(
  [...network].map(([k, t]) => [k, {
    ...t,
    data: (t.data as Float32Array).map((x) => (t.dtype === "Bool" ? 0 : x + 1)),
  } as Tensor]),
);

/** One base file: its bytes, how to read it, and whether we wrote its check. */
interface Base {
  name: string;
  ext: "ckpt" | "safetensors";
  bytes: Uint8Array;
  /** The older checkpoint of the same kind (step 5, `olderNetwork`). */
  older: Uint8Array;
  mode: EncMode | null;
  key: Uint8Array | null;
  checked: boolean;
  blocks: [number, number][];
}

/** Start and end of every block of an encrypted file. */
function blocksOf(bytes: Uint8Array, mode: EncMode): [number, number][] {
  const header = mode === "AES-GCM" ? 48 : 32;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const out: [number, number][] = [];
  for (let at = 0; at < bytes.length;) {
    const end = at + header + view.getInt32(at + header - 4, true);
    out.push([at, end]);
    at = end;
  }
  return out;
}

const bases: Base[] = [];
for (const ext of ["ckpt", "safetensors"] as const) {
  for (const checked of [true, false]) {
    const path = `${dir}/base.${ext}`;
    await saveCheckpoint(path, network, {
      format: ext,
      appendInfo,
      fileMode: 0o600,
      check: checked,
      ...(ext === "ckpt" ? { splitSize: 1000 } : {}),
    });
    const plain = await Deno.readFile(path);
    await Deno.remove(path);
    await saveCheckpoint(path, olderNetwork, {
      format: ext,
      appendInfo: new Map([...appendInfo, ["step_num", 5n]]),
      fileMode: 0o600,
      check: checked,
    });
    const olderPlain = await Deno.readFile(path);
    await Deno.remove(path);
    bases.push({
      name: `${ext}${checked ? "" : " nocheck"}`,
      ext,
      bytes: plain,
      older: olderPlain,
      mode: null,
      key: null,
      checked,
      blocks: [],
    });
    if (!checked) continue;
    for (const mode of ["AES-GCM", "AES-CBC", "SM4-CBC"] as EncMode[]) {
      if (ext === "safetensors" && mode !== "AES-GCM") continue;
      const key = crypto.getRandomValues(new Uint8Array(16));
      const bytes = await encryptBytes(plain, key, mode, 160 + below(200));
      bases.push({
        name: `${ext} ${mode}`,
        ext,
        bytes,
        older: await encryptBytes(olderPlain, key, mode, 4096),
        mode,
        key,
        checked,
        blocks: blocksOf(bytes, mode),
      });
    }
  }
}

/** A mutant of `base`: its bytes, the key to read with, and what was done. */
function mutate(
  base: Base,
): { bytes: Uint8Array; key: Uint8Array | null; what: string } {
  const b = base.bytes;
  const n = b.length;
  const copy = () => b.slice();
  const kinds = base.mode === null ? 5 : 9;
  switch (below(kinds)) {
    case 0: {
      const out = copy();
      const flips = 1 + below(3);
      for (let i = 0; i < flips; i++) out[below(n)]! ^= 1 << below(8);
      return { bytes: out, key: base.key, what: "flip" };
    }
    case 1:
      return { bytes: b.slice(0, below(n)), key: base.key, what: "cut" };
    case 2: {
      const out = copy();
      const at = below(Math.max(1, n - 4));
      const value = [
        0,
        0xffffffff,
        0x80000000,
        0x7fffffff,
        0xfffffff0,
      ][below(5)]!;
      new DataView(out.buffer).setUint32(at, value, true);
      return { bytes: out, key: base.key, what: "int" };
    }
    case 3: {
      const at = below(n);
      const len = 1 + below(Math.min(64, n - at));
      const out = new Uint8Array(n - len);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return { bytes: out, key: base.key, what: "remove" };
    }
    case 4: {
      // A varint of a .ckpt or the JSON of a safetensors header set huge.
      const out = copy();
      const at = below(Math.min(n, 600));
      out[at] = 0xff;
      if (at + 1 < n) out[at + 1] = 0xff;
      return { bytes: out, key: base.key, what: "huge" };
    }
    case 5: {
      const blocks = base.blocks;
      const i = below(blocks.length);
      const j = below(blocks.length);
      const order = blocks.map((_, k) => k === i ? j : k === j ? i : k);
      return { bytes: join(b, blocks, order), key: base.key, what: "swap" };
    }
    case 6: {
      const blocks = base.blocks;
      const i = below(blocks.length);
      const order = blocks.map((_, k) => k);
      if (below(2) === 0) order.splice(i, 0, i); // inserted again
      else order[(i + 1) % order.length] = i; // copied over the next
      return {
        bytes: join(b, blocks, order),
        key: base.key,
        what: "duplicate",
      };
    }
    case 7: {
      const out = copy();
      const [start] = base.blocks[below(base.blocks.length)]!;
      const ivAt = start + (base.mode === "AES-GCM" ? 28 : 12);
      out[ivAt + below(16)]! ^= 1 << below(8);
      return { bytes: out, key: base.key, what: "iv" };
    }
    default: {
      const key = base.key!.slice();
      key[below(16)]! ^= 1 << below(8);
      return { bytes: b, key, what: "wrong key" };
    }
  }
}

function join(
  b: Uint8Array,
  blocks: [number, number][],
  order: number[],
): Uint8Array {
  const parts = order.map((k) => b.subarray(blocks[k]![0], blocks[k]![1]));
  const out = new Uint8Array(parts.reduce((m, p) => m + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

const TYPED = [
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
];

function sameValue(got: unknown, want: Tensor | string): boolean {
  if (typeof want === "string") return got === want;
  const t = got as Tensor;
  if (typeof t !== "object" || t.dtype !== want.dtype) return false;
  if (t.shape.join() !== want.shape.join()) return false;
  const a = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const w = new Uint8Array(
    want.data.buffer,
    want.data.byteOffset,
    want.data.byteLength,
  );
  return a.length === w.length && a.every((x, i) => x === w[i]);
}

const saved = new Map<string, Tensor | string>(network);
for (const [k, v] of appendInfo) {
  saved.set(
    k,
    typeof v === "string"
      ? v
      : { dtype: "Int64", shape: [], data: new BigInt64Array([v]) },
  );
}

const outcomes: Record<string, number> = {};
const failures: string[] = [];
let maxMs = 0;
let maxRss = 0;
const file = (ext: string) => `${dir}/m.${ext}`;

for (let c = 0; c < count; c++) {
  const base = bases[c % bases.length]!;
  const { bytes, key, what } = mutate(base);
  const path = file(base.ext);
  await Deno.writeFile(path, bytes);
  const opts = key === null ? {} : { decKey: key, decMode: base.mode! };
  const same = bytes === base.bytes ||
    (bytes.length === base.bytes.length &&
      bytes.every((x, i) => x === base.bytes[i]));
  const unchanged = same && key === base.key;
  const label = `case ${c} (${base.name}, ${what})`;
  const started = performance.now();
  const record = (op: string, result: string) => {
    const k = `${op}: ${result}`;
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  };
  const typed = (op: string, error: unknown) => {
    if (TYPED.some((T) => error instanceof T)) {
      record(op, (error as Error).name);
    } else {
      failures.push(`${label} ${op}: untyped ${String(error)}`);
    }
  };
  const checkValues = (op: string, values: Map<string, unknown>) => {
    record(op, "loaded");
    if (!base.checked || unchanged) return;
    const wrong = [...saved].filter(([k, v]) => !sameValue(values.get(k), v));
    if (wrong.length > 0 || values.size !== saved.size) {
      failures.push(
        `${label} ${op}: loaded other values (${
          wrong.map(([k]) => k).join(", ")
        }; ${values.size} entries)`,
      );
    }
  };
  let loaded = false;
  try {
    checkValues("load", await loadCheckpoint(path, opts));
    loaded = true;
  } catch (error) {
    typed("load", error);
  }
  try {
    await using reader = await openCheckpoint(path, opts);
    const values = new Map<string, unknown>();
    for (const e of reader.entries) {
      values.set(e.name, await reader.read(e.name));
    }
    checkValues("open+read", values);
  } catch (error) {
    typed("open+read", error);
  }
  try {
    const r = await verifyCheckpoint(path, { ...opts, meta: false });
    record("verify", r.ok ? "ok" : r.kind);
    if (r.ok !== loaded) {
      failures.push(`${label}: verify says ${r.ok}, load ${loaded}`);
    }
  } catch (error) {
    failures.push(`${label} verify: threw ${String(error)}`);
  }
  if (c % resumeEvery === 0) {
    await resumeCase(base, bytes, key, unchanged, label, record, typed);
  }
  maxMs = Math.max(maxMs, performance.now() - started);
  if (c % 64 === 0) maxRss = Math.max(maxRss, Deno.memoryUsage().rss);
}
/** The values of `want` held by `params` (fresh arrays restored by resume). */
function holds(params: Parameter[], want: Map<string, Tensor>): boolean {
  return params.every((p) => sameValue(p, want.get(p.name)!));
}

/**
 * The mutant as the newest checkpoint (step 7) of a monitor's folder, the
 * intact older one (step 5) beside it, through findResumeCheckpoint, resume
 * and the command line.
 */
async function resumeCase(
  base: Base,
  bytes: Uint8Array,
  key: Uint8Array | null,
  unchanged: boolean,
  label: string,
  record: (op: string, result: string) => void,
  typed: (op: string, error: unknown) => void,
): Promise<void> {
  const run = `${dir}/run`;
  const rank = `${run}/checkpoint/rank_0`;
  await Deno.remove(run, { recursive: true }).catch(() => {});
  await Deno.mkdir(rank, { recursive: true });
  const older = `${rank}/CKP_rank_0-1_5.${base.ext}`;
  const newer = `${rank}/CKP_rank_0-1_7.${base.ext}`;
  await Deno.writeFile(older, base.older);
  await Deno.writeFile(newer, bytes);
  // Every other case, a meta.json recording both files as the library
  // wrote them (the mutant's size and checksum are those of its base).
  const withMeta = below(2) === 0;
  if (withMeta) {
    const entry = (name: string, step: number, b: Uint8Array, sum: string) => ({
      name,
      bytes: b.length,
      checksum: sum,
      epoch: 1,
      step,
      global_step: step,
    });
    const baseSum = await checksumOf(base.bytes);
    await Deno.writeTextFile(
      `${rank}/meta.json`,
      JSON.stringify({
        last_epoch: 1,
        last_step: 7,
        last_ckpt_file: newer.split("/").pop(),
        global_step: 7,
        step_num: 7,
        format: base.ext,
        enc_mode: base.mode,
        prefix: "CKP_rank_0",
        rank: 0,
        files: [
          entry(
            older.split("/").pop()!,
            5,
            base.older,
            await checksumFile(older),
          ),
          entry(newer.split("/").pop()!, 7, base.bytes, baseSum),
        ],
      }),
    );
  }
  // A mutant the library wrote must not resume with other values; a
  // check:false mutant may, where no meta.json records its checksum.
  const guarded = base.checked || withMeta || unchanged;
  const opts = key === null ? {} : { decKey: key };
  const tag = withMeta ? " (meta.json)" : "";
  try {
    const found = await findResumeCheckpoint(run, opts);
    if (found === null) {
      failures.push(`${label} find${tag}: null while checkpoints exist`);
    } else {
      record("find", found.files[0] === newer ? "newest" : "older");
    }
  } catch (error) {
    typed("find", error);
  }
  const params: Parameter[] = [...network].map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    data: new (t.data.constructor as Uint8ArrayConstructor)(t.data.length),
  } as Parameter));
  try {
    const resumed = await resume(run, { network: params, ...opts });
    if (resumed === null) {
      failures.push(`${label} resume${tag}: null while checkpoints exist`);
    } else if (resumed.files[0] === older) {
      record("resume", "older");
      if (!holds(params, olderNetwork)) {
        failures.push(`${label} resume${tag}: the older file, other values`);
      }
    } else {
      record("resume", "newest");
      if (guarded && !holds(params, network)) {
        failures.push(`${label} resume${tag}: restored other values`);
      }
    }
  } catch (error) {
    typed("resume", error);
  }
  const keyArgs = key === null ? [] : ["--dec-key-hex", toHex(key)];
  for (
    const args of [
      ["inspect", newer, ...keyArgs],
      ["verify", newer, ...keyArgs],
      ["latest", run, ...keyArgs],
    ]
  ) {
    let err = "";
    let out = "";
    const op = `cli ${args[0]}`;
    try {
      const code = await cli(args, {
        stdout: (t) => void (out += t),
        stderr: (t) => void (err += t),
        isTerminal: false,
      });
      record(op, `exit ${code}`);
      // A failure says why in one line: `error: …` on stderr, or, for a
      // file verify checked and failed, its report on stdout.
      const said = /^error: [^\n]+\n$/.test(err) ||
        (op === "cli verify" && err === "" && /FAILED|fail/i.test(out));
      if (code !== 0 && (code > 2 || !said || /\n\s+at /.test(err + out))) {
        failures.push(`${label} ${op}${tag}: exit ${code}, said ${err}${out}`);
      }
      if (op === "cli verify" && code === 0 && guarded && !unchanged) {
        // verify read every entry; a changed file it passes must hold the
        // saved values: load it to see.
        try {
          const values = await loadCheckpoint(newer, opts);
          if ([...saved].some(([k, v]) => !sameValue(values.get(k), v))) {
            failures.push(`${label} ${op}${tag}: passed other values`);
          }
        } catch (error) {
          failures.push(`${label} ${op}${tag}: passed, load ${error}`);
        }
      }
    } catch (error) {
      failures.push(`${label} ${op}${tag}: threw ${String(error)}`);
    }
  }
}

/** The checksum `meta.json` records for `bytes`. */
async function checksumOf(bytes: Uint8Array): Promise<string> {
  const path = `${dir}/sum.bin`;
  await Deno.writeFile(path, bytes);
  try {
    return await checksumFile(path);
  } finally {
    await Deno.remove(path);
  }
}

console.log(JSON.stringify({
  cases: count,
  bases: bases.map((b) =>
    `${b.name}: ${b.bytes.length} B, ${b.blocks.length} blocks`
  ),
  outcomes,
  failures: failures.slice(0, 20),
  failureCount: failures.length,
  maxMs: Math.round(maxMs),
  maxRssMiB: Math.round(maxRss / 2 ** 20),
}));
