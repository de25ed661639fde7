// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Child of store_check.mjs. `hold PATH`: takes the lock, prints "locked",
// releases it when a line arrives on stdin (or is killed holding it).
// `contend PATH MARKER ROUNDS DEAD_PID`: takes the lock ROUNDS times; while
// holding it, owns MARKER (created exclusively), which fails if another
// process holds the lock at the same time. Each time, it then leaves the
// lock as a holder that died would: the lock file put back (by an atomic
// rename) with the record of the gone process DEAD_PID, so that the next
// taker must break it while the other contenders race for it too.
import { NodeStore } from "@ckpt/monitor/node";
import { open, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";

const [mode, path, marker, rounds, deadPid] = process.argv.slice(2);
const store = new NodeStore();

if (mode === "hold") {
  const lock = await store.lock(path, { owner: `hold ${process.pid}` });
  console.log("locked");
  process.stdin.once("data", async () => {
    await lock.release();
    process.exit(0);
  });
} else if (mode === "contend") {
  for (let i = 0; i < Number(rounds); i++) {
    // Polled every millisecond (not the store's backoff), so that the
    // contenders race for every takeover. The lock is then held until it is
    // abandoned below, never released.
    while (
      (await store.lock(path, { wait: false, owner: `${process.pid}` })) ===
        null
    ) await new Promise((resolve) => setTimeout(resolve, 1));
    // "wx" fails with EEXIST when another holder is inside at once.
    const file = await open(marker, "wx");
    await file.close();
    await new Promise((resolve) => setTimeout(resolve, 1 + (i % 3)));
    await unlink(marker);
    const gone = {
      pid: Number(deadPid),
      host: hostname(),
      start: null,
      token: `gone${process.pid}x${i}`,
      owner: "a holder that died",
      since: Date.now(),
    };
    const temp = `${path}.${process.pid}.dying`;
    await writeFile(temp, JSON.stringify(gone));
    await rename(temp, path);
  }
  console.log("done");
} else {
  throw new Error(`unknown mode ${mode}`);
}
