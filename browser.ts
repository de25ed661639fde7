/**
 * The entry of the browser build (`deno task build:browser` bundles it into
 * `dist/browser/ckpt.js`, one ES module): the OPFS store, the store seam
 * and its byte interfaces. Once the library has no top-level `Deno.*`, this
 * becomes `mod.ts` plus the OPFS store.
 *
 * @module
 */
export * from "./src/core/io.ts";
export * from "./src/store/store.ts";
export * from "./src/store/opfs/opfs_store.ts";
