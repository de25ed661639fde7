// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * What the browser test and the OPFS bench share: the build, a static server
 * on 127.0.0.1 (a secure context, as OPFS requires) and Debian's Chromium
 * driven headless by puppeteer-core (no browser download).
 *
 * @module
 */

/**
 * puppeteer-core, pinned. Imported through a variable so that `deno check`
 * does not load its types: they pull in npm's `@types/node`, which then
 * replaces Deno's own `node:` types for the whole project.
 */
const PUPPETEER = "npm:puppeteer-core@25.16.0";

/** The part of puppeteer's `Page` the tests use. */
export interface Page {
  goto(url: string): Promise<unknown>;
  reload(): Promise<unknown>;
  evaluate<T>(fn: () => T | Promise<T>): Promise<T>;
  evaluate<T, A>(fn: (arg: A) => T | Promise<T>, arg: A): Promise<T>;
  createCDPSession(): Promise<{
    send(method: string, params?: object): Promise<unknown>;
    detach(): Promise<void>;
  }>;
  screenshot(options: { path: string; fullPage?: boolean }): Promise<unknown>;
  on(event: "console", fn: (message: { text(): string }) => void): unknown;
}

/** The part of puppeteer's `Browser` the tests use. */
export interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

interface Puppeteer {
  launch(options: object): Promise<Browser>;
}

/** Debian's Chromium (`scripts/chromium.sh` installs it). */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether {@linkcode CHROMIUM} is installed. */
export function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

async function run(args: string[]): Promise<void> {
  const out = await new Deno.Command("deno", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `deno ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/**
 * Builds the library with `deno task build:browser` and bundles the given
 * page scripts (entry path → served name) the same way.
 *
 * @returns The served files: `/ckpt.js` and one per entry.
 */
export async function buildPage(
  entries: Record<string, string>,
  scratch: string,
): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
  const names = Object.entries(entries);
  await Promise.all([
    run(["task", "--quiet", "build:browser"]),
    ...names.map(([entry, served]) =>
      run([
        "bundle",
        "--quiet",
        "--platform=browser",
        "--format=esm",
        "-o",
        `${scratch}/${served}`,
        entry,
      ])
    ),
  ]);
  const files = new Map<string, Uint8Array<ArrayBuffer>>();
  files.set("/ckpt.js", await Deno.readFile("dist/browser/ckpt.js"));
  for (const [, served] of names) {
    files.set(`/${served}`, await Deno.readFile(`${scratch}/${served}`));
  }
  return files;
}

/** A page that loads `/page.js`. */
const INDEX = new TextEncoder().encode(
  `<!doctype html><meta charset="utf-8"><title>@ckpt/monitor OPFS</title>` +
    `<script type="module" src="/page.js"></script>`,
);

/** A static server on 127.0.0.1 (an ephemeral port). */
export interface StaticServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
}

/** Serves `files` (and `/` → a page loading `/page.js`) on 127.0.0.1. */
export function serveStatic(
  files: Map<string, Uint8Array<ArrayBuffer>>,
): StaticServer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/") {
        return new Response(INDEX, {
          headers: { "content-type": "text/html" },
        });
      }
      const body = files.get(path);
      if (body === undefined) return new Response("not found", { status: 404 });
      return new Response(body, {
        headers: { "content-type": "text/javascript" },
      });
    },
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/**
 * Launches headless Chromium on an on-disk profile `userDataDir` (so OPFS
 * is really on disk and survives a restart).
 */
export async function launchChromium(userDataDir: string): Promise<Browser> {
  const puppeteer = (await import(PUPPETEER)).default as Puppeteer;
  return await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The sandbox cannot start as root, which CI is.
    args: ["--no-sandbox"],
    userDataDir,
    // Chromium needs none of ours; an explicit env also spares Deno's
    // --allow-env for the whole environment.
    env: {},
    protocolTimeout: 120_000,
  });
}
