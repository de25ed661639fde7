import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { importCipher } from "../mod.ts";
import { sm4 } from "../src/crypto/sm4.ts";
import { _sm4WorkersRunning } from "../src/crypto/_sm4_pool.ts";

const MiB = 1 << 20;

function pieces(count: number, size: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => {
    const p = new Uint8Array(size + i * 7);
    for (let k = 0; k < p.length; k += 65536) {
      crypto.getRandomValues(p.subarray(k, Math.min(p.length, k + 65536)));
    }
    return p;
  });
}

Deno.test("SM4 pool: pieces in flight together equal single-thread SM4, both ways", async () => {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const reference = sm4(key);
  const cipher = await importCipher(key, "SM4-CBC");
  const plains = pieces(7, MiB);
  const ivs = plains.map(() => crypto.getRandomValues(new Uint8Array(16)));
  const sealed = await Promise.all(
    plains.map((p, i) => cipher.encrypt(p, ivs[i]!)),
  );
  sealed.forEach((s, i) =>
    deepEqual(s, reference.encryptCbc(plains[i]!, ivs[i]!))
  );
  const opened = await Promise.all(
    sealed.map((s, i) => cipher.decrypt(s, ivs[i]!)),
  );
  opened.forEach((o, i) => deepEqual(o, plains[i]));
  cipher.destroy();
  reference.destroy();
});

Deno.test("SM4 pool: two ciphers with different keys share the workers, each gets its own results", async () => {
  const keys = [1, 2].map(() => crypto.getRandomValues(new Uint8Array(16)));
  const ciphers = await Promise.all(
    keys.map((k) => importCipher(k, "SM4-CBC")),
  );
  const plains = pieces(4, MiB);
  const iv = new Uint8Array(16).fill(3);
  // Interleave the two ciphers' pieces so messages could mix them.
  const outs = await Promise.all(
    plains.map((p, i) => ciphers[i % 2]!.encrypt(p, iv)),
  );
  ok(_sm4WorkersRunning() || typeof Worker === "undefined");
  outs.forEach((o, i) => {
    const ref = sm4(keys[i % 2]!);
    deepEqual(o, ref.encryptCbc(plains[i]!, iv));
    ref.destroy();
  });
  // A later "save" reuses the running workers.
  const again = await importCipher(keys[0]!, "SM4-CBC");
  const before = _sm4WorkersRunning();
  deepEqual(await again.encrypt(plains[0]!, iv), outs[0]);
  equal(_sm4WorkersRunning(), before);
  for (const c of [...ciphers, again]) c.destroy();
});

Deno.test("SM4 pool: a destroyed cipher's pieces reject, others still work", async () => {
  const key = new Uint8Array(16).fill(9);
  const a = await importCipher(key, "SM4-CBC");
  const b = await importCipher(key, "SM4-CBC");
  const [p] = pieces(1, MiB);
  const iv = new Uint8Array(16);
  const pending = [a.encrypt(p!, iv), a.encrypt(p!, iv), a.encrypt(p!, iv)];
  a.destroy();
  for (const x of pending) await rejects(x, TypeError);
  deepEqual(await b.encrypt(p!, iv), sm4(key).encryptCbc(p!, iv));
  b.destroy();
});

Deno.test("SM4 pool: idle workers do not keep a process alive", async () => {
  const script = new URL("./_sm4_pool_exit.ts", import.meta.url);
  const t0 = performance.now();
  const child = new Deno.Command("deno", {
    args: ["run", "--allow-read=.", script.pathname],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill(), 30_000);
  const out = await child.output();
  clearTimeout(timer);
  const ms = performance.now() - t0;
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  equal(new TextDecoder().decode(out.stdout).trim(), "done true");
  // Without the idle stop the child never exits (killed at 30 s).
  ok(ms < 20_000, `child took ${ms.toFixed(0)} ms`);
});
