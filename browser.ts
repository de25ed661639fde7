/**
 * The entry of the browser build (`deno task build:browser` bundles it into
 * `dist/browser/ckpt.js`, one ES module): the OPFS store and the store
 * seam's path helpers.
 *
 * @module
 */
export * from "./src/store/store.ts";
export * from "./src/store/opfs/opfs_store.ts";
