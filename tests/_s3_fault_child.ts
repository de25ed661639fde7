// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child process of the S3 store tests: puts a fault-injecting proxy between
 * an S3Store and the real gateway (run with `--allow-net=127.0.0.1`, since
 * the proxy listens on a free port). The proxy forwards requests (reading
 * their heads to find where each ends) and replies unchanged, except for the
 * requests its rules pick: it drops the connection in the middle of a
 * request's body, or answers `503 SlowDown` itself without forwarding.
 *
 * Argument 1 is the store's options as JSON, argument 2 a folder
 * `s3://bucket/prefix`. Prints one JSON line: what each scenario saw.
 */
import { S3Store, type S3StoreOptions } from "../src/store/s3/mod.ts";

const [config, dirArg] = Deno.args;
const dir = dirArg!;
const options = JSON.parse(config!) as S3StoreOptions;
const upstream = new URL(options.endpoint!);
const MIB = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Rule {
  /** Picks a request by its method and target (path and query). */
  readonly match: (method: string, target: string) => boolean;
  readonly action: "drop" | "slowdown";
  /** How many more requests it picks (Infinity: all). */
  times: number;
  /** How many it picked. */
  hits: number;
}
let rules: Rule[] = [];

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function headEnd(buf: Uint8Array): number {
  for (let i = 3; i < buf.length; i++) {
    if (
      buf[i - 3] === 13 && buf[i - 2] === 10 && buf[i - 1] === 13 &&
      buf[i] === 10
    ) return i + 1;
  }
  return -1;
}

const SLOWDOWN =
  "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/** Open connection pairs, closed at the end (idle keep-alive ones too). */
const open = new Set<() => void>();

async function handle(client: Deno.Conn): Promise<void> {
  const server = await Deno.connect({
    hostname: upstream.hostname,
    port: Number(upstream.port),
  });
  const toClient = client.writable.getWriter();
  const toServer = server.writable.getWriter();
  const fromClient = client.readable.getReader();
  const close = () => {
    try {
      client.close();
    } catch { /* already closed */ }
    try {
      server.close();
    } catch { /* already closed */ }
  };
  open.add(close);
  // Replies go back unchanged.
  const replies = (async () => {
    for await (const chunk of server.readable) await toClient.write(chunk);
  })().catch(() => {});
  let buf: Uint8Array = new Uint8Array(0);
  const more = async () => {
    const r = await fromClient.read();
    if (r.done) return false;
    buf = concat(buf, r.value);
    return true;
  };
  try {
    for (;;) {
      let end: number;
      while ((end = headEnd(buf)) < 0) if (!(await more())) return;
      const head = buf.subarray(0, end);
      buf = buf.subarray(end);
      const text = decoder.decode(head);
      const [method = "", target = ""] = text.split(" ");
      const length = Number(
        /\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? 0,
      );
      const rule = rules.find((r) => r.times > 0 && r.match(method, target));
      if (rule !== undefined) {
        rule.times--;
        rule.hits++;
      }
      if (rule?.action === "drop") {
        while (buf.length < length / 2) if (!(await more())) return;
        await toServer.write(
          concat(head, buf.subarray(0, Math.floor(length / 2))),
        );
        return; // `finally` drops both connections mid-body.
      }
      while (buf.length < length) if (!(await more())) return;
      const body = buf.subarray(0, length);
      buf = buf.subarray(length);
      if (rule?.action === "slowdown") {
        await toClient.write(encoder.encode(
          `HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: ${SLOWDOWN.length}\r\n\r\n${SLOWDOWN}`,
        ));
        continue;
      }
      await toServer.write(concat(head, body));
    }
  } catch {
    // A connection closed under us: drop the pair.
  } finally {
    close();
    open.delete(close);
    await replies;
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const serving = (async () => {
  for await (const conn of listener) handle(conn).catch(() => {});
})().catch(() => {});
const proxied = new S3Store({
  ...options,
  endpoint: `http://127.0.0.1:${listener.addr.port}`,
  partSize: 5 * MIB,
  retryBaseMs: 10,
});
const direct = new S3Store(options);
const data = new Uint8Array(12 * MIB).map((_, i) => (i * 7 + (i >> 13)) & 0xff);
const part = (n: number) => (m: string, t: string) =>
  m === "PUT" && t.includes(`partNumber=${n}&`);
const out: Record<string, unknown> = {};

// 1. Transient faults: a SlowDown on part 1, a connection dropped in the
//    middle of part 2's body, a SlowDown on the commit. The write succeeds.
rules = [
  { match: part(1), action: "slowdown", times: 1, hits: 0 },
  { match: part(2), action: "drop", times: 1, hits: 0 },
  {
    match: (m, t) => m === "POST" && t.includes("uploadId="),
    action: "slowdown",
    times: 1,
    hits: 0,
  },
];
const written = await proxied.write(`${dir}/retried.bin`, async (sink) => {
  for (let at = 0; at < data.length; at += MIB) {
    await sink.write(data.subarray(at, at + MIB));
  }
});
const back = await direct.readFile(`${dir}/retried.bin`, data.length);
out.transient = {
  bytes: written.bytes,
  hits: rules.map((r) => r.hits),
  identical: back.length === data.length && back.every((b, i) => b === data[i]),
};

// 2. A server that keeps throttling: bounded attempts, a clear error, the
//    upload aborted, nothing visible.
rules = [{ match: part(2), action: "slowdown", times: Infinity, hits: 0 }];
const limited = new S3Store({
  ...options,
  endpoint: `http://127.0.0.1:${listener.addr.port}`,
  partSize: 5 * MIB,
  retryBaseMs: 10,
  maxAttempts: 3,
});
try {
  await limited.write(`${dir}/throttled.bin`, async (sink) => {
    for (let at = 0; at < data.length; at += MIB) {
      await sink.write(data.subarray(at, at + MIB));
    }
  });
  out.throttled = "resolved";
} catch (error) {
  out.throttled = String(error);
}
out.throttledHits = rules[0]!.hits;
out.throttledVisible = await direct.stat(`${dir}/throttled.bin`);
out.leftUploads = await direct.removeIncomplete(dir);

listener.close();
await serving;
for (const close of open) close();
console.log(JSON.stringify(out));
