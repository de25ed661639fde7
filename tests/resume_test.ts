// Copyright 2026 the @ckpt/monitor authors. MIT license.
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { basename } from "node:path";
import {
  type CheckpointStore,
  CorruptCheckpointError,
  EncryptionMismatchError,
  findResumeCheckpoint,
  localStore,
  saveCheckpoint,
} from "../mod.ts";
import { spawnChild, withTempDir } from "./_helpers.ts";
import { flip, model, names, run } from "./_resume_helpers.ts";

Deno.test("findResumeCheckpoint returns null for a fresh folder", async () => {
  await withTempDir(async (dir) => {
    equal(await findResumeCheckpoint(dir), null);
    await Deno.mkdir(`${dir}/checkpoint/rank_0`, { recursive: true });
    equal(await findResumeCheckpoint(dir), null);
  });
});

Deno.test("findResumeCheckpoint picks the newest checkpoint in meta.json with MindFormers' resume context", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 7);
    const found = await findResumeCheckpoint(dir, { stepsPerEpoch: 5 });
    ok(found);
    // Steps 2, 4, 6 saved; step 7 was not (the run stopped at step 8).
    deepEqual(names(found.files), ["CKP_rank_0-2_1.ckpt"]);
    equal(found.source, "meta.json");
    equal(found.epoch, 2);
    equal(found.step, 1);
    deepEqual(found.skipped, []);
    deepEqual(found.context, {
      initialStep: 6,
      initialEpoch: 1,
      epochNum: 2,
      stepNum: 6,
      globalStep: 6,
      lossScale: 1,
      globalBatchSize: null,
      stepScale: 1,
    });
    // Without stepsPerEpoch, epochs completed come from meta.json's numbers.
    equal((await findResumeCheckpoint(dir))?.context.initialEpoch, 1);
    // The folder of rank folders works too.
    deepEqual(
      (await findResumeCheckpoint(`${dir}/checkpoint`))?.files,
      found.files,
    );
  });
});

Deno.test("findResumeCheckpoint skips a corrupt, truncated or missing newest file with the reason", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 8); // saves at 2, 4, 6, 8 = 1_2, 1_4, 2_1, 2_3
    const folder = `${dir}/checkpoint/rank_0`;
    await flip(`${folder}/CKP_rank_0-2_3.ckpt`);
    let found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), ["CKP_rank_0-2_1.ckpt"]);
    equal(found!.skipped.length, 1);
    equal(found!.skipped[0]!.kind, "checksum");
    equal(found!.context.initialStep, 6);

    await Deno.truncate(`${folder}/CKP_rank_0-2_1.ckpt`, 10);
    await Deno.remove(`${folder}/CKP_rank_0-1_4.ckpt`);
    found = await findResumeCheckpoint(dir, { verify: "full" });
    deepEqual(names(found!.files), ["CKP_rank_0-1_2.ckpt"]);
    deepEqual(found!.skipped.map((s) => s.kind), [
      "checksum",
      "size",
      "missing",
    ]);

    await flip(`${folder}/CKP_rank_0-1_2.ckpt`, 3);
    const e = await rejects(findResumeCheckpoint(dir), (e: unknown) => {
      ok(e instanceof CorruptCheckpointError);
      ok(e.message.includes("no checkpoint to resume from verifies"));
      ok(e.message.includes("CKP_rank_0-1_2.ckpt"), e.message);
      return true;
    });
    void e;
  });
});

Deno.test("findResumeCheckpoint never picks files meta.json does not list, and ignores foreign files", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 4);
    const folder = `${dir}/checkpoint/rank_0`;
    await Deno.writeTextFile(
      `${folder}/CKP_rank_0-9_9.ckpt`,
      "not a checkpoint",
    );
    await Deno.writeTextFile(`${folder}/notes.txt`, "hello");
    await Deno.writeTextFile(
      `${folder}/.CKP_rank_0-3_1.ckpt.0123456789ab.tmp`,
      "x",
    );
    const found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), ["CKP_rank_0-1_4.ckpt"]);
    deepEqual(found!.skipped, []);
  });
});

Deno.test("findResumeCheckpoint warns about a malformed meta.json and falls back to names and structure", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 6);
    const folder = `${dir}/checkpoint/rank_0`;
    await Deno.chmod(`${folder}/meta.json`, 0o600);
    await Deno.writeTextFile(`${folder}/meta.json`, '{"last_epoch": "x"');
    await Deno.writeTextFile(`${folder}/CKP_rank_0-9_9.ckpt`, "garbage");
    const found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), ["CKP_rank_0-2_1.ckpt"]);
    equal(found!.warnings.length, 1);
    ok(found!.warnings[0]!.includes("not valid JSON"), found!.warnings[0]);
    deepEqual(found!.skipped.map((s) => [basename(s.file), s.kind]), [[
      "CKP_rank_0-9_9.ckpt",
      "corrupt",
    ]]);
  });
});

Deno.test("findResumeCheckpoint without meta.json takes the newest files present for every rank", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 6, { rank: 0 });
    await run(dir, 4, { rank: 1 });
    for (const r of [0, 1]) {
      await Deno.remove(`${dir}/checkpoint/rank_${r}/meta.json`);
    }
    const found = await findResumeCheckpoint(dir);
    equal(found!.source, "mtime");
    deepEqual(names(found!.files), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_1-1_4.ckpt",
    ]);
  });
});

Deno.test("findResumeCheckpoint skips the checkpoint of another model when given the network", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 4);
    const other = [{
      name: "w",
      dtype: "Float32" as const,
      shape: [3, 2],
      data: new Float32Array(6),
    }];
    await rejects(
      findResumeCheckpoint(dir, { network: other }),
      /parameter "w" is Float32 \[2, 3\] in it, Float32 \[3, 2\] in the network/,
    );
    const found = await findResumeCheckpoint(dir, { network: model() });
    deepEqual(names(found!.files), ["CKP_rank_0-1_4.ckpt"]);
    await rejects(
      findResumeCheckpoint(dir, {
        network: [...model(), {
          name: "extra",
          dtype: "Int8",
          shape: [],
          data: new Int8Array(1),
        }],
      }),
      /lacks parameter "extra"/,
    );
  });
});

Deno.test("findResumeCheckpoint rescales progress when the global batch size changes", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 8, { globalBatchSize: 64 });
    const same = await findResumeCheckpoint(dir, { globalBatchSize: 64 });
    equal(same!.context.stepScale, 1);
    equal(same!.context.initialStep, 8);
    const found = await findResumeCheckpoint(dir, {
      globalBatchSize: 128,
      stepsPerEpoch: 5,
    });
    equal(found!.context.globalBatchSize, 64);
    equal(found!.context.stepScale, 0.5);
    equal(found!.context.initialStep, 4);
    equal(found!.context.globalStep, 4);
    equal(found!.context.initialEpoch, 0);
  });
});

Deno.test("findResumeCheckpoint rejects bad options", async () => {
  await rejects(findResumeCheckpoint(3 as never), TypeError);
  await rejects(findResumeCheckpoint("x", { globalBatchSize: 0 }), RangeError);
  await rejects(
    findResumeCheckpoint("x", { stepsPerEpoch: "5" as never }),
    TypeError,
  );
  await rejects(
    findResumeCheckpoint("x", { verify: "none" as never }),
    RangeError,
  );
});

Deno.test("findResumeCheckpoint passes decKey/decMode through, and says so when an encrypted checkpoint has no key", async () => {
  await withTempDir(async (dir) => {
    const key = new Uint8Array(32).fill(7);
    await run(dir, 4, { encKey: key, encMode: "AES-GCM" });
    const found = await findResumeCheckpoint(dir, {
      decKey: key,
      decMode: "AES-GCM",
      verify: "full",
    });
    deepEqual(names(found!.files), ["CKP_rank_0-1_4.ckpt"]);
    equal(found!.context.stepNum, 4);
    await rejects(findResumeCheckpoint(dir), /encrypted with AES-GCM/);
  });
});

Deno.test("findResumeCheckpoint reads MindFormers' own three-key meta.json: its prefix, up to its last file", async () => {
  await withTempDir(async (dir) => {
    const folder = `${dir}/checkpoint/rank_0`;
    await Deno.mkdir(folder, { recursive: true });
    for (const [e, s, step] of [[1, 5, 5], [2, 5, 10], [3, 5, 15]]) {
      await saveCheckpoint(`${folder}/llama_rank_0-${e}_${s}.ckpt`, model(), {
        appendInfo: { epoch_num: e!, step_num: step! },
      });
    }
    await saveCheckpoint(`${folder}/other_rank_0-9_5.ckpt`, model());
    await Deno.writeTextFile(
      `${folder}/meta.json`,
      JSON.stringify({
        last_epoch: 2,
        last_step: 5,
        last_ckpt_file: "llama_rank_0-2_5.ckpt",
      }),
    );
    const found = await findResumeCheckpoint(dir, { stepsPerEpoch: 5 });
    deepEqual(names(found!.files), ["llama_rank_0-2_5.ckpt"]);
    equal(found!.context.initialStep, 10);
    equal(found!.context.initialEpoch, 2);
  });
});

Deno.test("findResumeCheckpoint resumes from the newest breakpoint that verifies, not one a later run saved past", async () => {
  await withTempDir(async (dir) => {
    // Saves at steps 2, 4, 6; the loop throws in step 8: a breakpoint there.
    await run(dir, 7, { exceptionSave: true });
    const folder = `${dir}/checkpoint/rank_0`;
    let found = await findResumeCheckpoint(dir, { stepsPerEpoch: 5 });
    deepEqual(names(found!.files), ["CKP_rank_0-2_3_breakpoint.ckpt"]);
    equal(found!.breakpoint, true);
    equal(found!.context.stepNum, 8);
    equal(found!.context.initialEpoch, 1);
    // A damaged breakpoint (nothing records its checksum: every entry is
    // read) falls back to the newest regular file.
    await Deno.truncate(`${folder}/CKP_rank_0-2_3_breakpoint.ckpt`, 40);
    found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), ["CKP_rank_0-2_1.ckpt"]);
    equal(found!.breakpoint, undefined);
    deepEqual(found!.skipped.map((s) => [basename(s.file), s.kind]), [[
      "CKP_rank_0-2_3_breakpoint.ckpt",
      "corrupt",
    ]]);
    // A later run that saved (meta.json rewritten after the breakpoint):
    // the old breakpoint is not a candidate, whatever its step.
    await Deno.remove(`${folder}/CKP_rank_0-2_3_breakpoint.ckpt`);
    await run(dir, 7, { exceptionSave: true });
    await run(dir, 4);
    found = await findResumeCheckpoint(dir);
    deepEqual(names(found!.files), ["CKP_rank_0_2-1_4.ckpt"]);
    deepEqual(found!.skipped, []);
  });
});

Deno.test("findResumeCheckpoint takes decKey without decMode, and a folder of encrypted files without a key says a key is needed", async () => {
  await withTempDir(async (dir) => {
    const key = new Uint8Array(16).fill(9);
    await run(dir, 4, { encKey: key, encMode: "SM4-CBC" });
    const found = await findResumeCheckpoint(dir, { decKey: key });
    deepEqual(names(found!.files), ["CKP_rank_0-1_4.ckpt"]);
    equal(found!.context.stepNum, 4);
    await rejects(findResumeCheckpoint(dir), (e: unknown) => {
      ok(e instanceof EncryptionMismatchError, String(e));
      ok(!(e instanceof CorruptCheckpointError));
      ok(
        /CKP_rank_0-1_4\.ckpt.*encrypted with SM4-CBC; pass its key/.test(
          e.message,
        ),
        e.message,
      );
      return true;
    });
  });
});

Deno.test("findResumeCheckpoint without meta.json takes the newest file that verifies, skipping damaged ones and ones without a step", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 8); // 1_2, 1_4, 2_1, 2_3
    const folder = `${dir}/checkpoint/rank_0`;
    await Deno.remove(`${folder}/meta.json`);
    await Deno.chmod(`${folder}/CKP_rank_0-2_3.ckpt`, 0o600);
    await Deno.truncate(`${folder}/CKP_rank_0-2_3.ckpt`, 100);
    // Newest by time, but records no step: skipped, not thrown.
    await saveCheckpoint(`${folder}/CKP_rank_0-3_1.ckpt`, model());
    const found = await findResumeCheckpoint(dir);
    equal(found!.source, "mtime");
    deepEqual(names(found!.files), ["CKP_rank_0-2_1.ckpt"]);
    deepEqual(found!.skipped.map((s) => [basename(s.file), s.kind]), [
      ["CKP_rank_0-3_1.ckpt", "corrupt"],
      ["CKP_rank_0-2_3.ckpt", "corrupt"],
    ]);
    ok(/neither step_num nor global_step/.test(found!.skipped[0]!.reason));
  });
});

/**
 * Makes a symbolic link with `ln -s` (Deno.symlink needs unscoped read and
 * write permission; the suite grants `--allow-run=ln` instead).
 */
async function symlink(target: string, path: string): Promise<void> {
  const r = await new Deno.Command("ln", { args: ["-s", target, path] })
    .output();
  equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

Deno.test("findResumeCheckpoint follows symlinked rank folders and files, and says why when a link leads nowhere", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/out`;
    await Deno.mkdir(`${out}/checkpoint`, { recursive: true });
    // rank_0 and rank_1 live elsewhere; the monitors write through the links.
    for (const r of [0, 1]) {
      await Deno.mkdir(`${dir}/disk${r}`);
      await symlink(`${dir}/disk${r}`, `${out}/checkpoint/rank_${r}`);
      await run(out, 4, { rank: r });
    }
    let found = await findResumeCheckpoint(out);
    deepEqual(names(found!.files), [
      "CKP_rank_0-1_4.ckpt",
      "CKP_rank_1-1_4.ckpt",
    ]);
    // A checkpoint file that is a link to the real file.
    await Deno.rename(`${dir}/disk1/CKP_rank_1-1_4.ckpt`, `${dir}/moved.ckpt`);
    await symlink(`${dir}/moved.ckpt`, `${dir}/disk1/CKP_rank_1-1_4.ckpt`);
    found = await findResumeCheckpoint(out);
    deepEqual(found!.skipped, []);
    equal(found!.files[1], `${out}/checkpoint/rank_1/CKP_rank_1-1_4.ckpt`);
    // A dangling link named like a checkpoint is reported, not silent.
    await symlink(`${dir}/gone.ckpt`, `${dir}/disk0/CKP_rank_0-9_9.ckpt`);
    found = await findResumeCheckpoint(out);
    ok(
      found!.warnings.some((w) =>
        /CKP_rank_0-9_9\.ckpt: it is not a regular file/.test(w)
      ),
      found!.warnings.join("\n"),
    );
    // A rank folder that is a dangling link is an error, not one rank fewer.
    await Deno.remove(`${dir}/disk1`, { recursive: true });
    await rejects(
      findResumeCheckpoint(out),
      /rank_1 is not a folder \(a link to nothing, or a file\)/,
    );
  });
});

Deno.test("findResumeCheckpoint never returns null while checkpoints are there: a rank folder given, or files it cannot use", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 4);
    const folder = `${dir}/checkpoint/rank_0`;
    await rejects(
      findResumeCheckpoint(folder),
      /Cannot resume from .*: no rank_N folder here, but checkpoints are: .*CKP_rank_0-1_2\.ckpt.*pass the monitor's directory/,
    );
    const other = `${dir}/other/checkpoint/rank_0`;
    await Deno.mkdir(other, { recursive: true });
    await saveCheckpoint(`${other}/model.ckpt`, model());
    await rejects(
      findResumeCheckpoint(`${dir}/other`),
      /model\.ckpt: it is not named \{prefix\}-\{epoch\}_\{step\}/,
    );
  });
});

Deno.test("findResumeCheckpoint skips a candidate removed while it is checked (a running monitor's retention)", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 6); // 1_2, 1_4, 2_1
    const victim = `${dir}/checkpoint/rank_0/CKP_rank_0-2_1.ckpt`;
    const bytes = await Deno.readFile(victim);
    // The local store, except that the newest file is removed just before
    // its n-th opening (its check, its full read, its resume context), as
    // retention would remove it.
    for (const verify of ["checksum", "full"] as const) {
      for (let n = 1;; n++) {
        let opened = 0;
        let removed = false;
        const store: CheckpointStore = Object.create(localStore);
        store.open = async (path: string) => {
          if (path === victim && ++opened === n) {
            await Deno.remove(victim);
            removed = true;
          }
          return await localStore.open(path);
        };
        const found = await findResumeCheckpoint(dir, { store, verify });
        if (!removed) {
          deepEqual(names(found!.files), ["CKP_rank_0-2_1.ckpt"]);
          ok(n > 2, `only ${n - 1} openings`);
          break;
        }
        deepEqual(names(found!.files), ["CKP_rank_0-1_4.ckpt"], `${n}`);
        deepEqual(found!.skipped.map((s) => s.kind), ["missing"]);
        await Deno.writeFile(victim, bytes, { mode: 0o600 });
      }
    }
  });
});

Deno.test("findResumeCheckpoint without read permission names the flag", async () => {
  await withTempDir(async (dir) => {
    await run(dir, 2);
    const script = `${dir}/child.ts`;
    await Deno.writeTextFile(
      script,
      `import { findResumeCheckpoint } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
try { await findResumeCheckpoint(Deno.args[0]); console.log("no error"); }
catch (e) { console.log(e.name + ": " + e.message); }`,
    );
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "--no-check",
        "--quiet",
        `--allow-read=${script}`,
        script,
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    ok(
      text.startsWith(
        `PermissionDenied: Cannot read checkpoints in "${dir}": read permission is missing; run with --allow-read=${dir}`,
      ),
      text + new TextDecoder().decode(out.stderr),
    );
  });
});

Deno.test("findResumeCheckpoint racing a monitor that saves and removes every step never fails", async () => {
  await withTempDir(async (dir) => {
    // The crash harness's child: saves at every step, keeps 2, until killed.
    const child = spawnChild(
      new URL("./_crash_child.ts", import.meta.url).pathname,
      dir,
      [dir, "1024"],
    );
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let ready = "";
      while (!ready.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        ready += value;
      }
      reader.releaseLock();
      ok(ready.includes('"pid"'), ready);
      let calls = 0;
      let last = 0;
      const end = performance.now() + 2500;
      while (performance.now() < end) {
        const found = await findResumeCheckpoint(dir);
        if (found === null) continue; // Before the first commit.
        calls++;
        ok(found.context.stepNum >= last, `${found.context.stepNum} < ${last}`);
        last = found.context.stepNum;
      }
      ok(calls > 20, `only ${calls} calls`);
      ok(last > 20, `the child saved only ${last} steps`);
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel();
    }
  });
});

Deno.test("order (the pure step of findResumeCheckpoint): breakpoints after meta.json first, then steps every rank has, newest first", async () => {
  const { order } = await import("../src/resume/_candidates.ts");
  const file = (name: string, mtime: number) => {
    const m = /-(\d+)_(\d+)(_breakpoint)?\./.exec(name)!;
    return {
      name,
      epoch: Number(m[1]),
      step: Number(m[2]),
      breakpoint: m[3] !== undefined,
      mtime,
    };
  };
  const listed = (name: string) => {
    const f = file(name, 0);
    return {
      name,
      bytes: 1,
      checksum: "crc32:00000000",
      epoch: f.epoch,
      step: f.step,
      global_step: f.step,
    };
  };
  const meta = (names: string[]) => ({
    kind: "ok" as const,
    meta: {
      last_epoch: 1,
      last_step: 50,
      last_ckpt_file: names.at(-1)!,
      enc_mode: null,
      prefix: null,
      rank: 0,
      files: names.map(listed),
    },
  });
  const rank = (folder: string, onDisk: ReturnType<typeof file>[]) => ({
    folder,
    meta: meta(["P-1_40.ckpt", "P-1_50.ckpt"]),
    metaMtime: 100,
    onDisk,
    strays: [],
  });
  const steps = (g: Parameters<typeof order>[0]) =>
    order(g).steps.map((s) =>
      `${s.epoch}_${s.step}${s.breakpoint ? "b" : ""}:${s.files.length}`
    );
  const disk = [
    file("P-1_40.ckpt", 50),
    file("P-1_50.ckpt", 90),
    file("P-1_30_breakpoint.ckpt", 40), // an earlier run's: saved past
    file("P-1_57_breakpoint.ckpt", 120), // after meta.json's last update
  ];
  deepEqual(steps({ root: "r", ranks: [rank("a", disk)], loose: [] }), [
    "1_57b:1",
    "1_50:1",
    "1_40:1",
  ]);
  // Rank 1 threw before its breakpoint: the step is not every rank's.
  deepEqual(
    steps({
      root: "r",
      ranks: [rank("a", disk), rank("b", disk.slice(0, 2))],
      loose: [],
    }),
    ["1_50:2", "1_40:2"],
  );
  // Without meta.json anywhere: by time, breakpoints included.
  const bare = { ...rank("a", disk), meta: { kind: "missing" as const } };
  deepEqual(steps({ root: "r", ranks: [bare], loose: [] }), [
    "1_57b:1",
    "1_50:1",
    "1_40:1",
    "1_30b:1",
  ]);
});

Deno.test("a monitor writes through a symlinked rank folder outside the granted one, and resume reads through it, with folder-only flags", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/out`;
    await Deno.mkdir(`${out}/checkpoint`, { recursive: true });
    await Deno.mkdir(`${dir}/elsewhere`);
    await symlink(`${dir}/elsewhere`, `${out}/checkpoint/rank_0`);
    const script = `${dir}/child.ts`;
    const mod = JSON.stringify(new URL("../mod.ts", import.meta.url).href);
    await Deno.writeTextFile(
      script,
      `import { CheckpointMonitor, findResumeCheckpoint, train } from ${mod};
const directory = Deno.args[0];
const w = { dtype: "Float32", shape: [1], data: new Float32Array(1) };
await using monitor = new CheckpointMonitor({ directory, saveCheckpointSteps: 2, saveNetworkParams: false });
await train({ epochs: 1, stepsPerEpoch: 4, network: { w }, step: () => {}, callbacks: [monitor] });
const found = await findResumeCheckpoint(directory);
console.log(JSON.stringify(found?.files));`,
    );
    // Exactly the README's flags: the run's folder only.
    const r = await new Deno.Command("deno", {
      args: [
        "run",
        "--no-check",
        "--quiet",
        `--allow-read=${out},${script}`,
        `--allow-write=${out}`,
        script,
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    equal(r.code, 0, stderr);
    deepEqual(JSON.parse(new TextDecoder().decode(r.stdout)), [
      `${out}/checkpoint/rank_0/CKP_rank_0-1_4.ckpt`,
    ]);
    ok(
      (await Deno.stat(`${dir}/elsewhere/CKP_rank_0-1_4.ckpt`)).isFile,
      "written through the link",
    );
  });
});
