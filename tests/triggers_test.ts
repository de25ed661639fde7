import { deepEqual as assertEquals, equal } from "node:assert/strict";
import { SaveTrigger } from "../mod.ts";

/** Runs steps 1..n (optionally with times) and returns the steps saved, train end included. */
function run(
  trigger: SaveTrigger,
  steps: number[],
  times: (step: number) => number = () => 0,
): number[] {
  const saved: number[] = [];
  let last = 0;
  for (const step of steps) {
    if (trigger.isDue(step, times(step))) {
      trigger.saved(step);
      saved.push(step);
    }
    last = step;
  }
  if (trigger.isDue(last, times(last), true)) {
    trigger.saved(last);
    saved.push(last);
  }
  return saved;
}

const range = (a: number, b: number) =>
  Array.from({ length: b - a + 1 }, (_, i) => a + i);

Deno.test("steps = 1 saves the first step and every step", () => {
  assertEquals(run(new SaveTrigger({ saveCheckpointSteps: 1 }), range(1, 4)), [
    1,
    2,
    3,
    4,
  ]);
});

Deno.test("steps = N saves at N, 2N, … on a global counter across epochs, and at train end", () => {
  // 3 epochs of 4 steps, every 5 steps: the counter does not restart per epoch.
  assertEquals(run(new SaveTrigger({ saveCheckpointSteps: 5 }), range(1, 12)), [
    5,
    10,
    12,
  ]);
});

Deno.test("train end does not save a step that was just saved", () => {
  assertEquals(run(new SaveTrigger({ saveCheckpointSteps: 5 }), range(1, 10)), [
    5,
    10,
  ]);
});

Deno.test("train end with no step saves nothing", () => {
  const t = new SaveTrigger({ saveCheckpointSteps: 5 });
  equal(t.isDue(0, 0, true), false);
});

Deno.test("sparse step ends (sink mode) fire at the first counter >= last + N", () => {
  // N = 3, the loop reports every 2nd step: saves drift to 4, 8, 12.
  assertEquals(
    run(new SaveTrigger({ saveCheckpointSteps: 3 }), [2, 4, 6, 8, 10, 12]),
    [4, 8, 12],
  );
});

Deno.test("a failed save (not recorded) is tried again at the next step end", () => {
  const t = new SaveTrigger({ saveCheckpointSteps: 5 });
  equal(t.isDue(5, 0), true); // the save fails: no t.saved(5)
  equal(t.isDue(6, 0), true);
  t.saved(6);
  equal(t.isDue(10, 0), false);
  equal(t.isDue(11, 0), true);
});

Deno.test("a resumed run restarts the count from its first step", () => {
  const t = new SaveTrigger({ saveCheckpointSteps: 50 });
  t.saved(200);
  assertEquals(run(t, range(201, 320)), [250, 300, 320]);
});

Deno.test("seconds: measured from construction, strictly greater, reset at the decision", () => {
  // startTime 1000 ms, period 10 s; each step takes 3 s of the fake clock.
  const t = new SaveTrigger({
    saveCheckpointSteps: 0,
    saveCheckpointSeconds: 10,
    startTime: 1000,
  });
  const at = (step: number) => 1000 + 3000 * step;
  // step 3: 9 s, step 4: 12 s > 10 → save (timer := 13000);
  // step 7: 22000-13000 = 9 s; step 8: 12 s → save; train end at 10 forces.
  assertEquals(run(t, range(1, 10), at), [4, 8, 10]);
});

Deno.test("seconds: exactly the period is not enough", () => {
  const t = new SaveTrigger({
    saveCheckpointSteps: 0,
    saveCheckpointSeconds: 2,
  });
  equal(t.isDue(1, 2000), false);
  equal(t.isDue(2, 2000.5), true);
});

Deno.test("seconds: a forced save restarts the timer", () => {
  const t = new SaveTrigger({
    saveCheckpointSteps: 0,
    saveCheckpointSeconds: 10,
  });
  equal(t.isDue(1, 5000, true), true);
  t.saved(1);
  equal(t.isDue(2, 14_000), false);
  equal(t.isDue(3, 15_001), true);
});

Deno.test("the same step is never saved twice, even when forced", () => {
  const t = new SaveTrigger({
    saveCheckpointSteps: 0,
    saveCheckpointSeconds: 1,
  });
  equal(t.isDue(1, 5000), true);
  t.saved(1);
  equal(t.isDue(1, 9000, true), false);
});
