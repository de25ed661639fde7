// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: outside Deno (Node.js), plain file paths are served by a
// NodeStore: Deno's file store calls `Deno.*`, which Node.js does not have.
// Called by the Node.js entry point and by the save Worker's entry, so that
// a save on the training thread and one in the Worker use the same store.

import { setFileStore } from "../_file_store.ts";
import { NodeStore } from "./node_store.ts";

/** Whether this process runs under Deno. */
export function underDeno(): boolean {
  return "Deno" in globalThis;
}

/** Outside Deno, makes a {@linkcode NodeStore} serve plain file paths. */
export function useNodeStoreOutsideDeno(): void {
  if (!underDeno()) setFileStore(new NodeStore());
}
