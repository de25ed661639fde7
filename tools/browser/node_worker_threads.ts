// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * `node:worker_threads` in the browser build (`deno task build:browser` maps
 * it here through tools/browser/import_map.json). The save Worker it starts
 * writes to the local file system only, so in a browser the background
 * queue never starts it: a save to an `opfs:` path is written on the thread
 * that runs the monitor (run the training loop in a dedicated Worker for the
 * fast, non-blocking path). Starting it anyway fails clearly.
 *
 * @module
 */

/** Fails: see the module documentation. */
export class Worker {
  /** Tells the save queue that no save Worker can start here. */
  static readonly browserStandIn = true;

  constructor() {
    throw new TypeError(
      "The save Worker writes local files and is not part of the browser build; saves to opfs: paths run on the monitor's own thread",
    );
  }
}

/** A browser page or Worker is no `node:worker_threads` Worker. */
export const parentPort = null;

/** Never used here (no save Worker starts): the web's own channel. */
export const MessageChannel = globalThis.MessageChannel;

/** Never used here (no save Worker starts): nothing is ever waiting. */
export function receiveMessageOnPort(_port: unknown): undefined {
  return undefined;
}
