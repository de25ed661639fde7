// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * S3 settings from the usual `AWS_*` environment variables.
 *
 * @module
 */

import type { S3Credentials } from "./_sigv4.ts";

/**
 * The variables {@linkcode s3OptionsFromEnv} reads, and nothing else: the
 * names to give `--allow-env`.
 *
 * @example
 * ```ts
 * import { S3_ENV_VARIABLES } from "@ckpt/monitor/s3";
 * console.log(`--allow-env=${S3_ENV_VARIABLES.join(",")}`);
 * ```
 */
export const S3_ENV_VARIABLES: readonly string[] = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_REGION",
  "AWS_ENDPOINT_URL",
];

/**
 * What {@linkcode s3OptionsFromEnv} found.
 *
 * @example
 * ```ts
 * import { type S3EnvOptions, s3OptionsFromEnv } from "@ckpt/monitor/s3";
 * const found: S3EnvOptions = s3OptionsFromEnv();
 * console.log(found.region ?? "us-east-1");
 * ```
 */
export interface S3EnvOptions {
  /** From `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), when both are set. */
  credentials?: S3Credentials;
  /** From `AWS_REGION`. */
  region?: string;
  /** From `AWS_ENDPOINT_URL`. */
  endpoint?: string;
}

interface DenoEnvLike {
  permissions?: {
    querySync?: (d: { name: "env"; variable: string }) => { state: string };
  };
  env?: { get(name: string): string | undefined };
}

/**
 * Reads one variable: in Deno only when `--allow-env` already grants it
 * (queried without prompting; an ungranted variable reads as unset); in
 * Node-like runtimes from `process.env`; elsewhere (browsers) unset.
 */
function readVariable(name: string): string | undefined {
  const deno = (globalThis as { Deno?: DenoEnvLike }).Deno;
  if (deno !== undefined) {
    const state = deno.permissions?.querySync?.({ name: "env", variable: name })
      .state;
    if (state !== "granted") return undefined;
    const value = deno.env?.get(name);
    return value === "" ? undefined : value;
  }
  const process = (globalThis as {
    process?: { env?: Record<string, string | undefined> };
  }).process;
  const value = process?.env?.[name];
  return value === "" ? undefined : value;
}

/**
 * Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
 * `AWS_REGION` and `AWS_ENDPOINT_URL`. In Deno, a variable counts only
 * when `--allow-env` grants it (checked with
 * `Deno.permissions.querySync`, so there is never a prompt): grant exactly
 * these names, e.g.
 * `--allow-env=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AWS_REGION,AWS_ENDPOINT_URL`.
 * Outside Deno, `process.env` is read when there is one.
 *
 * @returns The options found; spread them under your own:
 *   `new S3Store({ ...s3OptionsFromEnv(), partSize })`. `credentials` is
 *   present only when both the key id and the secret are set.
 *
 * @example
 * ```ts
 * import { s3OptionsFromEnv } from "@ckpt/monitor/s3";
 * const found = s3OptionsFromEnv();
 * console.assert(typeof found === "object");
 * ```
 */
export function s3OptionsFromEnv(): S3EnvOptions {
  const out: S3EnvOptions = {};
  const id = readVariable("AWS_ACCESS_KEY_ID");
  const secret = readVariable("AWS_SECRET_ACCESS_KEY");
  if (id !== undefined && secret !== undefined) {
    const token = readVariable("AWS_SESSION_TOKEN");
    out.credentials = token === undefined
      ? { accessKeyId: id, secretAccessKey: secret }
      : { accessKeyId: id, secretAccessKey: secret, sessionToken: token };
  }
  const region = readVariable("AWS_REGION");
  if (region !== undefined) out.region = region;
  const endpoint = readVariable("AWS_ENDPOINT_URL");
  if (endpoint !== undefined) out.endpoint = endpoint;
  return out;
}
