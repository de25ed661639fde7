// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Run by tests/npm_package_test.ts under Node.js: trains the shared model
// with TensorFlow.js, saving a `.ckpt` through the installed package (its
// format layer and NodeStore) every 5 epochs. Usage: node train_tfjs.mjs
// DIR. Prints one JSON line: the loss after each save and the files.
import { encodeCkpt, NodeStore } from "@ckpt/monitor";
import process from "node:process";
import { loadTfjs } from "./_tfjs.mjs";
import {
  buildModel,
  evaluate,
  trainingData,
  weightEntries,
} from "./_model.mjs";

const tf = await loadTfjs();
const dir = process.argv[2];
const store = new NodeStore();
const model = buildModel(tf);
const { x, y } = trainingData(tf);
const saves = [];
for (let epoch = 5; epoch <= 20; epoch += 5) {
  await model.fit(x, y, {
    epochs: 5,
    batchSize: 16,
    shuffle: false,
    verbose: 0,
  });
  const path = `${dir}/node_epoch_${epoch}.ckpt`;
  const entries = [
    ...weightEntries(model),
    {
      name: "epoch_num",
      value: {
        dtype: "Int64",
        shape: [],
        data: new BigInt64Array([BigInt(epoch)]),
      },
    },
    { name: "trained_by", value: `node ${process.version}` },
  ];
  const { bytes, checksum } = await store.write(
    path,
    (sink) => encodeCkpt(sink, entries),
  );
  saves.push({ path, bytes, checksum, epoch, loss: evaluate(tf, model) });
}
console.log(JSON.stringify({ saves }));
