import { deepEqual as assertEquals, equal, ok } from "node:assert/strict";
import { type CommittedCheckpoint, planRetention } from "../mod.ts";

const MIN = 60_000;

function files(times: number[]): CommittedCheckpoint[] {
  return times.map((time, i) => ({ file: `f${i + 1}`, time }));
}

const names = (cs: readonly { file: string }[]) => cs.map((c) => c.file);

Deno.test("keepCheckpointMax keeps the newest K, removing the oldest with a reason", () => {
  const plan = planRetention(files([1, 2, 3, 4]), { keepCheckpointMax: 3 });
  assertEquals(names(plan.remove.map((r) => r.checkpoint)), ["f1"]);
  assertEquals(names(plan.keep), ["f2", "f3", "f4"]);
  equal(
    plan.remove[0]?.reason,
    "keepCheckpointMax 3: 3 newer checkpoints are kept",
  );
});

Deno.test("keepCheckpointMax removes nothing while at most K exist", () => {
  equal(
    planRetention(files([1, 2, 3]), { keepCheckpointMax: 3 }).remove.length,
    0,
  );
  equal(planRetention([], { keepCheckpointMax: 3 }).remove.length, 0);
});

Deno.test("keepCheckpointMax 1 keeps only the new file", () => {
  const plan = planRetention(files([1, 2]), { keepCheckpointMax: 1 });
  assertEquals(names(plan.keep), ["f2"]);
});

Deno.test("keepCheckpointMax drains an excess, unlike the original's one-per-save", () => {
  const plan = planRetention(files([1, 2, 3, 4, 5]), { keepCheckpointMax: 2 });
  assertEquals(names(plan.remove.map((r) => r.checkpoint)), ["f1", "f2", "f3"]);
});

Deno.test("keepCheckpointPerNMinutes: within the window only the oldest older file survives", () => {
  // M = 1 min, saves every 20 s; replay the monitor: previous save time moves on.
  const committed: CommittedCheckpoint[] = [];
  let previous = 0; // construction at t = 0
  const removed: string[] = [];
  for (let i = 1; i <= 6; i++) {
    const now = i * 20_000;
    committed.push({ file: `t${now / 1000}`, time: now });
    const plan = planRetention(committed, {
      keepCheckpointPerNMinutes: 1,
      previousSaveTime: previous,
    });
    removed.push(...names(plan.remove.map((r) => r.checkpoint)));
    committed.splice(0, committed.length, ...plan.keep);
    previous = now;
  }
  // t60: window {t20, t40} keeps t20; t80: window {t60} (t20 is exactly
  // 60 s old, out); t100: window {t60, t80} keeps t60; t120: window {t100}.
  assertEquals(removed, ["t40", "t80"]);
  assertEquals(names(committed), ["t20", "t60", "t100", "t120"]);
});

Deno.test("keepCheckpointPerNMinutes deletes nothing when saves are M minutes apart", () => {
  const plan = planRetention(files([0, 2 * MIN, 4 * MIN]), {
    keepCheckpointPerNMinutes: 2,
    previousSaveTime: 2 * MIN,
  });
  equal(plan.remove.length, 0);
});

Deno.test("keepCheckpointPerNMinutes never deletes files older than M minutes", () => {
  const plan = planRetention(
    files([0, 1, 2, 10 * MIN, 10 * MIN + 1, 10 * MIN + 2]),
    {
      keepCheckpointPerNMinutes: 5,
      previousSaveTime: 10 * MIN + 1,
    },
  );
  assertEquals(names(plan.remove.map((r) => r.checkpoint)), ["f5"]);
  ok(plan.remove[0]!.reason.includes("f4 is kept"));
});

Deno.test("keepCheckpointPerNMinutes: with no strictly older file in the window, all of it goes", () => {
  const plan = planRetention(files([5, 5, 5]), {
    keepCheckpointPerNMinutes: 1,
    previousSaveTime: 5,
  });
  assertEquals(names(plan.remove.map((r) => r.checkpoint)), ["f1", "f2"]);
  assertEquals(names(plan.keep), ["f3"]);
});

Deno.test("no rule: nothing is removed", () => {
  equal(planRetention(files([1, 2, 3])).remove.length, 0);
});
