import {
  deepEqual as assertEquals,
  equal,
  notStrictEqual,
  ok,
  throws as assertThrows,
} from "node:assert/strict";
import { CheckpointConfig, type CheckpointConfigOptions } from "../mod.ts";

function config(options: Record<string, unknown>): CheckpointConfig {
  return new CheckpointConfig(options as CheckpointConfigOptions);
}

/** Asserts that `fn` throws `type` with a message containing every `parts`. */
function throwsWith(
  fn: () => unknown,
  type: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor,
  ...parts: string[]
): void {
  assertThrows(fn, (e: unknown) => {
    ok(e instanceof type, `expected ${type.name}, got ${e}`);
    for (const p of parts) {
      ok(
        (e as Error).message.includes(p),
        `"${(e as Error).message}" lacks "${p}"`,
      );
    }
    return true;
  });
}

Deno.test("CheckpointConfig defaults follow SPEC.md", () => {
  const c = new CheckpointConfig();
  equal(c.saveCheckpointSteps, 1);
  equal(c.saveCheckpointSeconds, 0);
  equal(c.keepCheckpointMax, 5);
  equal(c.keepCheckpointPerNMinutes, 0);
  equal(c.integratedSave, true);
  equal(c.saveNetworkParams, true);
  equal(c.saveTrainableParams, false);
  equal(c.asyncSave, false);
  equal(c.savedNetwork, undefined);
  equal(c.encKey, undefined);
  equal(c.encMode, "AES-GCM");
  equal(c.exceptionSave, false);
  equal(c.globalBatchSize, undefined);
  equal(c.format, "ckpt");
  assertEquals(c.appendInfo, [{
    epoch_num: 0,
    step_num: 0,
    global_step: 0,
    loss_scale: 1,
  }]);
  ok(Object.isFrozen(c));
});

Deno.test("wrong types are TypeErrors naming the option and the value", () => {
  for (
    const key of [
      "saveCheckpointSteps",
      "saveCheckpointSeconds",
      "keepCheckpointMax",
      "keepCheckpointPerNMinutes",
      "globalBatchSize",
    ]
  ) {
    throwsWith(() => config({ [key]: "3" }), TypeError, key, 'string "3"');
    throwsWith(() => config({ [key]: true }), TypeError, key, "boolean true");
    throwsWith(() => config({ [key]: null }), TypeError, key, "null");
  }
  for (
    const key of [
      "integratedSave",
      "saveNetworkParams",
      "saveTrainableParams",
      "asyncSave",
      "exceptionSave",
    ]
  ) {
    throwsWith(() => config({ [key]: 1 }), TypeError, key, "number 1");
  }
  throwsWith(() => config({ format: 1 }), TypeError, "format", "number 1");
  throwsWith(() => config({ encMode: 1 }), TypeError, "encMode", "number 1");
  throwsWith(
    () => config({ encKey: "0123456789abcdef" }),
    TypeError,
    "encKey",
    "string",
  );
  throwsWith(
    () => config({ appendInfo: "epoch_num" }),
    TypeError,
    "appendInfo",
  );
  throwsWith(() => config({ savedNetwork: 42 }), TypeError, "network");
  throwsWith(() => new CheckpointConfig(null as never), TypeError, "null");
});

Deno.test("wrong values are RangeErrors naming the option and the value", () => {
  throwsWith(
    () => config({ saveCheckpointSteps: -1 }),
    RangeError,
    "saveCheckpointSteps",
    "-1",
  );
  throwsWith(
    () => config({ saveCheckpointSteps: 1.5 }),
    RangeError,
    "saveCheckpointSteps",
    "1.5",
  );
  throwsWith(
    () => config({ keepCheckpointMax: NaN }),
    RangeError,
    "keepCheckpointMax",
    "NaN",
  );
  throwsWith(
    () => config({ saveCheckpointSeconds: -0.5 }),
    RangeError,
    "saveCheckpointSeconds",
  );
  throwsWith(
    () =>
      config({
        saveCheckpointSeconds: 1,
        saveCheckpointSteps: 0,
        keepCheckpointPerNMinutes: Infinity,
      }),
    RangeError,
    "keepCheckpointPerNMinutes",
    "Infinity",
  );
  throwsWith(() => config({ format: "npz" }), RangeError, "format", '"npz"');
  throwsWith(
    () => config({ encMode: "AES-ECB", encKey: new Uint8Array(16) }),
    RangeError,
    "encMode",
    "AES-ECB",
  );
  throwsWith(
    () => config({ globalBatchSize: 0 }),
    RangeError,
    "globalBatchSize",
  );
});

Deno.test("time options accept fractions, counts do not", () => {
  equal(config({ saveCheckpointSeconds: 0.25 }).saveCheckpointSeconds, 0.25);
  equal(
    config({ keepCheckpointPerNMinutes: 0.5 }).keepCheckpointPerNMinutes,
    0.5,
  );
  throwsWith(
    () => config({ keepCheckpointMax: 2.5 }),
    RangeError,
    "keepCheckpointMax",
  );
});

Deno.test("difference: both triggers above 0 is a RangeError, not a silent choice", () => {
  throwsWith(
    () => config({ saveCheckpointSteps: 10, saveCheckpointSeconds: 60 }),
    RangeError,
    "saveCheckpointSteps",
    "saveCheckpointSeconds",
  );
});

Deno.test("difference: only the seconds option set turns the step trigger off", () => {
  const c = config({ saveCheckpointSeconds: 60 });
  equal(c.saveCheckpointSteps, 0);
  equal(c.saveCheckpointSeconds, 60);
  // Explicit 0 steps with seconds is fine too.
  equal(
    config({ saveCheckpointSteps: 0, saveCheckpointSeconds: 5 })
      .saveCheckpointSteps,
    0,
  );
});

Deno.test("difference: all triggers zero is a RangeError", () => {
  throwsWith(() => config({ saveCheckpointSteps: 0 }), RangeError, "both 0");
  throwsWith(
    () =>
      config({
        saveCheckpointSteps: 0,
        saveCheckpointSeconds: 0,
        keepCheckpointMax: 3,
      }),
    RangeError,
  );
});

Deno.test("difference: both retention options above 0 is a RangeError", () => {
  throwsWith(
    () => config({ keepCheckpointMax: 3, keepCheckpointPerNMinutes: 10 }),
    RangeError,
    "keepCheckpointMax",
    "keepCheckpointPerNMinutes",
  );
  const c = config({ keepCheckpointPerNMinutes: 10 });
  equal(c.keepCheckpointMax, 0);
  equal(c.keepCheckpointPerNMinutes, 10);
});

Deno.test("keepCheckpointMax 0 with no per-minutes rule keeps everything", () => {
  const c = config({ keepCheckpointMax: 0 });
  equal(c.keepCheckpointMax, 0);
  equal(c.keepCheckpointPerNMinutes, 0);
});

Deno.test("difference: a bad key or mode fails at construction", () => {
  throwsWith(
    () => config({ encKey: new Uint8Array(15) }),
    RangeError,
    "encKey",
    "15 bytes",
  );
  throwsWith(
    () => config({ encKey: new Uint8Array(24), encMode: "SM4-CBC" }),
    RangeError,
    "SM4-CBC",
    "24 bytes",
  );
  for (const n of [16, 24, 32]) {
    equal(config({ encKey: new Uint8Array(n) }).encKey?.length, n);
  }
  equal(
    config({ encKey: new Uint8Array(16), encMode: "SM4-CBC" }).encMode,
    "SM4-CBC",
  );
  throwsWith(
    () => config({ encKey: new Uint8Array(16), format: "safetensors" }),
    RangeError,
    "safetensors",
  );
});

Deno.test("the key is copied, so later changes to the caller's buffer do not leak in", () => {
  const key = new Uint8Array(16).fill(7);
  const c = config({ encKey: key });
  key.fill(0);
  notStrictEqual(c.encKey, key);
  equal(c.encKey?.[0], 7);
});

Deno.test("encMode without encKey is accepted and encrypts nothing", () => {
  const c = config({ encMode: "AES-CBC" });
  equal(c.encKey, undefined);
  equal(c.encMode, "AES-CBC");
});

Deno.test("unknown options are TypeErrors; snake_case names get a hint", () => {
  throwsWith(
    () => config({ save_checkpoint_steps: 5 }),
    TypeError,
    "save_checkpoint_steps",
    "saveCheckpointSteps",
  );
  throwsWith(() => config({ saveEvery: 5 }), TypeError, "saveEvery");
});

Deno.test("appendInfo has the original's shape", () => {
  const c = config({ appendInfo: ["epoch_num", "step_num", { lr: 0.1 }] });
  assertEquals(c.appendInfo, ["epoch_num", "step_num", { lr: 0.1 }]);
  config({ appendInfo: [] });
  config({ appendInfo: [new Map([["name", "x"]])] });
  config({
    appendInfo: [{
      t: { dtype: "Int32", shape: [1], data: new Int32Array(1) },
      b: true,
      n: 3n,
      s: "s",
    }],
  });
  throwsWith(
    () => config({ appendInfo: ["random_op"] }),
    RangeError,
    "random_op",
  );
  throwsWith(
    () => config({ appendInfo: [{ a: 1 }, { b: 2 }] }),
    TypeError,
    "at most one record",
  );
  throwsWith(() => config({ appendInfo: [42] }), TypeError, "number 42");
  throwsWith(
    () => config({ appendInfo: [{ f: () => 1 }] }),
    TypeError,
    "appendInfo.f",
  );
  throwsWith(
    () => config({ appendInfo: [{ x: Infinity }] }),
    RangeError,
    "appendInfo.x",
  );
  throwsWith(
    () =>
      config({
        appendInfo: [{
          t: { dtype: "Int32", shape: [2], data: new Int32Array(1) },
        }],
      }),
    RangeError,
  );
});

Deno.test("savedNetwork is checked at construction", () => {
  const t = {
    dtype: "Float32" as const,
    shape: [1],
    data: new Float32Array(1),
  };
  equal(config({ savedNetwork: { w: t } }).savedNetwork !== undefined, true);
  throwsWith(
    () => config({ savedNetwork: [{ name: "a", ...t }, { name: "a", ...t }] }),
    RangeError,
    '"a"',
  );
});
