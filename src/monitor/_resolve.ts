// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: a monitor's options, checked and resolved once, at construction,
// without touching the disk (the store's permission check excepted, which
// asks the runtime and no file).

import { describeValue as describe } from "../core/_describe.ts";
import {
  checkBoolean,
  checkCount,
  checkKnownKeys,
  CONFIG_KEYS,
  SNAKE_NAMES,
} from "../core/_validate.ts";
import { checkPrefix } from "../checkpoint/layout.ts";
import { countFromEnv, rankFromEnv } from "../store/_prepare.ts";
import { storeFor } from "../store/resolve.ts";
import type { CheckpointStore } from "../store/store.ts";
import {
  CheckpointConfig,
  type CheckpointMonitorOptions,
  type CheckpointSignal,
  type Clock,
} from "./options.ts";

const MONITOR_KEYS: ReadonlySet<string> = new Set([
  ...CONFIG_KEYS,
  "prefix",
  "directory",
  "config",
  "rank",
  "rankSize",
  "clock",
  "signals",
  "store",
  "onSaved",
  "onRemoved",
  "onError",
]);

/** The hooks a monitor calls with each event's detail. */
export type MonitorHooks = Pick<
  CheckpointMonitorOptions,
  "onSaved" | "onRemoved" | "onError"
>;

/** Every option of a monitor, checked, with its default applied. */
export interface ResolvedOptions {
  readonly config: CheckpointConfig;
  readonly prefix: string;
  readonly directory: string;
  readonly rank: number;
  readonly rankSize: number | undefined;
  readonly clock: Clock;
  readonly signals: readonly CheckpointSignal[];
  readonly store: CheckpointStore;
  readonly hooks: MonitorHooks;
}

/**
 * Checks a monitor's options: wrong types are TypeErrors, wrong values and
 * conflicts RangeErrors, a missing permission for `directory`
 * `Deno.errors.PermissionDenied` naming the flag (from the store).
 */
export function resolveOptions(
  options: CheckpointMonitorOptions,
): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot configure checkpoints: options must be an object, received ${
        describe(options)
      }`,
    );
  }
  checkKnownKeys(options, MONITOR_KEYS, SNAKE_NAMES);
  const config = resolveConfig(options);
  const prefix = checkPrefix(options.prefix ?? "CKP");
  const directory = resolveDirectory(options.directory ?? "./output");
  const rank = options.rank === undefined
    ? rankFromEnv()
    : checkCount(options.rank, "rank", true);
  const rankSize = options.rankSize === undefined
    ? countFromEnv("RANK_SIZE", 1)
    : checkCount(options.rankSize, "rankSize", true);
  if (rankSize === 0) {
    throw new RangeError(
      `Cannot configure checkpoints: option "rankSize" must be a positive integer, received number 0`,
    );
  }
  if (rankSize !== undefined && !(rank < rankSize)) {
    throw new RangeError(
      `Cannot configure checkpoints: rank ${rank} must be below rankSize ${rankSize} (option "rankSize" or env "RANK_SIZE")`,
    );
  }
  const clock = options.clock ?? (() => performance.now());
  checkFunction(clock, "clock");
  for (const hook of ["onSaved", "onRemoved", "onError"] as const) {
    const h = options[hook];
    if (h !== undefined) checkFunction(h, hook);
  }
  const hooks: MonitorHooks = {
    ...(options.onSaved && { onSaved: options.onSaved }),
    ...(options.onRemoved && { onRemoved: options.onRemoved }),
    ...(options.onError && { onError: options.onError }),
  };
  const store = resolveStore(options.store, directory);
  store.checkAccess(directory, "write");
  return {
    config,
    prefix,
    directory,
    rank,
    rankSize,
    clock,
    signals: resolveSignals(options.signals),
    store,
    hooks,
  };
}

function checkFunction(value: unknown, option: string): void {
  if (typeof value !== "function") {
    throw new TypeError(
      `Cannot use option "${option}": expected a function, received ${
        describe(value)
      }`,
    );
  }
}

function resolveDirectory(directory: unknown): string {
  if (typeof directory !== "string") {
    throw new TypeError(
      `Cannot use option "directory": expected a string, received ${
        describe(directory)
      }`,
    );
  }
  if (directory.length === 0 || directory.includes("\0")) {
    throw new RangeError(
      `Cannot use option "directory": expected a non-empty path without NUL, received ${
        describe(directory)
      }`,
    );
  }
  return directory;
}

function resolveStore(store: unknown, directory: string): CheckpointStore {
  if (store === undefined) return storeFor(directory);
  const methods = [
    "open",
    "write",
    "stat",
    "list",
    "remove",
    "ensureDir",
    "lock",
    "removeIncomplete",
    "checkAccess",
  ];
  const missing = typeof store === "object" && store !== null
    ? methods.filter((m) =>
      typeof (store as Record<string, unknown>)[m] !== "function"
    )
    : methods;
  if (missing.length > 0) {
    throw new TypeError(
      `Cannot use option "store": expected a CheckpointStore, received ${
        describe(store)
      } (missing ${missing.join(", ")})`,
    );
  }
  return store as CheckpointStore;
}

function resolveConfig(options: CheckpointMonitorOptions): CheckpointConfig {
  if (options.config === undefined) {
    const policy: Record<string, unknown> = {};
    for (const key of CONFIG_KEYS) {
      const value = (options as Record<string, unknown>)[key];
      if (value !== undefined) policy[key] = value;
    }
    return new CheckpointConfig(policy);
  }
  if (!(options.config instanceof CheckpointConfig)) {
    throw new TypeError(
      `Cannot use option "config": expected a CheckpointConfig, received ${
        describe(options.config)
      }`,
    );
  }
  const clash = CONFIG_KEYS.filter((key) =>
    (options as Record<string, unknown>)[key] !== undefined
  );
  if (clash.length > 0) {
    throw new TypeError(
      `Cannot use option "config" together with ${
        clash.map((k) => `"${k}"`).join(", ")
      }: set them in the CheckpointConfig instead`,
    );
  }
  return options.config;
}

function resolveSignals(value: unknown): readonly CheckpointSignal[] {
  if (value === undefined || value === false) return [];
  if (value === true) return ["SIGINT", "SIGTERM"];
  if (!Array.isArray(value)) {
    checkBoolean(value, "signals");
  }
  for (const s of value as unknown[]) {
    if (s !== "SIGINT" && s !== "SIGTERM") {
      throw new RangeError(
        `Cannot use option "signals": expected "SIGINT" or "SIGTERM", received ${
          describe(s)
        }`,
      );
    }
  }
  return [...new Set(value as CheckpointSignal[])];
}
