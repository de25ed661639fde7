// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * Child of `positional_write_test.ts`, run with Deno's default handling of
 * unhandled rejections (one ends the process): in `<folder>` (a small
 * tmpfs), saves an earlier checkpoint, fills the file system but for a few
 * MiB, then tries an encrypted save of 16 MiB in each mode, whose
 * positional writes run out of space midway with several in flight. Prints
 * one JSON line per attempt (the error's code and message, the folder's
 * files, whether the earlier checkpoint still loads), waits for any stray
 * rejection to surface, then prints `done`.
 *
 * Usage: deno run _positional_fail_child.ts <folder>
 */
import { type EncMode, loadCheckpoint, saveCheckpoint } from "../mod.ts";

const dir = Deno.args[0]!;
const MIB = 1024 * 1024;
const earlier = `${dir}/earlier.ckpt`;
const w = new Float32Array(1024).fill(1);
await saveCheckpoint(earlier, {
  w: { dtype: "Float32", shape: [1024], data: w },
});

// Leave 6 MiB free: the 16 MiB save fails after several blocks were written.
const chunk = new Uint8Array(MIB);
{
  using f = await Deno.open(`${dir}/filler`, { write: true, create: true });
  let size = 0;
  try {
    while (true) size += await f.write(chunk);
  } catch { /* full */ }
  await f.truncate(Math.max(0, size - 6 * MIB));
}

const big = new Float32Array(4 * MIB).map((_, i) => i);
for (
  const [mode, keyLength] of [["AES-GCM", 32], ["AES-CBC", 16], [
    "SM4-CBC",
    16,
  ]] as [EncMode, number][]
) {
  const key = crypto.getRandomValues(new Uint8Array(keyLength));
  let outcome: Record<string, unknown>;
  try {
    await saveCheckpoint(`${dir}/new.ckpt`, {
      big: { dtype: "Float32", shape: [big.length], data: big },
    }, { encKey: key, encMode: mode });
    outcome = { code: "saved" };
  } catch (error) {
    const e = error as Error & { code?: string };
    outcome = { code: e.code, message: e.message };
  }
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) files.push(entry.name);
  let earlierLoads = false;
  try {
    const loaded = await loadCheckpoint(earlier);
    earlierLoads = (loaded.get("w") as { data: Float32Array }).data[0] === 1;
  } catch { /* stays false */ }
  console.log(
    JSON.stringify({ mode, ...outcome, files: files.sort(), earlierLoads }),
  );
}
// Any write still running (or a rejection nobody handled) would surface now.
await new Promise((resolve) => setTimeout(resolve, 200));
console.log("done");
