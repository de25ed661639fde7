// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The save Worker's entry: serialises, encrypts (through the save options)
 * and durably writes each file it is sent, off the training loop's thread.
 * The queue starts it from its bundled code (`_save_worker_code.ts`, made
 * by `deno task bundle:workers`), never from this file.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";
import { useNodeStoreOutsideDeno } from "../store/node/_outside_deno.ts";
import { serveSaves } from "./_save_wire.ts";

if (parentPort === null) {
  throw new TypeError(
    "Cannot serve saves: this module runs only as a node:worker_threads Worker",
  );
}
// Under Node.js the files are written through NodeStore, as on the
// training thread (the Node.js entry point does the same there).
useNodeStoreOutsideDeno();
serveSaves(parentPort);
