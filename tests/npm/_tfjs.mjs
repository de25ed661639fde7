// Copyright 2026 the @ckpt/monitor authors. MIT license.
// TensorFlow.js for the Node.js scripts, from the packages the test project
// installed: tfjs-core with the pure-JS CPU backend, and tfjs-layers (the
// parts of @tensorflow/tfjs that train). Loaded with require, so that
// `deno check`, which sees these files, does not try to resolve them.
import { createRequire } from "node:module";

/** `tf`, as `import * as tf from "@tensorflow/tfjs"` gives it, on the CPU. */
export async function loadTfjs() {
  const require = createRequire(import.meta.url);
  const core = require("@tensorflow/tfjs-core");
  require("@tensorflow/tfjs-backend-cpu");
  const tf = { ...core, ...require("@tensorflow/tfjs-layers") };
  await tf.setBackend("cpu");
  return tf;
}
