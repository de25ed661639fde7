import {
  deepEqual as assertEquals,
  equal,
  ok,
  rejects,
} from "node:assert/strict";
import { type StepContext, train, type TrainCallback } from "../mod.ts";

const w = { dtype: "Float32" as const, shape: [1], data: new Float32Array(1) };

/** A callback recording every call as a string. */
function recorder(log: string[], name = ""): TrainCallback {
  const at = (ctx: StepContext) => `${ctx.epoch}/${ctx.step}`;
  return {
    onTrainBegin: (ctx) => void log.push(`${name}begin ${at(ctx)}`),
    onStepEnd: (ctx) => {
      log.push(`${name}step ${at(ctx)}`);
      return ctx.step % 2 === 0;
    },
    onEpochEnd: (ctx) => void log.push(`${name}epoch ${at(ctx)}`),
    onTrainEnd: (ctx) => void log.push(`${name}end ${at(ctx)}`),
    onException: (ctx, e) =>
      void log.push(`${name}exception ${at(ctx)} ${(e as Error).message}`),
  };
}

Deno.test("train counts global steps across epochs and calls callbacks in order", async () => {
  const log: string[] = [];
  const summary = await train({
    epochs: 2,
    stepsPerEpoch: 2,
    network: { w },
    step: () => ({ loss: 0.5 }),
    callbacks: [recorder(log, "a:"), recorder(log, "b:")],
  });
  assertEquals(log, [
    "a:begin 1/0",
    "b:begin 1/0",
    "a:step 1/1",
    "b:step 1/1",
    "a:step 1/2",
    "b:step 1/2",
    "a:epoch 1/2",
    "b:epoch 1/2",
    "a:step 2/3",
    "b:step 2/3",
    "a:step 2/4",
    "b:step 2/4",
    "a:epoch 2/4",
    "b:epoch 2/4",
    "a:end 2/4",
    "b:end 2/4",
  ]);
  assertEquals(summary, {
    steps: 4,
    globalStep: 4,
    epoch: 2,
    saves: 4,
    loss: 0.5,
  });
});

Deno.test("train passes outputs and lossScale on to the callbacks", async () => {
  const seen: StepContext[] = [];
  await train({
    epochs: 1,
    stepsPerEpoch: 2,
    network: { w },
    optimizer: { m: w },
    step: ({ step }) => ({ outputs: [1, false, 2 ** step], lossScale: step }),
    callbacks: [{ onStepEnd: (ctx) => void seen.push(ctx) }],
  });
  assertEquals(seen.map((c) => [c.outputs, c.lossScale]), [[[1, false, 2], 1], [
    [1, false, 4],
    2,
  ]]);
  ok(seen[0]?.optimizer !== undefined);
  equal(seen[0]?.stepsPerEpoch, 2);
});

Deno.test("train resumes in the middle of an epoch from initialStep", async () => {
  const infos: string[] = [];
  const log: string[] = [];
  const summary = await train({
    epochs: 3,
    stepsPerEpoch: 4,
    initialStep: 6,
    network: { w },
    step: (i) => void infos.push(`${i.epoch}.${i.stepInEpoch}=${i.step}`),
    callbacks: [recorder(log)],
  });
  assertEquals(infos, [
    "2.3=7",
    "2.4=8",
    "3.1=9",
    "3.2=10",
    "3.3=11",
    "3.4=12",
  ]);
  equal(log[0], "begin 2/6");
  equal(summary.steps, 6);
  equal(summary.globalStep, 12);
});

Deno.test("train resumes at an epoch boundary from initialEpoch", async () => {
  const infos: number[] = [];
  await train({
    epochs: 3,
    stepsPerEpoch: 2,
    initialEpoch: 2,
    network: { w },
    step: (i) => void infos.push(i.step),
  });
  assertEquals(infos, [5, 6]);
  await rejects(
    train({
      epochs: 3,
      stepsPerEpoch: 2,
      initialEpoch: 1,
      initialStep: 5,
      network: { w },
      step() {},
    }),
    RangeError,
  );
});

Deno.test("an exception goes to every onException with the failing step, then is rethrown", async () => {
  const log: string[] = [];
  const boom = new Error("boom");
  await rejects(
    train({
      epochs: 2,
      stepsPerEpoch: 3,
      network: { w },
      step: ({ step }) => {
        if (step === 5) throw boom;
      },
      callbacks: [recorder(log, "a:"), recorder(log, "b:")],
    }),
    (e) => e === boom,
  );
  assertEquals(log.slice(-2), ["a:exception 2/5 boom", "b:exception 2/5 boom"]);
  ok(!log.some((l) => l.includes("end")));
});

Deno.test("an exception thrown by a callback is routed too", async () => {
  const log: string[] = [];
  await rejects(
    train({
      epochs: 1,
      stepsPerEpoch: 3,
      network: { w },
      step() {},
      callbacks: [
        {
          onStepEnd: (ctx) => {
            if (ctx.step === 2) throw new RangeError("bad");
          },
        },
        recorder(log),
      ],
    }),
    RangeError,
  );
  equal(log.at(-1), "exception 1/2 bad");
});

Deno.test("a failing onException gives an AggregateError with the original first", async () => {
  const boom = new Error("boom");
  await rejects(
    train({
      epochs: 1,
      stepsPerEpoch: 1,
      network: { w },
      step() {
        throw boom;
      },
      callbacks: [{
        onException: () => {
          throw new Error("save failed");
        },
      }],
    }),
    (e) =>
      e instanceof AggregateError && e.errors[0] === boom &&
      e.errors.length === 2,
  );
});

Deno.test("train rejects bad options with the option's name", async () => {
  const good = { epochs: 1, stepsPerEpoch: 1, network: { w }, step() {} };
  await rejects(train({ ...good, epochs: -1 }), /"epochs".*-1/);
  await rejects(train({ ...good, stepsPerEpoch: 0 }), RangeError);
  await rejects(train({ ...good, stepsPerEpoch: "2" as never }), TypeError);
  await rejects(train({ ...good, step: 1 as never }), TypeError);
  await rejects(train({ ...good, callbacks: [null as never] }), TypeError);
  await rejects(train(null as never), TypeError);
});
