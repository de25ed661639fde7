// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Every feature as a user runs it: a script in another folder imports the
// library by URL and runs with exactly the flags the README documents
// (read and write for the checkpoint folder, nothing else). Each must exit
// 0 with nothing on stderr: no permission prompt, no stray Worker error, no
// silent fallback that prints.

import { equal } from "node:assert/strict";
import { withTempDir } from "./_helpers.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;
const CLI = new URL("../cli.ts", import.meta.url).href;

/** The user's script: one feature per run, checking its own results. */
const SCRIPT = `
import {
  CheckpointMonitor, findResumeCheckpoint, loadCheckpoint, loadParamsInto,
  mergeSlicedCheckpoints, openCheckpoint, saveCheckpoint, verifyCheckpoint,
} from "${MOD}";

const [feature, dir] = Deno.args;
const fail = (msg) => { console.log("FAIL " + msg); Deno.exit(1); };
const net = (step, n = 1 << 19) => {
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += 997) data[i] = step + i;
  return [{ name: "w", dtype: "Float32", shape: [n], data }];
};
const key = new Uint8Array(16).fill(7);
const cipher = {
  "aes-gcm": { encKey: key, encMode: "AES-GCM" },
  "aes-cbc": { encKey: key, encMode: "AES-CBC" },
  "sm4": { encKey: key, encMode: "SM4-CBC" },
}[feature];

async function run(options, steps = 4, network = net(0)) {
  const monitor = new CheckpointMonitor({
    directory: dir, saveCheckpointSteps: 2, ...options,
  });
  for (let step = 1; step <= steps; step++) {
    for (const p of network) if (p.name === "w") p.data[0] = step;
    await monitor.onStepEnd({ step, epoch: 1, stepsPerEpoch: steps, network });
  }
  await monitor.onTrainEnd({ step: steps, epoch: 1, stepsPerEpoch: steps, network });
  await monitor.close();
}

async function resumeCheck(load = {}, n = 1 << 19) {
  const found = await findResumeCheckpoint(dir, load);
  if (found === null) fail("nothing to resume");
  if (found.step !== 4) fail("resumed from step " + found.step);
  const target = net(0, n);
  await loadParamsInto(target, await loadCheckpoint(found.files[0], load), { strict: true });
  if (target[0].data[0] !== 4) fail("restored " + target[0].data[0]);
}

switch (feature) {
  case "plain": case "resume":
    await run({}); await resumeCheck(); break;
  case "async":
    await run({ asyncSave: true }); await resumeCheck(); break;
  case "aes-gcm": case "aes-cbc": case "sm4":
    // 4 Mi elements: several encrypted blocks (and SM4's Workers).
    await run({ ...cipher }, 4, net(0, 1 << 20));
    await resumeCheck({ decKey: key }, 1 << 20);
    break;
  case "safetensors":
    await run({ format: "safetensors" }); await resumeCheck(); break;
  case "ranks": {
    const slice = (rank) => [{
      name: "m", dtype: "Float32", shape: [1, 4],
      data: new Float32Array([rank, rank, rank, rank]),
      slice: { globalShape: [2, 4], offset: [rank, 0] },
    }];
    for (const rank of [0, 1]) await run({ rank, rankSize: 2 }, 4, slice(rank));
    const found = await findResumeCheckpoint(dir);
    if (found === null || found.files.length !== 2) fail("ranks not found");
    const out = dir + "/merged.ckpt";
    await mergeSlicedCheckpoints(found.files, out);
    const m = (await loadCheckpoint(out)).get("m");
    if (m.data.join() !== "0,0,0,0,1,1,1,1") fail("merged " + m.data.join());
    break;
  }
  case "verify": {
    const path = dir + "/one.ckpt";
    const saved = await saveCheckpoint(path, net(3));
    const r = await verifyCheckpoint(path, { expected: saved });
    if (!r.ok) fail("verify " + r.reason);
    await using reader = await openCheckpoint(path);
    if (reader.entries.length !== 1) fail("entries");
    break;
  }
  default: fail("unknown feature " + feature);
}
console.log("OK " + feature);
`;

async function runUser(
  dir: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-check",
      "--quiet",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      ...args,
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

const FEATURES = [
  "plain",
  "async",
  "aes-gcm",
  "aes-cbc",
  "sm4",
  "safetensors",
  "ranks",
  "verify",
];

for (const feature of FEATURES) {
  Deno.test(`as a user runs it, with only --allow-read/--allow-write for the folder: ${feature}`, async () => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/user.mjs`, SCRIPT);
      const r = await runUser(dir, [`${dir}/user.mjs`, feature, dir]);
      equal(r.stderr, "", `stderr of ${feature}: ${r.stderr}`);
      equal(r.stdout.trim(), `OK ${feature}`, r.stdout);
      equal(r.code, 0);
    });
  });
}

Deno.test("as a user runs it: the CLI verifies and inspects a file with folder-only flags", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/user.mjs`, SCRIPT);
    const made = await runUser(dir, [`${dir}/user.mjs`, "plain", dir]);
    equal(made.code, 0, made.stdout + made.stderr);
    const meta = JSON.parse(
      await Deno.readTextFile(`${dir}/checkpoint/rank_0/meta.json`),
    );
    const file = `${dir}/checkpoint/rank_0/${meta.last_ckpt_file}`;
    for (const command of ["verify", "inspect", "latest"]) {
      const target = command === "latest" ? dir : file;
      const r = await runUser(dir, [CLI, command, target]);
      equal(r.code, 0, `${command}: ${r.stdout}${r.stderr}`);
      equal(r.stderr, "", `${command} stderr`);
    }
  });
});
