import {
  deepEqual as assertEquals,
  equal as assertStrictEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli.ts";
import {
  CheckpointMonitor,
  checksumFile,
  loadCheckpoint,
  type Parameter,
  saveCheckpoint,
  train,
} from "../mod.ts";
import { FIXTURES, listDir, withTempDir } from "./_helpers.ts";

/** Runs `main` and captures what it writes. */
async function run(
  args: string[],
  opts: { isTerminal?: boolean } = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    isTerminal: opts.isTerminal ?? false,
    progressDelayMs: 0,
  });
  return { code, out, err };
}

const ROUTER = join(FIXTURES, "golden_router.ckpt");
const MOE = join(FIXTURES, "golden_moe.ckpt");

function params(): Parameter[] {
  return [
    {
      name: "dense.weight",
      dtype: "Float32",
      shape: [2, 3],
      data: new Float32Array([1, 2, 3, 4, 5, 6]),
    },
    {
      name: "dense.bias",
      dtype: "Float16",
      shape: [3],
      data: new Float16Array([0.5, 1, -1]),
    },
    {
      name: "global_step",
      dtype: "Int32",
      shape: [1],
      data: new Int32Array([12]),
    },
  ];
}

/**
 * The bytes of a `.ckpt` file we wrote without its check: the 2-byte mark
 * and the 17-byte `crc_num` trailer are asserted, then cut off (what is
 * left is MindSpore's bytes).
 */
async function bodyOf(path: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path);
  assertEquals([...bytes.subarray(0, 2)], [0x78, 1]);
  assertEquals(
    new TextDecoder().decode(bytes.subarray(bytes.length - 17, -10)),
    "crc_num",
  );
  return bytes.subarray(2, bytes.length - 17);
}

/** Saves a checkpoint as a monitor would, with append info. */
async function savedCkpt(dir: string, name = "CKP_rank_0-2_4.ckpt") {
  return await saveCheckpoint(join(dir, name), params(), {
    appendInfo: new Map<string, number | string>([
      ["epoch_num", 2],
      ["step_num", 12],
      ["loss_scale", 0.5],
      ["note", "hello"],
    ]),
  });
}

Deno.test("cli: --help prints usage on stdout and exits 0", async () => {
  const r = await run(["--help"]);
  assertStrictEquals(r.code, 0);
  assertMatch(r.out, /^Usage: ckpt <command>/);
  assertStrictEquals(r.err, "");
  assertStrictEquals((await run(["inspect", "-h"])).code, 0);
});

Deno.test("cli: wrong arguments print usage on stderr and exit 2", async () => {
  for (
    const args of [
      [],
      ["inspect"],
      ["inspect", "a.ckpt", "b.ckpt"],
      ["inspect", "--bogus", ROUTER],
      ["latest", "--force", "."],
      [
        "convert",
        ROUTER,
        "x.ckpt",
        "--enc-mode",
        "ROT13",
        "--enc-key-hex",
        "00",
      ],
      ["convert", ROUTER, "x.ckpt", "--enc-mode", "AES-GCM"],
      ["inspect", ROUTER, "--dec-mode", "AES-GCM"],
      ["--json"],
    ]
  ) {
    const r = await run(args);
    assertStrictEquals(r.code, 2, args.join(" "));
    assertStrictEquals(r.out, "", args.join(" "));
    assertMatch(r.err, /^error: .*\n\nUsage: ckpt/, args.join(" "));
  }
});

Deno.test("cli: an unknown command is a one-line error, exit 2", async () => {
  const r = await run(["frobnicate", "x"]);
  assertStrictEquals(r.code, 2);
  assertStrictEquals(
    r.err,
    'error: unknown command "frobnicate" (try --help)\n',
  );
});

Deno.test("cli: a folder, a missing file or an unreadable file is a one-line error, exit 2", async () => {
  await withTempDir(async (dir) => {
    for (const args of [["inspect", dir], ["verify", dir]]) {
      const r = await run(args);
      assertStrictEquals(r.code, 2);
      assertStrictEquals(
        r.err,
        `error: "${dir}" is a folder, not a checkpoint file\n`,
      );
      assertStrictEquals(r.out, "");
    }
    const missing = await run(["verify", join(dir, "nope.ckpt")]);
    assertStrictEquals(missing.code, 2);
    assertMatch(missing.err, /^error: ".*nope\.ckpt" does not exist\n$/);
    // The tests may not read /etc: Deno refuses, the tool says so in one line.
    const denied = await run(["inspect", "/etc/hostname"]);
    assertStrictEquals(denied.code, 2);
    assertMatch(denied.err, /^error: .*\/etc\/hostname.*--allow-read.*\n/);
    assertMatch(
      denied.err,
      /\n {2}deno run -R=\/etc jsr:@ckpt\/monitor\/cli inspect \/etc\/hostname\n/,
    );
    assertMatch(
      denied.err,
      /\n {2}deno install --global --name ckpt -R=\/etc jsr:@ckpt\/monitor\/cli\n/,
    );
    // convert into a folder / from a folder writes nothing.
    const sub = join(dir, "sub");
    await Deno.mkdir(sub);
    assertStrictEquals((await run(["convert", ROUTER, sub])).code, 2);
    assertStrictEquals(
      (await run(["convert", dir, join(dir, "o.ckpt")])).code,
      2,
    );
    assertEquals(await listDir(dir), ["sub"]);
    assertEquals(await listDir(sub), []);
  });
});

Deno.test("cli: inspect lists a MindSpore fixture's entries", async () => {
  const r = await run(["inspect", MOE]);
  assertStrictEquals(r.code, 0);
  assertMatch(r.out, /format: {2}ckpt\n/);
  assertMatch(r.out, /cipher: {2}none\n/);
  assertMatch(r.out, /entries: 4 /);
  assertMatch(
    r.out,
    /feed_forward\.router\.dense\.weight +Float32 +\[4, 16\] +256\n/,
  );
  const j = await run(["inspect", "--json", ROUTER]);
  assertStrictEquals(j.code, 0);
  const parsed = JSON.parse(j.out);
  assertEquals(parsed.entries, [
    {
      name: "gating.weight",
      dtype: "Float32",
      shape: [4, 16],
      bytes: 256,
      fileDtype: "Float32",
    },
  ]);
  assertEquals([parsed.format, parsed.fileBytes, parsed.cipher], [
    "ckpt",
    293,
    null,
  ]);
});

Deno.test("cli: inspect shows append info with its values", async () => {
  await withTempDir(async (dir) => {
    const saved = await savedCkpt(dir);
    const r = await run(["inspect", "--json", saved.path]);
    assertStrictEquals(r.code, 0);
    assertEquals(JSON.parse(r.out).appendInfo, {
      global_step: 12,
      epoch_num: 2,
      step_num: 12,
      loss_scale: 0.5,
      note: "hello",
    });
    const text = await run(["inspect", saved.path]);
    assertMatch(
      text.out,
      /append info:\n {2}global_step = 12\n {2}epoch_num = 2\n/,
    );
    assertMatch(text.out, / {2}note = "hello"/);
  });
});

Deno.test("cli: verify checks every entry and the size and checksum in meta.json", async () => {
  await withTempDir(async (dir) => {
    const saved = await savedCkpt(dir);
    // No meta.json: entries are read, nothing to compare.
    let r = await run(["verify", saved.path]);
    assertStrictEquals(r.code, 0);
    assertMatch(r.out, /^OK {2}.*\n {2}read 7 entries/);
    assertMatch(r.out, /meta\.json: none beside the file/);

    const meta = {
      last_epoch: 2,
      last_step: 4,
      last_ckpt_file: "CKP_rank_0-2_4.ckpt",
      files: [{
        name: "CKP_rank_0-2_4.ckpt",
        bytes: saved.bytes,
        checksum: saved.checksum,
        epoch: 2,
        step: 4,
        global_step: 12,
      }],
    };
    await Deno.writeTextFile(join(dir, "meta.json"), JSON.stringify(meta));
    r = await run(["verify", "--json", saved.path]);
    assertStrictEquals(r.code, 0);
    const ok = JSON.parse(r.out);
    assertEquals([ok.ok, ok.entries, ok.meta.listed], [true, 7, true]);
    assertEquals(ok.meta.actual, {
      bytes: saved.bytes,
      checksum: saved.checksum,
    });

    // A flipped byte inside a tensor: parses, but the checksum says no.
    const bytes = await Deno.readFile(saved.path);
    bytes[40] = bytes[40]! ^ 0xff;
    await Deno.chmod(saved.path, 0o600);
    await Deno.writeFile(saved.path, bytes);
    r = await run(["verify", saved.path]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.out, /^FAILED/);
    assertMatch(
      r.out,
      /problem: checksum is crc32:[0-9a-f]{8}, meta\.json records/,
    );

    // Cut short: the parser says where.
    await Deno.writeFile(saved.path, bytes.subarray(0, bytes.length - 10));
    r = await run(["verify", saved.path]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.out, /problem: /);
  });
});

Deno.test("cli: convert .ckpt -> safetensors -> .ckpt gives MindSpore's file back byte for byte, between the check's mark and trailer", async () => {
  await withTempDir(async (dir) => {
    const st = join(dir, "moe.safetensors");
    const back = join(dir, "moe.ckpt");
    let r = await run(["convert", MOE, st]);
    assertStrictEquals(r.code, 0, r.err);
    assertMatch(
      r.out,
      /^wrote .*moe\.safetensors: safetensors, not encrypted, 4 entries/,
    );
    r = await run(["convert", "--json", st, back]);
    assertStrictEquals(r.code, 0, r.err);
    const result = JSON.parse(r.out);
    assertEquals([result.format, result.entries], ["ckpt", 4]);
    assertEquals(result.checksum, await checksumFile(back));
    assertEquals(await bodyOf(back), await Deno.readFile(MOE));
    assertEquals(await listDir(dir), ["moe.ckpt", "moe.safetensors"]);
  });
});

Deno.test("cli: convert keeps append info, strings included", async () => {
  await withTempDir(async (dir) => {
    const saved = await savedCkpt(dir);
    const st = join(dir, "out.safetensors");
    assertStrictEquals((await run(["convert", saved.path, st])).code, 0);
    const a = await loadCheckpoint(saved.path);
    const b = await loadCheckpoint(st);
    assertEquals(new Map([...b].sort()), new Map([...a].sort()));
  });
});

Deno.test("cli: convert refuses to replace a file without --force and writes nothing on failure", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "out.ckpt");
    await Deno.writeTextFile(out, "keep me");
    let r = await run(["convert", ROUTER, out]);
    assertStrictEquals(r.code, 2);
    assertMatch(r.err, /exists; pass --force/);
    assertStrictEquals(await Deno.readTextFile(out), "keep me");
    r = await run(["convert", ROUTER, out, "--force"]);
    assertStrictEquals(r.code, 0);
    assertEquals(await bodyOf(out), await Deno.readFile(ROUTER));

    r = await run(["convert", ROUTER, join(dir, "out.bin")]);
    assertStrictEquals(r.code, 2);
    assertMatch(r.err, /cannot tell the output format/);
    r = await run([
      "convert",
      ROUTER,
      join(dir, "x.safetensors"),
      "--enc-key-hex",
      "00112233445566778899aabbccddeeff",
    ]);
    assertStrictEquals(r.code, 2);

    // A corrupt input: exit 1, no output, no temporary file left.
    const bad = join(dir, "bad.ckpt");
    await Deno.writeFile(bad, (await Deno.readFile(ROUTER)).subarray(0, 100));
    r = await run(["convert", bad, join(dir, "new.safetensors")]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.err, /^error: Cannot read checkpoint .*bad\.ckpt/);
    assertEquals(await listDir(dir), ["bad.ckpt", "out.ckpt"]);
  });
});

Deno.test("cli: safetensors 8-bit floats are shown as such and not converted", async () => {
  await withTempDir(async (dir) => {
    // A hand-made safetensors file with one F8_E4M3 tensor of 4 elements.
    const header = JSON.stringify({
      q: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] },
    }).padEnd(48, " ");
    const file = new Uint8Array(8 + header.length + 4);
    new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
    file.set(new TextEncoder().encode(header), 8);
    file.set([0x38, 0x40, 0xb8, 0x00], 8 + header.length);
    const path = join(dir, "f8.safetensors");
    await Deno.writeFile(path, file);
    const r = await run(["inspect", path]);
    assertStrictEquals(r.code, 0);
    assertMatch(r.out, /q +F8_E4M3 \(as UInt8\) +\[4\] +4\n/);
    const c = await run(["convert", path, join(dir, "f8.ckpt")]);
    assertStrictEquals(c.code, 2);
    assertMatch(c.err, /"q" is F8_E4M3/);
    assertEquals(await listDir(dir), ["f8.safetensors"]);
  });
});

const KEY1 = "00112233445566778899aabbccddeeff";
const KEY2 = "ffeeddccbbaa99887766554433221100";

Deno.test("cli: convert encrypts, inspect names the cipher, and only the right key reads it", async () => {
  await withTempDir(async (dir) => {
    const gcm = join(dir, "router.gcm.ckpt");
    let r = await run(["convert", ROUTER, gcm, "--enc-key-hex", KEY1]);
    assertStrictEquals(r.code, 0, r.err);
    assertMatch(r.out, /: ckpt, AES-GCM, 1 entries/);

    // Without a key: what can be told, and exit 0.
    r = await run(["inspect", gcm]);
    assertStrictEquals(r.code, 0);
    assertMatch(r.out, /cipher: {2}AES-GCM\n/);
    assertMatch(r.out, /entries: unknown \(encrypted; pass --dec-key-hex/);
    assertEquals(
      JSON.parse((await run(["inspect", "--json", gcm])).out).entries,
      null,
    );

    // With the key (the mode is read from the file).
    r = await run(["inspect", "--json", gcm, "--dec-key-hex", KEY1]);
    assertStrictEquals(r.code, 0, r.err);
    assertEquals(
      JSON.parse(r.out).entries.map((e: { name: string }) => e.name),
      [
        "gating.weight",
      ],
    );

    // verify needs the key, and says so.
    r = await run(["verify", gcm]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.err, /encrypted with AES-GCM; pass its key as --dec-key-hex/);
    assertStrictEquals(r.err.split("\n").length, 2);

    // A wrong key says so, and convert writes nothing.
    r = await run(["verify", gcm, "--dec-key-hex", KEY2]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.err, /wrong key or mode/);
    r = await run(["convert", gcm, join(dir, "x.ckpt"), "--dec-key-hex", KEY2]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.err, /wrong key or mode/);

    // A key for a plain file.
    r = await run(["inspect", ROUTER, "--dec-key-hex", KEY1]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.err, /not encrypted, but a key was given/);
    assertEquals(await listDir(dir), ["router.gcm.ckpt"]);
  });
});

Deno.test("cli: convert changes the cipher and decrypts back to MindSpore's bytes", async () => {
  await withTempDir(async (dir) => {
    const gcm = join(dir, "a.ckpt");
    const sm4 = join(dir, "b.ckpt");
    const plain = join(dir, "c.ckpt");
    assertStrictEquals(
      (await run(["convert", MOE, gcm, "--enc-key-hex", KEY1])).code,
      0,
    );
    let r = await run([
      "convert",
      gcm,
      sm4,
      "--dec-key-hex",
      KEY1,
      "--enc-key-hex",
      KEY2,
      "--enc-mode",
      "SM4-CBC",
    ]);
    assertStrictEquals(r.code, 0, r.err);
    r = await run(["inspect", "--json", sm4]);
    assertStrictEquals(JSON.parse(r.out).cipher, "SM4-CBC");
    r = await run([
      "convert",
      sm4,
      plain,
      "--dec-key-hex",
      KEY2,
      "--dec-mode",
      "sm4-cbc",
    ]);
    assertStrictEquals(r.code, 0, r.err);
    assertEquals(await bodyOf(plain), await Deno.readFile(MOE));
    r = await run(["verify", sm4, "--dec-key-hex", KEY2]);
    assertStrictEquals(r.code, 0);
    assertMatch(r.out, /\(ckpt, SM4-CBC\)/);
  });
});

Deno.test("cli: a key of the wrong length or bad hex is a bad argument, exit 2", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "o.ckpt");
    let r = await run([
      "convert",
      ROUTER,
      out,
      "--enc-key-hex",
      "0011223344556677",
      "--enc-mode",
      "SM4-CBC",
    ]);
    assertStrictEquals(r.code, 2);
    assertStrictEquals(
      r.err,
      "error: --enc-key-hex for SM4-CBC: expected 16 bytes, received 8 bytes\n",
    );
    r = await run(["convert", ROUTER, out, "--enc-key-hex", "xyz"]);
    assertStrictEquals(r.code, 2);
    assertMatch(r.err, /--enc-key-hex must be an even number of hex digits/);
    r = await run([
      "inspect",
      ROUTER,
      "--dec-key-hex",
      "00",
      "--dec-mode",
      "AES-CBC",
    ]);
    assertStrictEquals(r.code, 2);
    assertEquals(await listDir(dir), []);
  });
});

Deno.test("cli: progress is drawn only when stdout is a terminal", async () => {
  await withTempDir(async (dir) => {
    const plain = await run(["verify", MOE]);
    assert(!plain.out.includes("\r"));
    const tty = await run(["verify", MOE], { isTerminal: true });
    assertStrictEquals(tty.code, 0);
    const clear = "\r\x1b[K";
    assertMatch(tty.out.split(clear)[1]!, /^verifying golden_moe\.ckpt \d+%/);
    // The line is cleared before the result.
    assert(tty.out.includes(`${clear}OK  `));
    const conv = await run(["convert", MOE, join(dir, "m.safetensors")], {
      isTerminal: true,
    });
    assertMatch(conv.out, /reading golden_moe\.ckpt/);
  });
});

/**
 * Lays out `checkpoint/rank_R/` folders with real checkpoints and a
 * MindFormers meta.json (`last`) or raw `meta` text.
 */
async function layout(
  root: string,
  ranks: { files: string[]; last?: string; meta?: string }[],
) {
  for (const [r, spec] of ranks.entries()) {
    const dir = join(root, "checkpoint", `rank_${r}`);
    await Deno.mkdir(dir, { recursive: true });
    for (const f of spec.files) await saveCheckpoint(join(dir, f), params());
    if (spec.meta !== undefined) {
      await Deno.writeTextFile(join(dir, "meta.json"), spec.meta);
    } else if (spec.last !== undefined) {
      const m = /-(\d+)_(\d+)\./.exec(spec.last)!;
      await Deno.writeTextFile(
        join(dir, "meta.json"),
        JSON.stringify({
          last_epoch: Number(m[1]),
          last_step: Number(m[2]),
          last_ckpt_file: spec.last,
        }),
      );
    }
  }
}

Deno.test("cli: latest picks the newest step every rank has, up to the oldest last, and says why", async () => {
  await withTempDir(async (dir) => {
    await layout(dir, [
      {
        files: [
          "CKP_rank_0-1_4.ckpt",
          "CKP_rank_0-2_2.ckpt",
          "CKP_rank_0-2_4.ckpt",
        ],
        last: "CKP_rank_0-2_4.ckpt",
      },
      {
        files: ["CKP_rank_1-1_4.ckpt", "CKP_rank_1-2_2.ckpt"],
        last: "CKP_rank_1-2_2.ckpt",
      },
    ]);
    const r = await run(["latest", dir]);
    assertStrictEquals(r.code, 0, r.err);
    assertMatch(r.out, /\(2 ranks\)\n/);
    assertMatch(r.out, /resume from: epoch 2, step 2\n/);
    assertMatch(r.out, / {2}rank 1: .*rank_1\/CKP_rank_1-2_2\.ckpt\n/);
    assertMatch(r.out, /resume context: initialStep 12, /);
    assertMatch(r.out, /no newer than the oldest rank's last in meta\.json/);
    const j = JSON.parse((await run(["latest", "--json", dir])).out);
    assertEquals(j.pick.files, [
      join(dir, "checkpoint", "rank_0", "CKP_rank_0-2_2.ckpt"),
      join(dir, "checkpoint", "rank_1", "CKP_rank_1-2_2.ckpt"),
    ]);
    assertEquals([j.source, j.context.stepNum, j.skipped], [
      "meta.json",
      12,
      [],
    ]);
  });
});

Deno.test("cli: latest falls back to the newest step every rank has, warning of bad meta.json", async () => {
  await withTempDir(async (dir) => {
    await layout(dir, [
      {
        files: ["CKP_rank_0-1_4.ckpt", "CKP_rank_0-2_2.ckpt"],
        last: "CKP_rank_0-2_2.ckpt",
      },
      { files: ["CKP_rank_1-1_4.ckpt"], meta: "{not json" },
      {
        files: ["CKP_rank_2-1_4.ckpt", "CKP_rank_2-2_2_breakpoint.ckpt"],
        last: "CKP_rank_2-2_9.ckpt",
      },
    ]);
    const j = JSON.parse((await run(["latest", "--json", dir])).out);
    assertEquals([j.pick.epoch, j.pick.step], [1, 4]);
    assertStrictEquals(j.warnings.length, 1);
    assertMatch(j.warnings[0], /rank_1\/meta\.json is malformed/);
    const r = await run(["latest", dir]);
    assertMatch(r.out, / {2}warning: .*rank_1\/meta\.json is malformed/);
  });
});

Deno.test("cli: latest without any meta.json takes the newest file by time", async () => {
  await withTempDir(async (dir) => {
    await layout(dir, [{ files: ["CKP_rank_0-1_4.ckpt"] }]);
    await new Promise((r) => setTimeout(r, 20));
    await saveCheckpoint(
      join(dir, "checkpoint", "rank_0", "CKP_rank_0-2_1.ckpt"),
      params(),
    );
    const r = await run(["latest", dir]);
    assertStrictEquals(r.code, 0, r.err);
    assertMatch(r.out, /no meta\.json: the newest file \(by time\)/);
    assertMatch(r.out, /resume from: epoch 2, step 1/);
    const none = await run([
      "latest",
      join(dir, "checkpoint", "rank_0", "CKP_rank_0-2_1.ckpt"),
    ]);
    assertStrictEquals(none.code, 2);
    const empty = join(dir, "empty");
    await Deno.mkdir(empty);
    const e = await run(["latest", empty]);
    assertStrictEquals(e.code, 2);
    assertMatch(e.err, /holds no checkpoint\/rank_N folders/);
  });
});

Deno.test("cli: latest skips a corrupted newest checkpoint and names the reason", async () => {
  await withTempDir(async (dir) => {
    const network = params().filter((p) => p.name !== "global_step");
    const monitor = new CheckpointMonitor({
      directory: dir,
      saveCheckpointSteps: 2,
      keepCheckpointMax: 10,
    });
    await train({
      epochs: 1,
      stepsPerEpoch: 4,
      network,
      step: () => {},
      callbacks: [monitor],
    });
    await monitor.close();
    const newest = join(dir, "checkpoint", "rank_0", "CKP_rank_0-1_4.ckpt");
    await Deno.chmod(newest, 0o600);
    const bytes = await Deno.readFile(newest);
    bytes[bytes.length - 1]! ^= 0xff;
    await Deno.writeFile(newest, bytes);

    const r = await run(["latest", dir]);
    assertStrictEquals(r.code, 0, r.err);
    assertMatch(r.out, /resume from: epoch 1, step 2\n/);
    assertMatch(
      r.out,
      / {2}skipped rank 0 .*CKP_rank_0-1_4\.ckpt \(checksum\): its checksum is /,
    );
    const j = JSON.parse((await run(["latest", "--json", dir])).out);
    assertEquals(j.skipped.map((s: { kind: string }) => s.kind), ["checksum"]);
    assertStrictEquals(j.context.initialStep, 2);

    // Nothing verifies: exit 1, one line naming why.
    const older = join(dir, "checkpoint", "rank_0", "CKP_rank_0-1_2.ckpt");
    await Deno.chmod(older, 0o600);
    await Deno.writeFile(older, new Uint8Array([1, 2, 3]));
    const bad = await run(["latest", dir]);
    assertStrictEquals(bad.code, 1);
    assertMatch(bad.err, /^error: .*no checkpoint to resume from verifies: /);
    assertMatch(bad.err, /CKP_rank_0-1_2\.ckpt: it has 3 bytes/);
    assertStrictEquals(bad.err.split("\n").length, 2);
  });
});

Deno.test("cli: runs as a program (deno run cli.ts)", async () => {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const ok = await new Deno.Command("deno", {
    args: ["run", `--allow-read=${FIXTURES}`, cli, "inspect", "--json", ROUTER],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assertStrictEquals(ok.code, 0, new TextDecoder().decode(ok.stderr));
  assertEquals(
    JSON.parse(new TextDecoder().decode(ok.stdout)).entries.length,
    1,
  );
  const bad = await new Deno.Command("deno", {
    args: ["run", `--allow-read=${FIXTURES}`, cli, "nonsense"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assertStrictEquals(bad.code, 2);
  assertStrictEquals(new TextDecoder().decode(bad.stdout), "");
  assertMatch(
    new TextDecoder().decode(bad.stderr),
    /unknown command "nonsense"/,
  );
});

Deno.test("cli: a permission error says which flags and command reach the user's folders, without repeating keys", async () => {
  const r = await run([
    "convert",
    "/etc/in.ckpt",
    "/etc/out dir/x.ckpt",
    "--dec-key-hex",
    "00112233445566778899aabbccddeeff",
  ]);
  assertStrictEquals(r.code, 2);
  assertMatch(r.err, /^error: .*--allow-read/);
  assertMatch(
    r.err,
    /deno run '-R=\/etc,\/etc\/out dir' '-W=\/etc\/out dir' jsr:@ckpt\/monitor\/cli convert \/etc\/in\.ckpt '\/etc\/out dir\/x\.ckpt' --dec-key-hex <key>\n/,
  );
  assert(!r.err.includes("00112233"), r.err);
  // The library's own PermissionDenied (findResumeCheckpoint) reaches the
  // user the same way, in a process with only the repository readable.
  await withTempDir(async (dir) => {
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const out = await new Deno.Command("deno", {
      args: ["run", "--allow-read=.", cli, "latest", dir],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assertStrictEquals(out.code, 2);
    const err = new TextDecoder().decode(out.stderr);
    assertMatch(err, new RegExp(`^error: .*${dir}.*--allow-read`));
    assert(
      err.includes(`deno run -R=${dir} jsr:@ckpt/monitor/cli latest ${dir}\n`),
      err,
    );
  });
});

Deno.test("cli: an unknown option or command suggests the nearest, in balanced quotes", async () => {
  for (
    const [args, message] of [
      [
        ["inspect", "--dec-key", "00", ROUTER],
        'unknown option "--dec-key" (did you mean --dec-key-hex?)',
      ],
      [
        ["verify", "--jsn", ROUTER],
        'unknown option "--jsn" (did you mean --json?)',
      ],
      [
        ["verify", "--enc-kye-hex=00", ROUTER],
        'unknown option "--enc-kye-hex" (did you mean --enc-key-hex?)',
      ],
      [["verify", "--frobnicate", ROUTER], 'unknown option "--frobnicate"'],
    ] as const
  ) {
    const r = await run([...args]);
    assertStrictEquals(r.code, 2);
    assertStrictEquals(r.err.split("\n")[0], `error: ${message}`);
  }
  const r = await run(["inpsect", ROUTER]);
  assertStrictEquals(
    r.err,
    'error: unknown command "inpsect" (did you mean inspect?)\n',
  );
});

Deno.test("cli: verify compares with meta.json even when the file does not parse, and fails a malformed meta.json", async () => {
  await withTempDir(async (dir) => {
    const saved = await savedCkpt(dir);
    const entry = {
      name: "CKP_rank_0-2_4.ckpt",
      bytes: saved.bytes,
      checksum: saved.checksum,
      epoch: 2,
      step: 4,
      global_step: 12,
    };
    const metaPath = join(dir, "meta.json");
    await Deno.writeTextFile(
      metaPath,
      JSON.stringify({
        last_epoch: 2,
        last_step: 4,
        last_ckpt_file: entry.name,
        files: [entry],
      }),
    );
    const bytes = await Deno.readFile(saved.path);
    await Deno.chmod(saved.path, 0o600);
    await Deno.writeFile(saved.path, bytes.subarray(0, 30));
    let r = await run(["verify", saved.path]);
    assertStrictEquals(r.code, 1);
    assert(!r.out.includes("none beside the file"), r.out);
    assertMatch(r.out, /meta\.json: MISMATCH/);
    assertMatch(r.out, /problem: size is 30 bytes, meta\.json records/);

    // A malformed meta.json fails the file, as verifyCheckpoint does.
    await Deno.writeFile(saved.path, bytes);
    await Deno.writeTextFile(metaPath, JSON.stringify({ last_epoch: "x" }));
    r = await run(["verify", saved.path]);
    assertStrictEquals(r.code, 1);
    assertMatch(r.out, /^FAILED/);
    assertMatch(r.out, /meta\.json: MALFORMED/);
    assertMatch(
      r.out,
      /problem: meta\.json beside the file is malformed: "last_epoch"/,
    );
    const { verifyCheckpoint } = await import("../mod.ts");
    assertStrictEquals((await verifyCheckpoint(saved.path)).ok, false);
  });
});

Deno.test("cli: latest names a breakpoint pick", async () => {
  await withTempDir(async (dir) => {
    const w = {
      dtype: "Float32" as const,
      shape: [1],
      data: new Float32Array(1),
    };
    const monitor = new CheckpointMonitor({
      directory: dir,
      saveCheckpointSteps: 2,
      saveNetworkParams: false,
      exceptionSave: true,
    });
    await train({
      epochs: 1,
      stepsPerEpoch: 10,
      network: { w },
      step: ({ step }) => {
        if (step === 5) throw new Error("boom");
      },
      callbacks: [monitor],
    }).catch(() => {});
    await monitor.close();
    const r = await run(["latest", dir]);
    assertStrictEquals(r.code, 0, r.err);
    assertMatch(r.out, /resume from: epoch 1, step 5 \(a breakpoint/);
    assertMatch(r.out, /CKP_rank_0-1_5_breakpoint\.ckpt/);
  });
});

Deno.test("src/cli reaches files only through the store: no Deno file calls", async () => {
  const folder = new URL("../src/cli/", import.meta.url);
  const file =
    /Deno\.(open|stat|lstat|readFile|readTextFile|writeFile|writeTextFile|remove|rename|readDir|mkdir|copyFile|truncate|chmod|symlink|realPath|makeTemp)/;
  for await (const e of Deno.readDir(folder)) {
    const text = await Deno.readTextFile(new URL(e.name, folder));
    const hit = text.split("\n").find((line) => file.test(line));
    assertStrictEquals(hit, undefined, `${e.name}: ${hit}`);
  }
});
