// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Checkpoints on S3-compatible object storage (AWS S3, Ceph RADOS Gateway,
 * MinIO): {@linkcode S3Store} implements the library's storage seam over
 * `fetch`, with AWS Signature V4 on Web Crypto and no SDK.
 *
 * Paths are `s3://bucket/key`. Credentials, region and endpoint come from
 * options or, with {@linkcode s3OptionsFromEnv}, from `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` and
 * `AWS_ENDPOINT_URL` (granted by `--allow-env` naming only those).
 *
 * @example A store from the environment (needs a server)
 * ```ts ignore
 * import { S3Store, s3OptionsFromEnv } from "@ckpt/monitor/s3";
 * const env = s3OptionsFromEnv();
 * if (env.credentials === undefined) throw new Error("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
 * const store = new S3Store({ ...env, credentials: env.credentials });
 * console.log(await store.list("s3://my-bucket/run1"));
 * ```
 *
 * @module
 */
export {
  parseS3Path,
  type S3Lock,
  S3Store,
  type S3StoreOptions,
} from "./s3_store.ts";
export type { S3Credentials } from "./_sigv4.ts";
export { S3Error, type S3ErrorInit } from "./errors.ts";
export {
  S3_ENV_VARIABLES,
  type S3EnvOptions,
  s3OptionsFromEnv,
} from "./env.ts";
export type {
  CheckpointStore,
  RemoveIncompleteOptions,
  StoreEntry,
  StoreEntryKind,
  StoreLock,
  StoreLockOptions,
  StoreReader,
  StoreStat,
  StoreWriteOptions,
  StoreWriteResult,
} from "../store.ts";
export type { ByteSink, ByteSource } from "../../core/io.ts";
