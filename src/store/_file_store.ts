// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: which store serves plain paths (no scheme, or `file:`). Deno's
// file store unless the runtime is another: the Node.js entry point
// (`src/node_mod.ts`) and the save Worker's entry put `NodeStore` here when
// they run outside Deno (src/store/node/_outside_deno.ts). One slot, so that
// the monitor, resume, the queue's "is this the Worker's store" test and the
// Worker itself all agree.

import { localStore } from "./local_store.ts";
import type { CheckpointStore } from "./store.ts";

let current: CheckpointStore = localStore;

/** The store that serves plain file paths in this process. */
export function fileStore(): CheckpointStore {
  return current;
}

/** Makes `store` serve plain file paths from now on. */
export function setFileStore(store: CheckpointStore): void {
  current = store;
}
