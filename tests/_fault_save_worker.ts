// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * A save Worker with faults injected by file name, for tests:
 * - `gate` in the name: wait until `<folder>/go` exists before writing;
 * - a file `FULL` in the folder: every file write fails as on a full disk;
 * - a file `CRASH` in the folder: the first write lands, then the Worker
 *   dies of an uncaught error (the temporary file stays behind);
 * - `commitwait` in the name: every byte is written and fsynced, then the
 *   rename (the commit) waits until `<folder>/go` exists;
 * - `commitfail` in the name: every byte is written, then the rename fails
 *   with an I/O error.
 */

import { parentPort } from "node:worker_threads";
import { serveSaves } from "../src/background/_save_wire.ts";
import { saveCheckpoint } from "../src/checkpoint/checkpoint.ts";

const realWrite = Deno.FsFile.prototype.write;
const realRename = Deno.rename;

/** Waits until a file named `go` appears in `folder` (the test's gate). */
async function waitForGo(folder: string): Promise<void> {
  for (;;) {
    try {
      await Deno.stat(`${folder}/go`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

serveSaves(
  parentPort!,
  async (path, network, options) => {
    const name = path.slice(path.lastIndexOf("/") + 1);
    const folder = path.slice(0, path.lastIndexOf("/"));
    if (name.includes("gate")) {
      await waitForGo(folder);
    }
    const exists = (marker: string) =>
      Deno.stat(`${folder}/${marker}`).then(() => true, () => false);
    if (await exists("FULL")) {
      Deno.FsFile.prototype.write = function () {
        return Promise.reject(
          new Error("No space left on device (os error 28)"),
        );
      };
    } else if (await exists("CRASH")) {
      Deno.FsFile.prototype.write = async function (this: Deno.FsFile, p) {
        await realWrite.call(this, p);
        setTimeout(() => {
          throw new Error("injected crash");
        });
        return new Promise<number>(() => {});
      };
    }
    if (name.includes("commitwait")) {
      Deno.rename = async (from, to) => {
        await waitForGo(folder);
        return await realRename(from, to);
      };
    } else if (name.includes("commitfail")) {
      Deno.rename = () =>
        Promise.reject(new Error("Input/output error (os error 5)"));
    }
    try {
      return await saveCheckpoint(path, network, options);
    } finally {
      Deno.FsFile.prototype.write = realWrite;
      Deno.rename = realRename;
    }
  },
);
