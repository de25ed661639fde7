// Child of sm4_pool_test.ts: encrypts through the shared SM4 workers and
// returns from its top level with them still running. The process must then
// exit on its own (after the idle stop), not hang.
import { importCipher } from "../mod.ts";
import { _sm4WorkersRunning } from "../src/crypto/_sm4_pool.ts";

const cipher = await importCipher(new Uint8Array(16), "SM4-CBC");
await cipher.encrypt(new Uint8Array(1 << 20), new Uint8Array(16));
cipher.destroy();
console.log("done", _sm4WorkersRunning() || typeof Worker === "undefined");
