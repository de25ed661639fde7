// Copyright 2026 the @ckpt/monitor authors. MIT license.
// The layout's rules, checked on the source itself: no import cycle,
// dependencies point one way between the folders of src/, and only
// src/store/ touches Deno's file APIs (the storage seam).

import { deepEqual, equal, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const SRC = `${ROOT}src`;

/**
 * What each folder of src/ may import (besides itself). The order is the
 * architecture: the vocabulary at the bottom, the entry points on top.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  core: [],
  tensor: ["core"],
  format: ["core", "tensor"],
  crypto: ["core"],
  store: ["core"],
  checkpoint: ["core", "tensor", "format", "crypto", "store"],
  background: ["core", "tensor", "format", "crypto", "store", "checkpoint"],
  resume: ["core", "tensor", "format", "crypto", "store", "checkpoint"],
  monitor: [
    "core",
    "tensor",
    "format",
    "crypto",
    "store",
    "checkpoint",
    "background",
    "resume",
  ],
  adapters: ["core", "tensor", "checkpoint", "resume", "monitor"],
  cli: [
    "core",
    "tensor",
    "format",
    "crypto",
    "store",
    "checkpoint",
    "resume",
  ],
};

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await sourceFiles(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** Code without comments, so doc examples do not count as imports or calls. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** The relative modules a file imports (static, dynamic, Worker URLs). */
function importsOf(file: string, text: string): string[] {
  const dir = file.slice(0, file.lastIndexOf("/"));
  const specs = [
    ...text.matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g),
    ...text.matchAll(/\bimport\s*\(\s*"(\.{1,2}\/[^"]+)"/g),
    ...text.matchAll(/\bimport\s+"(\.{1,2}\/[^"]+)"/g),
    ...text.matchAll(/new URL\(\s*"(\.{1,2}\/[^"]+\.ts)"/g),
  ].map((m) => m[1]!);
  return specs.map((s) => new URL(s, `file://${dir}/`).pathname);
}

async function graph(): Promise<Map<string, string[]>> {
  const g = new Map<string, string[]>();
  for (const file of await sourceFiles(SRC)) {
    g.set(file, importsOf(file, code(await Deno.readTextFile(file))));
  }
  return g;
}

function folderOf(file: string): string {
  return file.slice(SRC.length + 1).split("/")[0]!;
}

Deno.test("src/ has no import cycle (every file, type imports included)", async () => {
  const g = await graph();
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const visit = (u: string, stack: string[]) => {
    state.set(u, 1);
    stack.push(u);
    for (const v of g.get(u) ?? []) {
      if (state.get(v) === 1) {
        cycles.push(
          [...stack.slice(stack.indexOf(v)), v].map((f) =>
            f.slice(SRC.length + 1)
          ).join(" -> "),
        );
      } else if (!state.has(v)) visit(v, stack);
    }
    stack.pop();
    state.set(u, 2);
  };
  for (const file of g.keys()) if (!state.has(file)) visit(file, []);
  deepEqual(cycles, []);
});

Deno.test("`deno info --json mod.ts` shows no cycle", async () => {
  const out = await new Deno.Command("deno", {
    args: ["info", "--json", `${ROOT}mod.ts`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: {
        code?: { specifier: string };
        type?: { specifier: string };
      }[];
    }[];
  };
  const g = new Map(
    info.modules.map((m) => [
      m.specifier,
      (m.dependencies ?? []).flatMap((d) =>
        [d.code?.specifier, d.type?.specifier].filter((s): s is string =>
          s !== undefined
        )
      ),
    ]),
  );
  ok(g.size > 20, `deno info listed only ${g.size} modules`);
  const done = new Set<string>();
  const onStack = new Set<string>();
  const cyclic: string[] = [];
  const visit = (u: string) => {
    onStack.add(u);
    for (const v of g.get(u) ?? []) {
      if (onStack.has(v)) cyclic.push(`${u} -> ${v}`);
      else if (!done.has(v)) visit(v);
    }
    onStack.delete(u);
    done.add(u);
  };
  for (const m of g.keys()) if (!done.has(m)) visit(m);
  deepEqual(cyclic, []);
});

Deno.test("dependencies between the folders of src/ point one way", async () => {
  const g = await graph();
  const wrong: string[] = [];
  for (const [file, deps] of g) {
    const from = folderOf(file);
    if (from.endsWith(".ts")) continue; // An entry file at src/'s top: anything.
    const allowed = MAY_IMPORT[from];
    ok(allowed !== undefined, `src/${from}/ is not in the layering table`);
    for (const dep of deps) {
      const to = folderOf(dep);
      if (to !== from && !allowed.includes(to)) {
        wrong.push(
          `${file.slice(SRC.length + 1)} imports ${dep.slice(SRC.length + 1)}`,
        );
      }
    }
  }
  deepEqual(wrong, []);
});

/** Deno's file-system calls: only the store may make them. */
const FILE_API =
  /\bDeno\.(open|openSync|create|createSync|readFile|readFileSync|readTextFile|readTextFileSync|writeFile|writeFileSync|writeTextFile|writeTextFileSync|readDir|readDirSync|stat|statSync|lstat|lstatSync|mkdir|mkdirSync|remove|removeSync|rename|renameSync|link|linkSync|symlink|symlinkSync|chmod|chmodSync|truncate|truncateSync|makeTempDir|makeTempFile|realPath|realPathSync|copyFile|copyFileSync|FsFile|utime)\b/;

Deno.test("only src/store/ calls Deno's file APIs", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(SRC)) {
    const rel = file.slice(SRC.length + 1);
    if (rel.startsWith("store/")) continue;
    // Generated Worker bundles hold the store's code as text.
    if (/\/_[a-z0-9_]+_worker_code\.ts$/.test(file)) continue;
    const m = FILE_API.exec(code(await Deno.readTextFile(file)));
    if (m !== null) offenders.push(`${rel}: ${m[0]}`);
  }
  deepEqual(offenders, []);
});
