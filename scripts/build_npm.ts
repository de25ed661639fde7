// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Builds the npm package: ES module JavaScript, `.d.ts` files and a
 * `package.json` in `dist/npm/` (or the folder given as the first
 * argument), compiled by a pinned TypeScript (`tsc` with
 * `rewriteRelativeImportExtensions`, so `./x.ts` imports become `./x.js`)
 * against pinned Node.js types. The compiler is installed with npm into
 * `dist/.tools/` (from npm's cache when it has it) and run by Node.js.
 *
 * Run: `deno task build:npm`, or import {@linkcode buildNpm}.
 *
 * @module
 */

import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The pinned tools: exact versions, and the one transitive dependency. */
const TOOLS = {
  devDependencies: { "typescript": "5.9.3", "@types/node": "20.19.43" },
  overrides: { "undici-types": "6.21.0" },
} as const;

/**
 * The package's entry points: export name → source. `.` is `mod.ts`'s API
 * plus `NodeStore` (`src/node_mod.ts`, which makes `NodeStore` the store of
 * plain paths under Node.js); the others are `deno.json`'s subpaths that
 * run under Node.js.
 */
export const ENTRY_POINTS: Readonly<Record<string, string>> = {
  ".": "src/node_mod.ts",
  "./node": "src/store/node/node_store.ts",
  "./sm4": "src/crypto/sm4.ts",
  "./tfjs": "src/adapters/tfjs.ts",
};

/** The oldest Node.js the package runs on (`zlib.crc32` came in 20.15). */
const NODE_ENGINES = ">=20.15";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** Options of {@linkcode buildNpm}. */
export interface BuildNpmOptions {
  /**
   * Where the package goes (emptied first).
   *
   * @default {"<root>/dist/npm"}
   */
  outDir?: string;
  /**
   * Where the compiler is installed (kept between builds).
   *
   * @default {"<root>/dist/.tools"}
   */
  toolsDir?: string;
}

/**
 * Runs a command and returns its stdout; throws with everything it printed
 * when it fails.
 *
 * @param command The program.
 * @param args Its arguments.
 * @param cwd Where it runs.
 * @returns Its standard output.
 */
export async function run(
  command: string,
  args: string[],
  cwd: string,
): Promise<string> {
  const out = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `\`${command} ${
        args.join(" ")
      }\` in "${cwd}" exited with ${out.code}:\n${stdout}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return stdout;
}

/**
 * `npm install` in `dir` (no install scripts), from npm's cache when it has
 * the packages.
 *
 * @param dir The npm project.
 * @param specs What to install (none: the project's `package.json`).
 * @returns npm's output.
 */
export function npmInstall(dir: string, specs: string[]): Promise<string> {
  return run("npm", [
    "install",
    "--prefer-offline",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    "--loglevel=error",
    ...specs,
  ], dir);
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Installs the pinned tools into `dir` unless they are there already. */
async function installTools(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const manifest = JSON.stringify({ private: true, ...TOOLS }, null, 2);
  const stamp = join(dir, "installed.json");
  if ((await readJson(stamp).catch(() => null))?.manifest === manifest) return;
  await Deno.writeTextFile(join(dir, "package.json"), manifest + "\n");
  await npmInstall(dir, []);
  await Deno.writeTextFile(stamp, JSON.stringify({ manifest }));
}

/**
 * What `tsc` is told of Deno: the Deno-only code the package carries
 * (`localStore`, the `Deno.*` branches of the runtime seams) compiles, and
 * runs only where `Deno` exists. Loose on purpose: Deno's own checker
 * (`deno check`) types that code; a test checks no `.d.ts` names `Deno`.
 */
const DENO_SHIM = `declare namespace Deno {
  type FileInfo = any;
  type FsFile = any;
  const errors: any;
  const SeekMode: any;
  const permissions: any;
  const env: any;
  const build: any;
  function open(...args: any[]): any;
  function stat(...args: any[]): any;
  function lstat(...args: any[]): any;
  function statSync(...args: any[]): any;
  function readDir(...args: any[]): any;
  function readDirSync(...args: any[]): any;
  function remove(...args: any[]): any;
  function rename(...args: any[]): any;
  function link(...args: any[]): any;
  function chmod(...args: any[]): any;
  function mkdir(...args: any[]): any;
  function mkdirSync(...args: any[]): any;
}
`;

/** What `tsc` compiles with: the project's strictness, Node's types. */
function tsconfig(
  outDir: string,
  toolsDir: string,
  shim: string,
): unknown {
  return {
    compilerOptions: {
      target: "ES2022",
      module: "ES2022",
      moduleResolution: "Bundler",
      lib: ["ES2024", "ESNext.Disposable", "ESNext.Float16", "DOM"],
      types: ["node"],
      typeRoots: [join(toolsDir, "node_modules", "@types")],
      rewriteRelativeImportExtensions: true,
      declaration: true,
      rootDir: join(ROOT, "src"),
      outDir: join(outDir, "esm"),
      skipLibCheck: true,
      strict: true,
      exactOptionalPropertyTypes: true,
      noImplicitOverride: true,
      noUncheckedIndexedAccess: true,
      useUnknownInCatchVariables: true,
      newLine: "lf",
    },
    files: [shim, ...Object.values(ENTRY_POINTS).map((p) => join(ROOT, p))],
  };
}

/** The built file of a source under `src/`, relative to the package. */
function built(source: string, ext: ".js" | ".d.ts"): string {
  const rel = relative(join(ROOT, "src"), join(ROOT, source));
  return "./" + join("esm", rel.replace(/\.ts$/, ext));
}

/**
 * Builds the npm package.
 *
 * @param options Where the package and the tools go.
 * @returns The package's folder.
 *
 * @example
 * ```ts ignore
 * import { buildNpm } from "./build_npm.ts";
 * const dir = await buildNpm({ outDir: "/tmp/ckpt-npm" });
 * ```
 */
export async function buildNpm(options: BuildNpmOptions = {}): Promise<string> {
  const outDir = options.outDir ?? join(ROOT, "dist", "npm");
  const toolsDir = options.toolsDir ?? join(ROOT, "dist", ".tools");
  await installTools(toolsDir);
  await Deno.remove(outDir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(outDir, { recursive: true });
  const stem = join(outDir, "..", `.tsconfig.${crypto.randomUUID()}`);
  const config = `${stem}.json`;
  const shim = `${stem}.deno.d.ts`;
  await Deno.writeTextFile(shim, DENO_SHIM);
  await Deno.writeTextFile(
    config,
    JSON.stringify(tsconfig(outDir, toolsDir, shim)),
  );
  try {
    await run("node", [
      join(toolsDir, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      config,
    ], ROOT);
  } finally {
    await Deno.remove(config);
    await Deno.remove(shim);
  }
  const deno = await readJson(join(ROOT, "deno.json")) ?? {};
  const exports: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(ENTRY_POINTS)) {
    exports[name] = {
      types: built(source, ".d.ts"),
      default: built(source, ".js"),
    };
  }
  const pkg = {
    name: deno.name,
    version: deno.version,
    license: deno.license,
    description:
      "Checkpoints for TypeScript training loops: MindSpore-compatible .ckpt and safetensors, durable and atomic, optionally encrypted",
    type: "module",
    exports,
    engines: { node: NODE_ENGINES },
  };
  await Deno.writeTextFile(
    join(outDir, "package.json"),
    JSON.stringify(pkg, null, 2) + "\n",
  );
  for (const file of ["README.md", "LICENSE"]) {
    await Deno.copyFile(join(ROOT, file), join(outDir, file));
  }
  return outDir;
}

if (import.meta.main) {
  const started = performance.now();
  const out = await buildNpm(
    Deno.args[0] === undefined ? {} : { outDir: Deno.args[0] },
  );
  console.log(
    `built ${relative(Deno.cwd(), out) || out} in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
}
