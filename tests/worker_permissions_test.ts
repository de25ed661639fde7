// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The library's Workers under the README's least privilege: a user's script
// in a folder of its own imports the library by URL and runs with exactly
// `--allow-read=<dir> --allow-write=<dir>`. The Workers start from bundled
// code, so they need no read access to the library's files, and nothing
// falls back, crashes or prints behind the user's back.
import { equal } from "node:assert/strict";
import { withTempDir } from "./_helpers.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;
const SM4_POOL = new URL("../src/crypto/_sm4_pool.ts", import.meta.url).href;
const SAVE_QUEUE = new URL(
  "../src/background/save_queue.ts",
  import.meta.url,
).href;

/**
 * Runs `source` in a fresh folder and asserts that it ended on its own,
 * printed `stdout` and no error.
 */
async function expectUser(source: string, stdout: string): Promise<void> {
  await withTempDir(async (dir) => {
    const run = await runUser(dir, source);
    equal(run.stderr, "");
    equal(run.code, 0);
    equal(run.stdout, stdout);
  });
}

/** Runs `source` as a script in `dir` with read and write for `dir` only. */
async function runUser(
  dir: string,
  source: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `${dir}/user.ts`;
  await Deno.writeTextFile(script, source);
  const child = new Deno.Command("deno", {
    args: ["run", `--allow-read=${dir}`, `--allow-write=${dir}`, script, dir],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A child kept alive by a Worker would never end: give up after a while
  // (a failure, not a timing: a healthy child ends on its own).
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  try {
    const { code, stdout, stderr } = await child.output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code, stdout: text(stdout), stderr: text(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("least privilege: asyncSave with SM4-CBC saves through the Worker (and its SM4 workers) with folder-only flags", async () => {
  await expectUser(
    `import { CheckpointMonitor, loadCheckpoint } from "${MOD}";
const dir = Deno.args[0];
const key = new Uint8Array(16).fill(7);
const w = { dtype: "Float32", shape: [300000], data: new Float32Array(300000) };
const monitor = new CheckpointMonitor({
  directory: dir, asyncSave: true, saveCheckpointSteps: 1, appendInfo: [],
  saveNetworkParams: false, encKey: key, encMode: "SM4-CBC",
});
for (let step = 1; step <= 3; step++) {
  w.data.fill(step);
  await monitor.onStepEnd({ step, epoch: 1, stepsPerEpoch: 10, network: { w } });
}
await monitor.onTrainEnd({ step: 3, epoch: 1, stepsPerEpoch: 10, network: { w } });
await monitor.close();
const back = await loadCheckpoint(dir + "/checkpoint/rank_0/CKP_rank_0-1_3.ckpt", { decKey: key, decMode: "SM4-CBC" });
console.log("w", back.get("w").data.every((x) => x === 3));
`,
    "w true\n",
  );
});

Deno.test("least privilege: SM4 runs in its worker threads with folder-only flags, no fallback, nothing printed", async () => {
  await expectUser(
    `import { importCipher } from "${MOD}";
import { _sm4WorkersRunning } from "${SM4_POOL}";
const cipher = await importCipher(new Uint8Array(16).fill(1), "SM4-CBC");
const iv = new Uint8Array(16);
const plain = new Uint8Array(1 << 20).fill(5);
const sealed = await cipher.encrypt(plain, iv);
const workers = _sm4WorkersRunning();
const opened = await cipher.decrypt(sealed, iv);
cipher.destroy();
console.log("workers", workers, "round trip", opened.every((x) => x === 5));
`,
    "workers true round trip true\n",
  );
});

Deno.test("an idle save Worker never keeps the process alive, even with no idle stop and no close()", async () => {
  await expectUser(
    `import { SaveQueue } from "${SAVE_QUEUE}";
const queue = new SaveQueue({ idleMs: Infinity });
const w = { dtype: "Float32", shape: [4], data: new Float32Array(4) };
await queue.enqueue([{ path: Deno.args[0] + "/a.ckpt", network: { w } }]);
await queue.flush();
console.log("done");
`,
    "done\n",
  );
});
