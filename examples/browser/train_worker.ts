// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The demo's training loop, in a dedicated Worker: a small tf.sequential
// model learns a 2-D function; a CheckpointMonitor saves it (weights and
// momentum) into OPFS at every epoch end, in the background (asyncSave: the
// step pays for a copy of the tensors; the write goes on beside the next
// steps, through a sync access handle, the fast OPFS path that only Workers
// have). When checkpoints exist, fitWithCheckpoints resumes from the newest
// one that verifies. The page only draws: nothing here runs on its thread.
/// <reference lib="deno.worker" />

import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  CheckpointMonitor,
  fitWithCheckpoints,
  OpfsStore,
  registerStore,
  tfjsNetwork,
} from "../../browser.ts";

/** What the page sends to start training. */
export interface TrainRequest {
  /** The run's OPFS folder, e.g. `opfs:/demo`. */
  readonly directory: string;
  /** Epochs to train in all (a resumed run trains the rest). */
  readonly epochs: number;
  /** Units of each hidden layer (wider: bigger checkpoints). */
  readonly width: number;
  /** Background saves (`asyncSave`). */
  readonly asyncSave: boolean;
}

/** What the Worker tells the page. */
export type TrainMessage =
  | {
    type: "start";
    /** The epoch training starts from (0: fresh; >0: resumed). */
    initialEpoch: number;
    stepsPerEpoch: number;
    parameters: number;
  }
  | { type: "epoch"; epoch: number; loss: number }
  | {
    type: "saved";
    file: string;
    step: number;
    epoch: number;
    bytes: number;
    /** When the write started and ended (`timeOrigin + now()`, ms). */
    start: number;
    end: number;
  }
  | { type: "removed"; file: string }
  | {
    type: "done";
    /** The final weights, by checkpoint name. */
    weights: Record<string, Float32Array>;
  }
  | { type: "error"; message: string };

const SAMPLES = 256;
const BATCH = 32;

function post(message: TrainMessage): void {
  self.postMessage(message);
}

/** 256 fixed samples of y = sin(3a)·cos(2b) + a·b/2 on [-1, 1]². */
function data(): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const xs: number[][] = [];
  const ys: number[][] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const a = Math.sin(i * 12.9898) % 1, b = Math.cos(i * 78.233) % 1;
    xs.push([a, b]);
    ys.push([Math.sin(3 * a) * Math.cos(2 * b) + a * b / 2]);
  }
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}

/** The model, built the same way on every load (seeded initializers). */
function build(width: number): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        name: "hidden1",
        units: width,
        inputShape: [2],
        activation: "tanh",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({
        name: "hidden2",
        units: width,
        activation: "tanh",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      }),
      tf.layers.dense({
        name: "out",
        units: 1,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
    ],
  });
  // Momentum: tfjs restores its state bit for bit (Adam recomputes its
  // bias correction), so a resumed run matches an uninterrupted one.
  model.compile({
    optimizer: tf.train.momentum(0.05, 0.9),
    loss: "meanSquaredError",
  });
  return model;
}

async function train(request: TrainRequest): Promise<void> {
  await tf.setBackend("cpu"); // the same arithmetic on every machine
  const store = new OpfsStore();
  registerStore("opfs", () => store);
  const model = build(request.width);
  const { x, y } = data();
  const stepsPerEpoch = SAMPLES / BATCH;
  await using monitor = new CheckpointMonitor({
    directory: request.directory,
    saveCheckpointSteps: stepsPerEpoch, // every epoch end
    keepCheckpointMax: 5,
    saveNetworkParams: false,
    asyncSave: request.asyncSave,
  });
  monitor.addEventListener("saved", (e) => {
    const end = performance.timeOrigin + performance.now();
    const d = e.detail;
    post({
      type: "saved",
      file: d.file,
      step: d.step,
      epoch: d.epoch,
      bytes: d.bytes,
      start: end - d.durationMs,
      end,
    });
  });
  monitor.addEventListener("removed", (e) => {
    post({ type: "removed", file: e.detail.file });
  });
  let started = false;
  await fitWithCheckpoints(
    model,
    x,
    y,
    {
      epochs: request.epochs,
      batchSize: BATCH,
      shuffle: false,
      verbose: 0,
      callbacks: {
        // The first epoch run is where training starts (after a resume,
        // the one after the newest checkpoint's).
        onEpochBegin: (epoch: number) => {
          if (started) return;
          started = true;
          post({
            type: "start",
            initialEpoch: epoch,
            stepsPerEpoch,
            parameters: model.countParams(),
          });
        },
        onEpochEnd: (epoch: number, logs?: { loss?: number }) => {
          post({ type: "epoch", epoch: epoch + 1, loss: logs?.loss ?? NaN });
        },
      },
    },
    monitor,
    {
      optimizer: model.optimizer,
      resume: true,
      tf,
      stepsPerEpoch,
    },
  );
  await monitor.flush();
  const weights: Record<string, Float32Array> = {};
  for (const p of tfjsNetwork(model)) {
    weights[p.name] = (p.data as Float32Array).slice();
  }
  // Transferred, not copied: the page's thread does not rebuild them.
  self.postMessage(
    { type: "done", weights } satisfies TrainMessage,
    Object.values(weights).map((w) => w.buffer),
  );
}

self.onmessage = (event: MessageEvent<TrainRequest>) => {
  train(event.data).catch((error) => {
    post({ type: "error", message: String(error?.stack ?? error) });
  });
};
