/**
 * The entry of the browser build (`deno task build:browser` bundles it into
 * `dist/browser/ckpt.js`, one ES module a page or Worker imports): the whole
 * module (`mod.ts`), the OPFS store and the TensorFlow.js adapter. The build
 * maps the two `node:` modules that only the local file system store and
 * the local save Worker use to stand-ins that fail when called
 * (`tools/browser/`), so use `opfs:` paths: `registerStore("opfs", …)`
 * makes the monitor, `resume()` and the tfjs adapter find the store.
 *
 * @example Checkpoint into OPFS from a dedicated Worker
 * ```ts ignore
 * import { CheckpointMonitor, OpfsStore, registerStore } from "./ckpt.js";
 *
 * const store = new OpfsStore();
 * registerStore("opfs", () => store);
 * const monitor = new CheckpointMonitor({ directory: "opfs:/run" });
 * ```
 *
 * @module
 */
export * from "./mod.ts";
export * from "./src/store/opfs/opfs_store.ts";
export * from "./src/adapters/tfjs.ts";
