// A child process for tests/monitor_writers_test.ts.
//   hold <dir>            prepare a monitor, leave a temporary file as a
//                         save in flight would, print "ready <pid>", wait
//                         for stdin to close, then close the monitor.
//   deleted <dir> <async> save steps 1-4, deleting <dir> after step 1;
//                         print what each step end gave, as JSON.
import { CheckpointMonitor } from "../mod.ts";

const [mode, dir, async] = Deno.args;
const network = {
  w: { dtype: "Float32" as const, shape: [2], data: new Float32Array(2) },
};

if (mode === "hold") {
  const m = new CheckpointMonitor({ directory: dir!, rank: 0 });
  const layout = await m.prepare();
  await Deno.writeTextFile(
    `${layout.checkpointDir}/.CKP_rank_0-1_9.ckpt.0123456789ab.tmp`,
    "in flight",
  );
  console.log(`ready ${Deno.pid}`);
  for await (const _ of Deno.stdin.readable) { /* until closed */ }
  await m.close();
} else if (mode === "deleted") {
  const m = new CheckpointMonitor({
    directory: dir!,
    rank: 0,
    asyncSave: async === "true",
  });
  let failures = 0;
  m.addEventListener("error", () => failures++);
  const results: unknown[] = [];
  for (let step = 1; step <= 4; step++) {
    network.w.data.fill(step);
    try {
      results.push(
        await m.onStepEnd({ step, epoch: 1, stepsPerEpoch: 10, network }),
      );
    } catch (error) {
      results.push(`failed: ${(error as Error).message}`);
    }
    if (step === 1) {
      await m.flush();
      await Deno.remove(dir!, { recursive: true });
    }
    // In the background, step 2's save fails: wait for its report, so that
    // step 3 is the step end that rethrows it.
    while (async === "true" && step === 2 && failures === 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  await m.close();
  console.log(JSON.stringify(results));
}
