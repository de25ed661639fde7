// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The command-line tool: argument parsing, dispatch to the subcommands,
 * and the mapping of errors to messages and exit codes.
 *
 * @module
 */

import { dirname } from "node:path";
import { parseArgs } from "node:util";
import {
  CorruptCheckpointError,
  DecryptionError,
  EncryptionMismatchError,
} from "../core/errors.ts";
import { type CliIO, InputError, parseHexKey, UsageError } from "./_util.ts";
import { checkKey, type CliDecrypt } from "./_input.ts";
import { ENC_MODES, type EncMode } from "../crypto/cipher.ts";
import { formatInspect, inspect } from "./inspect.ts";
import { formatVerify, verify } from "./verify.ts";
import { convert, formatConvert } from "./convert.ts";
import { formatLatest, latest } from "./latest.ts";

export type { CliIO };

/** The usage text. */
export const USAGE = `Usage: ckpt <command> [options]

Commands:
  inspect <file>       entries (name, dtype, shape, bytes), append info, cipher
  verify <file>        read every entry; check size and checksum against a
                       meta.json beside the file, when there is one
  convert <in> <out>   rewrite as .ckpt or .safetensors; encrypt, decrypt or
                       change the cipher
  latest <dir>         which checkpoint a resume would pick from
                       <dir>/checkpoint/rank_N/meta.json (each candidate
                       checked), the resume context, and why

Options:
  --json               print JSON instead of text
  --dec-key-hex HEX    key of an encrypted input (its cipher is read from the file)
  --dec-mode MODE      cipher of the input: AES-GCM, AES-CBC or SM4-CBC
  --format FORMAT      convert: ckpt or safetensors (default: the output's extension)
  --enc-key-hex HEX    convert: encrypt the output with this key (.ckpt only)
  --enc-mode MODE      convert: AES-GCM (default), AES-CBC or SM4-CBC
  --force              convert: replace an existing output file
  -h, --help           show this help

Exit status: 0 done; 1 the file failed (corrupt, wrong key, checksum mismatch);
2 bad arguments, or an input that is missing, unreadable or a folder.
`;

const COMMANDS: Record<string, { args: string[]; flags: string[] }> = {
  inspect: { args: ["file"], flags: ["json", "dec-key-hex", "dec-mode"] },
  verify: { args: ["file"], flags: ["json", "dec-key-hex", "dec-mode"] },
  convert: {
    args: ["in", "out"],
    flags: [
      "json",
      "dec-key-hex",
      "dec-mode",
      "format",
      "enc-key-hex",
      "enc-mode",
      "force",
    ],
  },
  latest: { args: ["dir"], flags: ["json", "dec-key-hex", "dec-mode"] },
};

const OPTIONS = {
  json: { type: "boolean" },
  force: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  format: { type: "string" },
  "dec-key-hex": { type: "string" },
  "dec-mode": { type: "string" },
  "enc-key-hex": { type: "string" },
  "enc-mode": { type: "string" },
} as const satisfies Record<
  string,
  { type: "boolean" | "string"; short?: string }
>;

function _mode(value: string | undefined, flag: string): EncMode | undefined {
  if (value === undefined) return undefined;
  const m = ENC_MODES.find((x) => x === value.toUpperCase());
  if (m === undefined) {
    throw new UsageError(
      `--${flag} must be one of ${ENC_MODES.join(", ")}, received ${
        JSON.stringify(value)
      }`,
    );
  }
  return m;
}

/**
 * Runs the tool with command-line arguments and returns the exit status.
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @param io Where to write, and whether standard output is a terminal.
 * @returns 0 on success, 1 when the file failed a check, 2 on bad arguments
 * or input paths.
 *
 * @example
 * ```ts
 * import { main } from "@ckpt/monitor/cli";
 * import { equal } from "node:assert/strict";
 * let err = "";
 * const code = await main(["frobnicate"], {
 *   stdout: () => {},
 *   stderr: (t) => void (err += t),
 *   isTerminal: false,
 * });
 * equal(code, 2);
 * equal(err, 'error: unknown command "frobnicate" (try --help)\n');
 * ```
 */
export async function main(args: string[], io: CliIO): Promise<number> {
  try {
    return await _run(args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof InputError) {
      io.stderr(`error: ${e.message}\n`);
      return 2;
    }
    if (
      e instanceof Deno.errors.PermissionDenied ||
      e instanceof Deno.errors.NotCapable
    ) {
      io.stderr(`error: ${_oneLine(e)}\n${_permissionHelp(args)}`);
      return 2;
    }
    if (
      e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.IsADirectory
    ) {
      io.stderr(`error: ${_oneLine(e)}\n`);
      return 2;
    }
    if (
      e instanceof CorruptCheckpointError ||
      e instanceof DecryptionError ||
      e instanceof EncryptionMismatchError ||
      e instanceof RangeError || e instanceof TypeError
    ) {
      io.stderr(`error: ${_flags(_oneLine(e))}\n`);
      return 1;
    }
    throw e;
  }
}

/** The folders a command reads and writes, from its arguments. */
function _access(args: readonly string[]): { read: string[]; write: string[] } {
  const [command, ...rest] = args;
  const paths: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--") {
      paths.push(...rest.slice(i + 1));
      break;
    }
    if (a.startsWith("-")) {
      // A flag that takes a value consumes the next argument.
      const name = a.replace(/^--?/, "");
      const spec = (OPTIONS as Record<string, { type: string }>)[name];
      if (spec?.type === "string" && !a.includes("=")) i++;
      continue;
    }
    paths.push(a);
  }
  const folder = (p: string) => dirname(p);
  if (command === "latest") return { read: paths.slice(0, 1), write: [] };
  if (command === "convert") {
    const out = paths[1] === undefined ? [] : [folder(paths[1])];
    return {
      read: [...new Set([...paths.slice(0, 1).map(folder), ...out])],
      write: out,
    };
  }
  return { read: paths.slice(0, 1).map(folder), write: [] };
}

/**
 * How to run the tool with access to the user's folders: Deno grants a
 * program only the folders named on its command line, and `deno task cli`
 * names the repository's.
 */
function _permissionHelp(args: readonly string[]): string {
  const { read, write } = _access(args);
  const flags = [
    read.length > 0 ? `-R=${read.join(",")}` : "-R",
    ...(write.length > 0 ? [`-W=${write.join(",")}`] : []),
  ].map(_shellWord).join(" ");
  // Keys are not repeated into terminals and logs.
  const shown = args.map((a, i) =>
    /^--(dec|enc)-key-hex=/.test(a)
      ? a.replace(/=.*/, "=<key>")
      : /^--(dec|enc)-key-hex$/.test(args[i - 1] ?? "")
      ? "<key>"
      : a
  );
  const quoted = shown.map(_shellWord).join(" ");
  return `The tool reaches only the folders Deno lets it. Run it with access to yours:
  deno run ${flags} jsr:@ckpt/monitor/cli ${quoted}
or install it once, for those folders, as the command \`ckpt\`:
  deno install --global --name ckpt ${flags} jsr:@ckpt/monitor/cli
(\`deno task cli\` in a clone of the repository reaches only the clone's folder.)
`;
}

/** `word` as a POSIX shell reads it back: single-quoted when needed. */
function _shellWord(word: string): string {
  return /^[\w@%+=:,./<>-]+$/.test(word)
    ? word
    : `'${word.replaceAll("'", "'\\''")}'`;
}

/** The closest name to `name` among `known`, when one is close enough. */
function _closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    // A known name that starts with what was typed (`--dec-key`).
    const d = k.startsWith(name) ? 0.5 : _distance(name, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3))
    ? best
    : undefined;
}

/** Levenshtein distance (edits to turn `a` into `b`). */
function _distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j]! + 1,
        row[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** Refuses an option the tool does not know, suggesting the nearest. */
function _checkOptions(rest: readonly string[]): void {
  for (const a of rest) {
    if (a === "--") return;
    if (!a.startsWith("-") || a === "-") continue;
    const name = a.replace(/^--?/, "").split("=")[0]!;
    const known = a.startsWith("--")
      ? Object.hasOwn(OPTIONS, name)
      : Object.values(OPTIONS).some((o) => "short" in o && o.short === name);
    if (known) continue;
    const near = _closest(name, Object.keys(OPTIONS));
    throw new UsageError(
      `unknown option "${a.split("=")[0]}"${
        near === undefined ? "" : ` (did you mean --${near}?)`
      }`,
    );
  }
}

/** First line of an error message (Deno's permission errors name the flag). */
function _oneLine(e: Error): string {
  return e.message.split("\n")[0]!;
}

/** Speaks of the tool's flags where a library message names options. */
function _flags(message: string): string {
  return message.replace(
    /pass its key as decKey \(the cipher is read from the file\)/g,
    "pass its key as --dec-key-hex",
  );
}

async function _run(args: string[], io: CliIO): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined) throw new UsageError("no command given");
  if (command === "-h" || command === "--help" || command === "help") {
    io.stdout(USAGE);
    return 0;
  }
  const spec = COMMANDS[command];
  if (spec === undefined) {
    if (command.startsWith("-")) {
      throw new UsageError(`expected a command before ${command}`);
    }
    const near = _closest(command, Object.keys(COMMANDS));
    throw new InputError(
      `unknown command ${JSON.stringify(command)} (${
        near === undefined ? "try --help" : `did you mean ${near}?`
      })`,
    );
  }
  _checkOptions(rest);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: OPTIONS,
    });
  } catch (e) {
    throw new UsageError(
      (e as Error).message.split("\n")[0]!.replace(
        /^Unknown option/,
        "unknown option",
      ),
    );
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  for (const key of Object.keys(values)) {
    if (!spec.flags.includes(key)) {
      throw new UsageError(`${command} does not take --${key}`);
    }
  }
  if (positionals.length !== spec.args.length) {
    throw new UsageError(
      `${command} takes ${
        spec.args.map((a) => `<${a}>`).join(" ")
      }, received ${positionals.length} argument${
        positionals.length === 1 ? "" : "s"
      }`,
    );
  }
  const decrypt: CliDecrypt = {};
  if (values["dec-key-hex"] !== undefined) {
    decrypt.decKey = parseHexKey(values["dec-key-hex"], "dec-key-hex");
  }
  const decMode = _mode(values["dec-mode"], "dec-mode");
  if (decMode !== undefined) {
    if (decrypt.decKey === undefined) {
      throw new UsageError("--dec-mode needs --dec-key-hex");
    }
    decrypt.decMode = decMode;
  }
  const json = values.json === true;
  const print = <T>(result: T, text: (r: T) => string) => {
    io.stdout(
      json ? JSON.stringify(result, null, 2) + "\n" : text(result) + "\n",
    );
  };

  switch (command) {
    case "inspect": {
      print(await inspect(positionals[0]!, decrypt), formatInspect);
      return 0;
    }
    case "verify": {
      const result = await verify(positionals[0]!, decrypt, io);
      print(result, formatVerify);
      return result.ok ? 0 : 1;
    }
    case "convert": {
      const format = values.format;
      if (
        format !== undefined && format !== "ckpt" && format !== "safetensors"
      ) {
        throw new UsageError(
          `--format must be ckpt or safetensors, received ${
            JSON.stringify(format)
          }`,
        );
      }
      const encMode = _mode(values["enc-mode"], "enc-mode");
      const encKey = values["enc-key-hex"] === undefined
        ? undefined
        : parseHexKey(values["enc-key-hex"], "enc-key-hex");
      if (encMode !== undefined && encKey === undefined) {
        throw new UsageError("--enc-mode needs --enc-key-hex");
      }
      if (encKey !== undefined) checkKey(encKey, encMode ?? "AES-GCM", "enc");
      print(
        await convert(positionals[0]!, positionals[1]!, {
          ...decrypt,
          ...(format === undefined ? {} : { format }),
          ...(encKey === undefined ? {} : { encKey }),
          ...(encMode === undefined ? {} : { encMode }),
          force: values.force === true,
        }, io),
        formatConvert,
      );
      return 0;
    }
    default: {
      print(await latest(positionals[0]!, decrypt), formatLatest);
      return 0;
    }
  }
}

/**
 * The {@linkcode CliIO} of the running process: Deno's standard output and
 * error, and whether standard output is a terminal.
 *
 * @returns The process's IO.
 *
 * @example
 * ```ts
 * import { denoIO } from "@ckpt/monitor/cli";
 * const io = denoIO();
 * console.assert(typeof io.isTerminal === "boolean");
 * ```
 */
export function denoIO(): CliIO {
  const encoder = new TextEncoder();
  const write = (file: typeof Deno.stdout, text: string) => {
    const bytes = encoder.encode(text);
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
  };
  return {
    stdout: (text) => write(Deno.stdout, text),
    stderr: (text) => write(Deno.stderr, text),
    isTerminal: Deno.stdout.isTerminal(),
  };
}
