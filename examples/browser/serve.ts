// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Builds the demo (the page and the training Worker, each one ES module
// bundled with the library and TensorFlow.js from npm by `deno bundle`, as
// `deno task build:browser` does) and serves it on 127.0.0.1, a secure
// context as OPFS requires. `deno task demo:browser` runs it; the browser
// test imports buildDemo and serveDemo.

const HERE = new URL(".", import.meta.url);
const ROOT = new URL("../../", import.meta.url);

/** The bundled entries: source (beside this file) → served name. */
const ENTRIES = { "page.ts": "page.js", "train_worker.ts": "train_worker.js" };

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
};

/**
 * Bundles the demo into `out` (a folder) and returns the served files
 * (path → bytes): `/`, `/index.html`, `/page.js`, `/train_worker.js`.
 */
export async function buildDemo(
  out: string,
): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
  await Promise.all(
    Object.entries(ENTRIES).map(async ([source, served]) => {
      const result = await new Deno.Command("deno", {
        args: [
          "bundle",
          "--quiet",
          "--platform=browser",
          "--format=esm",
          `--import-map=${
            new URL("tools/browser/import_map.json", ROOT).pathname
          }`,
          "-o",
          `${out}/${served}`,
          new URL(source, HERE).pathname,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!result.success) {
        throw new Error(
          `deno bundle ${source} failed:\n${
            new TextDecoder().decode(result.stderr)
          }`,
        );
      }
    }),
  );
  const index = await Deno.readFile(new URL("index.html", HERE));
  const files = new Map([["/", index], ["/index.html", index]]);
  for (const served of Object.values(ENTRIES)) {
    files.set(`/${served}`, await Deno.readFile(`${out}/${served}`));
  }
  return files;
}

/** A server on 127.0.0.1; `origin` is `http://127.0.0.1:<port>`. */
export interface DemoServer extends AsyncDisposable {
  readonly origin: string;
}

/** Serves `files` on 127.0.0.1 (`port` 0: an ephemeral one). */
export function serveDemo(
  files: Map<string, Uint8Array<ArrayBuffer>>,
  port = 0,
): DemoServer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      const body = files.get(path);
      if (body === undefined) return new Response("not found", { status: 404 });
      const ext = path === "/" ? "html" : path.split(".").pop() ?? "";
      return new Response(body, {
        headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
      });
    },
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const out = new URL("dist/browser/demo", ROOT).pathname;
  await Deno.mkdir(out, { recursive: true });
  const files = await buildDemo(out);
  const server = serveDemo(files, Number(Deno.args[0] ?? 8000));
  console.log(`The demo is at ${server.origin}/ (Ctrl-C ends it)`);
}
