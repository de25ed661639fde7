// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The model both sides of tests/npm_package_test.ts build: Node.js (from
// the tfjs packages installed next to the built package) and Deno (from
// npm:@tensorflow/tfjs). The same seeded initializers and data, so each
// side can evaluate the other's weights and get the same loss.

/** A small seeded regression model, compiled. */
export function buildModel(tf) {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        name: "hidden",
        units: 8,
        inputShape: [3],
        activation: "tanh",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }),
      }),
      tf.layers.dense({
        name: "out",
        units: 1,
        kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }),
      }),
    ],
  });
  model.compile({
    optimizer: tf.train.momentum(0.05, 0.9),
    loss: "meanSquaredError",
  });
  return model;
}

/** 64 fixed samples of y = sin(x0) + x1 * x2 / 2. */
export function trainingData(tf) {
  const xs = [];
  const ys = [];
  for (let i = 0; i < 64; i++) {
    const x = [Math.sin(i * 1.3), Math.cos(i * 0.7), ((i % 9) - 4) / 4];
    xs.push(x);
    ys.push([Math.sin(x[0]) + (x[1] * x[2]) / 2]);
  }
  return { x: tf.tensor2d(xs), y: tf.tensor2d(ys) };
}

/** The model's loss on the training data. */
export function evaluate(tf, model) {
  const { x, y } = trainingData(tf);
  const loss = model.evaluate(x, y, { batchSize: 64 });
  const value = loss.dataSync()[0];
  tf.dispose([x, y, loss]);
  return value;
}

/**
 * The model's weights as checkpoint entries (name → Float32 tensor). Names
 * are the layers' own (`hidden/kernel`), not the ones tfjs makes unique per
 * process (`hidden/kernel_1` for a second model).
 */
export function weightEntries(model) {
  return model.weights.map((w) => ({
    name: w.originalName,
    value: {
      dtype: "Float32",
      shape: [...w.shape],
      data: new Float32Array(w.read().dataSync()),
    },
  }));
}

/** Sets the model's weights from tensors found by name. */
export function setWeights(tf, model, byName) {
  model.setWeights(model.weights.map((w) => {
    const t = byName.get(w.originalName);
    if (t === undefined) throw new Error(`no tensor "${w.originalName}"`);
    return tf.tensor(t.data, t.shape, "float32");
  }));
}
