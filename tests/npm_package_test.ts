// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The npm package, end to end: built by `scripts/build_npm.ts`, installed
 * with `npm install <folder>` into a temporary Node.js project, and used
 * there by Node.js (tests/npm/*.mjs): NodeStore's commit, reads, lock
 * between processes and cleanup after a killed writer; TensorFlow.js
 * training under Node.js saving `.ckpt` files through the package, which
 * this Deno process loads with its own loader, and the reverse.
 *
 * Needs `npm` and `node` (run permission for both); npm installs from its
 * cache when it has the packages (`--prefer-offline`).
 */

import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCheckpoint, saveCheckpoint, type Tensor } from "../mod.ts";
import { buildNpm, npmInstall, run } from "../scripts/build_npm.ts";
import {
  buildModel,
  evaluate,
  setWeights,
  weightEntries,
} from "./npm/_model.mjs";
import { withTempDir } from "./_helpers.ts";

/** The TensorFlow.js packages the Node.js project trains with. */
const TFJS = ["core", "layers", "backend-cpu"].map((p) =>
  `@tensorflow/tfjs-${p}@4.22.0`
);

const SCRIPTS = fileURLToPath(new URL("./npm/", import.meta.url));

/**
 * A TypeScript user of the package, type-checked by tsc in the Node.js
 * project (here, not a file of the repository: `deno check` would resolve
 * `@ckpt/monitor` to `mod.ts`).
 */
const CONSUMER = `
import {
  CheckpointMonitor,
  CorruptCheckpointError,
  encodeCkpt,
  NodeStore,
  parseCkpt,
  resume,
  type ResumeResult,
  type StoreWriteResult,
  type Tensor,
} from "@ckpt/monitor";
import { NodeStore as SameStore } from "@ckpt/monitor/node";
import { sm4 } from "@ckpt/monitor/sm4";
import { fitWithCheckpoints } from "@ckpt/monitor/tfjs";

const monitor = new CheckpointMonitor({ asyncSave: true, signals: true });
const resumed: Promise<ResumeResult | null> = resume("/tmp/unused", {
  network: [],
});

const w: Tensor = { dtype: "Float32", shape: [1], data: new Float32Array(1) };
const store: SameStore = new NodeStore();
const saved: Promise<StoreWriteResult> = store.write(
  "/tmp/unused.ckpt",
  (sink) => encodeCkpt(sink, [{ name: "w", value: w }]),
);
export {
  CorruptCheckpointError,
  fitWithCheckpoints,
  monitor,
  parseCkpt,
  resumed,
  saved,
  sm4,
};
`;

/**
 * What the consumer compiles with: NodeNext, strict, and the libraries'
 * own `.d.ts` files checked too (`skipLibCheck: false`).
 */
function consumerConfig(tools: string): string {
  return JSON.stringify({
    compilerOptions: {
      module: "NodeNext",
      moduleResolution: "NodeNext",
      target: "ES2022",
      // No DOM: a Node.js user's types need none.
      lib: ["ES2023", "ESNext.Disposable", "ESNext.Float16"],
      types: ["node"],
      typeRoots: [join(tools, "node_modules", "@types")],
      strict: true,
      skipLibCheck: false,
      noEmit: true,
    },
    files: ["consumer.ts", "wrong.ts"],
  });
}

/** Runs `fn`, adding its wall time in seconds to `times` under `name`. */
async function timed<T>(
  times: Record<string, string>,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    times[name] = `${((performance.now() - start) / 1000).toFixed(1)} s`;
  }
}

/** One line of tests/npm/monitor_run.mjs. */
type RunEvent = Record<string, unknown> & { event: string };

/**
 * Runs tests/npm/monitor_run.mjs under Node.js in `project` on `dir`;
 * with `sigtermAfter`, sends SIGTERM once it printed that step (where it
 * waits for the signal).
 */
async function monitorRun(
  project: string,
  dir: string,
  { sigtermAfter, crashAt }: { sigtermAfter?: number; crashAt?: number },
): Promise<{ code: number; events: RunEvent[]; text: string }> {
  const args = ["monitor_run.mjs", dir, String(crashAt ?? "-")];
  if (sigtermAfter !== undefined) args.push(String(sigtermAfter));
  const child = new Deno.Command("node", {
    args,
    cwd: project,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let text = "";
  let signalled = false;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (
      !signalled && sigtermAfter !== undefined &&
      text.includes(`{"event":"step","step":${sigtermAfter}}`)
    ) {
      signalled = true;
      child.kill("SIGTERM");
    }
  }
  const { code } = await child.status;
  text += await stderr;
  const events = text.split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as RunEvent
  );
  return { code, events, text };
}

Deno.test("npm package: installed by npm, used by Node.js, its files load in Deno and Deno's in it", async (t) => {
  await tf.setBackend("cpu");
  await withTempDir(async (tmp) => {
    const times: Record<string, string> = {};
    const tools = join(tmp, "tools");
    const project = join(tmp, "project");
    await Deno.mkdir(project);
    await Deno.writeTextFile(
      join(project, "package.json"),
      JSON.stringify({ private: true, type: "module" }),
    );
    // The build (tsc, CPU-bound) and the TensorFlow.js install (mostly disk
    // and npm's cache) overlap.
    const [pkg] = await Promise.all([
      timed(
        times,
        "build",
        () => buildNpm({ outDir: join(tmp, "package"), toolsDir: tools }),
      ),
      timed(times, "npm install tfjs", () => npmInstall(project, TFJS)),
    ]);
    // --install-links: copied in as a registry package would be, not linked.
    await timed(
      times,
      "npm install <folder>",
      () => npmInstall(project, ["--install-links", pkg]),
    );
    for await (const entry of Deno.readDir(SCRIPTS)) {
      await Deno.copyFile(
        join(SCRIPTS, entry.name),
        join(project, entry.name),
      );
    }
    const node = (script: string, ...args: string[]): Promise<string> =>
      timed(
        times,
        `node ${script}`,
        () => run("node", [script, ...args], project),
      );

    await t.step(
      "its .d.ts files type-check a TypeScript user (tsc, NodeNext)",
      async () => {
        const tsc = join(tools, "node_modules", "typescript", "bin", "tsc");
        await Deno.writeTextFile(join(project, "consumer.ts"), CONSUMER);
        // A wrong use must be caught (the types are real, not `any`), and
        // be the only error: one tsc run checks both.
        await Deno.writeTextFile(
          join(project, "wrong.ts"),
          'import { NodeStore } from "@ckpt/monitor";\n' +
            "export const wrong: number = new NodeStore().name;\n",
        );
        await Deno.writeTextFile(
          join(project, "tsconfig.json"),
          consumerConfig(tools),
        );
        const error = await timed(
          times,
          "tsc",
          () => run("node", [tsc, "-p", "tsconfig.json"], project),
        ).then(() => null, (e: Error) => e.message);
        const errors = (error ?? "").split("\n").filter((l) =>
          /error TS/.test(l)
        );
        deepEqual(errors.map((l) => l.replace(/\(.*/, "")), ["wrong.ts"]);
        ok(errors[0]!.includes("TS2322"), errors[0]);
      },
    );

    await t.step(
      "NodeStore under Node.js: commit, reads, lock, cleanup",
      async () => {
        const dir = join(tmp, "store");
        await Deno.mkdir(dir);
        const out = await node("store_check.mjs", dir);
        equal(out.split("\n").filter((l) => l.startsWith("ok ")).length, 7);
      },
    );

    const files = join(tmp, "files");
    await Deno.mkdir(files);
    await t.step(
      "tfjs trains under Node.js, saving through the package; Deno loads the files",
      async () => {
        const { saves } = JSON.parse(await node("train_tfjs.mjs", files)) as {
          saves: { path: string; bytes: number; epoch: number; loss: number }[];
        };
        equal(saves.length, 4);
        ok(saves[3]!.loss < saves[0]!.loss, "the loss fell");
        for (const save of saves) {
          const values = await loadCheckpoint(save.path);
          equal((await Deno.stat(save.path)).size, save.bytes);
          deepEqual(values.get("epoch_num"), {
            dtype: "Int64",
            shape: [],
            data: new BigInt64Array([BigInt(save.epoch)]),
          });
          ok(String(values.get("trained_by")).startsWith("node v20."));
          // The same model in Deno, given the file's weights, has the loss
          // Node.js measured: the weights crossed bit for bit.
          const model = buildModel(tf);
          setWeights(tf, model, values);
          equal(evaluate(tf, model), save.loss);
          model.dispose();
        }
      },
    );

    await t.step("Deno saves, Node.js loads through the package", async () => {
      const values = await loadCheckpoint(join(files, "node_epoch_20.ckpt"));
      const model = buildModel(tf);
      setWeights(tf, model, values);
      // Different weights than any Node.js saved: halve them.
      const halved = new Map<string, Tensor>();
      for (const { name, value } of weightEntries(model)) {
        halved.set(name, {
          ...value,
          data: (value.data as Float32Array).map((v) => v / 2),
        });
      }
      setWeights(tf, model, halved);
      const loss = evaluate(tf, model);
      model.dispose();
      const path = join(files, "deno.ckpt");
      await saveCheckpoint(path, halved, {
        appendInfo: { epoch_num: 21, note: "from deno" },
      });
      const seen = JSON.parse(await node("eval_tfjs.mjs", path)) as {
        loss: number;
        others: Record<string, unknown>;
      };
      equal(seen.loss, loss);
      deepEqual(seen.others, {
        epoch_num: { dtype: "Int64", shape: [], data: ["21"] },
        note: "from deno",
      });
    });
    await t.step(
      "the monitor under Node.js: async save in a Worker, SIGTERM saves and exits 143, an exception saves a breakpoint, resume",
      async () => {
        const dir = join(tmp, "monitor");
        await Deno.mkdir(dir);
        // Run 1: SIGTERM during step 12 → the save at that step's end, then
        // exit 128 + 15.
        const first = await timed(
          times,
          "node monitor_run.mjs (SIGTERM)",
          () => monitorRun(project, dir, { sigtermAfter: 12 }),
        );
        equal(first.code, 143, first.text);
        const saved = first.events.filter((e) => e.event === "saved");
        deepEqual(saved.map((e) => [e.kind, e.step]), [
          ["main", 5],
          ["main", 10],
          ["main", 12],
        ]);
        ok(!first.events.some((e) => e.event === "done"), first.text);
        // Deno reads what the Node.js Worker wrote.
        const last = await loadCheckpoint(String(saved[2]!.file));
        equal((last.get("dense.weight") as Tensor).data[0], 12);
        // Run 2 resumes from step 12, then throws at step 20: a breakpoint.
        const second = await monitorRun(project, dir, { crashAt: 20 });
        equal(second.code, 1, second.text);
        const resumed = second.events[0]!;
        deepEqual(
          [resumed.event, resumed.store, resumed.step, resumed.w, resumed.b],
          ["resumed", "NodeStore", 12, 12, -12],
        );
        const breakpoint = second.events.filter((e) => e.event === "saved")
          .at(-1)!;
        deepEqual([breakpoint.kind, breakpoint.step], ["breakpoint", 20]);
        const broke = await loadCheckpoint(String(breakpoint.file));
        equal((broke.get("dense.weight") as Tensor).data[0], 19);
        // Run 3 resumes from the breakpoint (step 20 threw before it
        // trained: the weights are step 19's) and finishes.
        const third = await monitorRun(project, dir, {});
        equal(third.code, 0, third.text);
        deepEqual(
          [third.events[0]!.step, third.events[0]!.w],
          [20, 19],
        );
        deepEqual(third.events.at(-1), { event: "done", w: 30, b: -30 });
        ok(!third.text.includes('"error"'), third.text);
      },
    );

    await t.step(
      "a background save under Node.js hands its arena back before its commit: a loop that never yields holds one copy of the model",
      async () => {
        const dir = join(tmp, "async_memory");
        const out = JSON.parse(
          (await node("async_memory.mjs", dir)).trim().split("\n").at(-1)!,
        ) as { peakMiB: number; modelMiB: number; step: number; t3: number[] };
        deepEqual([out.step, out.t3], [8, [8, 3]]);
        // One arena is the model's size; a second one (each save that
        // came while the previous committed) would double it.
        ok(out.peakMiB < out.modelMiB * 1.5, JSON.stringify(out));
      },
    );

    console.log(`npm package test wall times: ${JSON.stringify(times)}`);
  });
});
