// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The `ckpt` command-line tool: inspect, verify and convert checkpoint
 * files, and find what a resume would pick.
 *
 * ```sh
 * deno run --allow-read=. --allow-write=. jsr:@ckpt/monitor/cli inspect model.ckpt
 * deno task cli verify output/checkpoint/rank_0/CKP_rank_0-1_4.ckpt
 * ```
 *
 * Run `--help` for every command and option. The logic is in
 * {@linkcode main}, which tests call directly.
 *
 * @example Run a command from code
 * ```ts
 * import { main } from "@ckpt/monitor/cli";
 * let out = "";
 * const code = await main(["--help"], {
 *   stdout: (t) => void (out += t),
 *   stderr: () => {},
 *   isTerminal: false,
 * });
 * console.assert(code === 0 && out.startsWith("Usage: ckpt"));
 * ```
 *
 * @module
 */
import { denoIO, main } from "./src/cli/main.ts";

export { type CliIO, denoIO, main, USAGE } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args, denoIO());
}
