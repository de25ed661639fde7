// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * An exclusive lock on an object store: a claim object created with
 * `If-None-Match: *` (only one creator succeeds), holding its owner, a random
 * token and a lease expiry. The rule, documented in docs/object-storage.md:
 *
 * 1. Take: create the claim with `If-None-Match: *`. Created: held.
 * 2. Found a claim: read it (body and ETag). Its token is ours (our own
 *    create whose reply was lost and was retried): held. Its lease is
 *    still running (`now ≤ expiresAt + skewMs` by the taker's clock): wait
 *    (`wait: true`, polling) or give up (`wait: false` → `null`).
 * 3. Lease run out: replace the claim with ours by a compare-and-swap,
 *    `PUT` with `If-Match: <the ETag read>`. Of several takers of one stale
 *    claim only one swap succeeds (the others see 412 and start again at 1).
 * 4. Hold: the holder renews its lease every `leaseMs / 3` by the same
 *    compare-and-swap on its own ETag. A renewal that finds the claim gone
 *    or someone else's, or that could not reach the server before the lease
 *    ran out, marks the lock lost (`lost`, `signal` aborts); the holder
 *    must then not commit.
 * 5. Release: stop renewing, read the claim, delete it if it still holds
 *    our token.
 *
 * So two holders never both proceed while each holder's clock agrees with
 * the others' within `skewMs` and no holder stalls for longer than
 * `leaseMs × 2/3 + skewMs` between checking `lost` and acting. Internal.
 *
 * @module
 */

import type { StoreLock } from "../store.ts";
import { type S3Client, type S3Reply, sleep } from "./_client.ts";
import { randomHex } from "./_sigv4.ts";

/** Lease settings. */
export interface ClaimTiming {
  /** How long a claim lasts without renewal. */
  readonly leaseMs: number;
  /** How far clocks of two hosts may disagree. */
  readonly skewMs: number;
  /** Pause between looks at a held claim. */
  readonly pollMs: number;
}

interface ClaimBody {
  owner: string;
  token: string;
  expiresAt: number;
  leaseMs: number;
  renewals: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parseClaim(bytes: Uint8Array): ClaimBody | null {
  try {
    const v = JSON.parse(decoder.decode(bytes));
    if (
      typeof v?.token === "string" && typeof v?.expiresAt === "number"
    ) return v as ClaimBody;
  } catch {
    // A claim that is not ours to read: treated as run out (below).
  }
  return null;
}

/** Where a claim lives and how to reach it. */
export interface ClaimTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly path: string;
}

/**
 * S3 servers disagree on the form of an `If-Match` value on writes: AWS
 * takes the ETag as it was given (quoted), Ceph RGW 16 only unquoted. The
 * first swap whose precondition held but was refused tries the other form;
 * the form that works is kept per client.
 */
const unquotedIfMatch = new WeakMap<S3Client, boolean>();

/** `PUT` with `If-Match: etag`: the reply, 412 when the object changed. */
async function swap(
  t: ClaimTarget,
  etag: string,
  body: Uint8Array,
): Promise<S3Reply> {
  const bare = etag.replace(/^"|"$/g, "");
  const first = unquotedIfMatch.get(t.client) ?? true;
  let reply: S3Reply | null = null;
  for (const unquoted of [first, !first]) {
    reply = await t.client.send({
      method: "PUT",
      bucket: t.bucket,
      key: t.key,
      body,
      headers: {
        "if-match": unquoted ? bare : `"${bare}"`,
        "content-type": "application/json",
      },
      action: "renew or take over the lock",
      accept: [404, 412],
    });
    if (reply.status === 200) {
      unquotedIfMatch.set(t.client, unquoted);
      return reply;
    }
    const now = await read(t);
    if (now === null || now.etag.replace(/^"|"$/g, "") !== bare) return reply;
  }
  return reply!;
}

async function read(
  t: ClaimTarget,
): Promise<{ claim: ClaimBody | null; etag: string } | null> {
  const reply = await t.client.send({
    method: "GET",
    bucket: t.bucket,
    key: t.key,
    action: "read the lock",
    accept: [404],
  });
  if (reply.status === 404) return null;
  return {
    claim: parseClaim(reply.body),
    etag: reply.headers.get("etag") ?? "",
  };
}

/**
 * A lock held on an object store: a {@linkcode StoreLock} that also says
 * whether its lease was lost.
 *
 * @example
 * ```ts ignore
 * import { S3Store } from "@ckpt/monitor/s3";
 * const store = new S3Store({ credentials: { accessKeyId: "…", secretAccessKey: "…" } });
 * const lock = await store.lock("s3://bucket/run1/.merge.lock");
 * if (lock !== null && !lock.lost) {
 *   // … commit …
 * }
 * await lock?.release();
 * ```
 */
export interface S3Lock extends StoreLock {
  /** Whether the lease was lost (the claim was taken over or could not be renewed); never commit then. */
  readonly lost: boolean;
  /** Aborts when the lease is lost. */
  readonly signal: AbortSignal;
}

/** A held claim. */
export class ClaimLock implements S3Lock {
  readonly #target: ClaimTarget;
  readonly #timing: ClaimTiming;
  readonly #body: ClaimBody;
  readonly #controller = new AbortController();
  #etag: string;
  #timer: ReturnType<typeof setInterval>;
  #renewing: Promise<void> | null = null;
  #released = false;

  constructor(
    target: ClaimTarget,
    timing: ClaimTiming,
    body: ClaimBody,
    etag: string,
  ) {
    this.#target = target;
    this.#timing = timing;
    this.#body = body;
    this.#etag = etag;
    this.#timer = setInterval(() => {
      if (this.#renewing === null) {
        this.#renewing = this.#renew().finally(() => {
          this.#renewing = null;
        });
      }
    }, Math.max(10, timing.leaseMs / 3));
    const unref = (globalThis as {
      Deno?: { unrefTimer?(id: ReturnType<typeof setInterval>): void };
    })
      .Deno?.unrefTimer;
    unref?.(this.#timer);
  }

  /** Whether the lease was lost (see the module's rule); never commit then. */
  get lost(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Aborts when the lease is lost. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  #lose(why: string): void {
    if (this.lost) return;
    clearInterval(this.#timer);
    this.#controller.abort(
      new Error(`Lost the lock "${this.#target.path}": ${why}`),
    );
  }

  /** One renewal; never rejects (a failure is retried at the next tick). */
  async #renew(): Promise<void> {
    if (this.#released || this.lost) return;
    const body: ClaimBody = {
      ...this.#body,
      expiresAt: Date.now() + this.#timing.leaseMs,
      renewals: this.#body.renewals + 1,
    };
    try {
      const reply = await swap(
        this.#target,
        this.#etag,
        encoder.encode(JSON.stringify(body)),
      );
      if (reply.status === 200) {
        this.#etag = reply.headers.get("etag") ?? this.#etag;
        this.#body.expiresAt = body.expiresAt;
        this.#body.renewals = body.renewals;
      } else {
        this.#lose("the claim was removed or taken over");
      }
    } catch {
      if (Date.now() > this.#body.expiresAt) {
        this.#lose("could not renew the lease before it ran out");
      }
    }
  }

  /** Stops renewing and deletes the claim if it is still ours. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    await this.#renewing;
    if (this.lost) return;
    const now = await read(this.#target);
    if (now?.claim?.token !== this.#body.token) return;
    await this.#target.client.send({
      method: "DELETE",
      bucket: this.#target.bucket,
      key: this.#target.key,
      action: "release the lock",
      accept: [404],
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** Takes the claim at `target` (see the module's rule). */
export async function takeClaim(
  target: ClaimTarget,
  timing: ClaimTiming,
  owner: string,
  wait: boolean,
): Promise<ClaimLock | null> {
  const body: ClaimBody = {
    owner,
    token: randomHex(16),
    expiresAt: 0,
    leaseMs: timing.leaseMs,
    renewals: 0,
  };
  for (;;) {
    body.expiresAt = Date.now() + timing.leaseMs;
    const bytes = encoder.encode(JSON.stringify(body));
    const created = await target.client.send({
      method: "PUT",
      bucket: target.bucket,
      key: target.key,
      body: bytes,
      headers: { "if-none-match": "*", "content-type": "application/json" },
      action: "take the lock",
      accept: [412],
    });
    if (created.status === 200) {
      return new ClaimLock(
        target,
        timing,
        body,
        created.headers.get("etag") ?? "",
      );
    }
    const found = await read(target);
    if (found === null) continue; // Released meanwhile: try again at once.
    if (found.claim?.token === body.token) {
      // Our own create, retried after its reply was lost.
      return new ClaimLock(target, timing, found.claim, found.etag);
    }
    const expiresAt = found.claim?.expiresAt ?? 0;
    if (Date.now() > expiresAt + timing.skewMs) {
      body.expiresAt = Date.now() + timing.leaseMs;
      const taken = await swap(
        target,
        found.etag,
        encoder.encode(JSON.stringify(body)),
      );
      if (taken.status === 200) {
        return new ClaimLock(
          target,
          timing,
          body,
          taken.headers.get("etag") ?? "",
        );
      }
      continue; // Another taker won the swap, or the holder renewed.
    }
    if (!wait) return null;
    const left = expiresAt + timing.skewMs - Date.now();
    await sleep(
      Math.max(20, Math.min(timing.pollMs, left + 20)) *
        (0.75 + Math.random() / 2),
    );
  }
}
