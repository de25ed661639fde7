// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Which {@linkcode CheckpointStore} serves a path: the one passed as the
 * `store` option, else the one registered for the path's scheme
 * (`s3://…`), else the local file system.
 *
 * @module
 */

import { fileStore } from "./_file_store.ts";
import { S3Store } from "./s3/s3_store.ts";
import { S3_ENV_VARIABLES, s3OptionsFromEnv } from "./s3/env.ts";
import type { CheckpointStore } from "./store.ts";

/** Makes the store for a path of a registered scheme. */
export type StoreFactory = (path: string) => CheckpointStore;

let s3FromEnv: CheckpointStore | null = null;

/**
 * The store for `s3://` paths when none is passed or registered: one
 * {@linkcode S3Store} per process, from the `AWS_*` variables.
 */
function defaultS3(path: string): CheckpointStore {
  if (s3FromEnv !== null) return s3FromEnv;
  const env = s3OptionsFromEnv();
  if (env.credentials === undefined) {
    throw new TypeError(
      `Cannot use "${path}": no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a server other than AWS) and run with --allow-env=${
        S3_ENV_VARIABLES.join(",")
      }, or pass store: new S3Store({ ... })`,
    );
  }
  return s3FromEnv = new S3Store({ ...env, credentials: env.credentials });
}

const factories = new Map<string, StoreFactory>([["s3", defaultS3]]);

/** The scheme of a path (`"s3"` for `s3://b/k`), or `""` for none. */
function schemeOf(path: string): string {
  const m = /^([a-z][a-z0-9+.-]+):/i.exec(path);
  return m === null ? "" : m[1]!.toLowerCase();
}

/**
 * Registers the store used for paths of a scheme when no `store` option is
 * given (a later registration replaces an earlier one).
 *
 * @param scheme The scheme without `:` (e.g. `"s3"`).
 * @param factory Makes the store for a path of that scheme.
 *
 * @example
 * ```ts
 * import { localStore, registerStore, storeFor } from "@ckpt/monitor";
 * registerStore("mine", () => localStore);
 * console.assert(storeFor("mine://x") === localStore);
 * ```
 */
export function registerStore(scheme: string, factory: StoreFactory): void {
  factories.set(scheme.toLowerCase(), factory);
}

/**
 * The store that serves `path`: `store` when given, else the factory
 * registered for the path's scheme (`s3://` paths: an S3 store made from the
 * `AWS_*` environment variables), else the local file system
 * ({@linkcode localStore} under Deno; a `NodeStore` when the npm package
 * runs under Node.js).
 *
 * @param path A file or folder path.
 * @param store An explicit store, which wins.
 * @returns The store.
 * @throws {TypeError} When the path has a scheme no store is registered for.
 *
 * @example
 * ```ts
 * import { localStore, storeFor } from "@ckpt/monitor";
 * console.assert(storeFor("/tmp/run/x.ckpt") === localStore);
 * ```
 */
export function storeFor(
  path: string,
  store?: CheckpointStore,
): CheckpointStore {
  if (store !== undefined) return store;
  const scheme = schemeOf(path);
  if (scheme === "" || scheme === "file") return fileStore();
  const factory = factories.get(scheme);
  if (factory === undefined) {
    throw new TypeError(
      `Cannot use "${path}": no store serves "${scheme}:" paths; pass the store as the "store" option`,
    );
  }
  return factory(path);
}
