// TEMPORARY stand-in for the format engineer's module (same contract), so the
// monitor can be exercised before the format milestone lands. Not for merge.
import {
  type AppendValue,
  type DType,
  type Network,
  networkParameters,
  type Tensor,
  tensorBytes,
  typedArrayFromBytes,
} from "./types.ts";
export interface SaveResult {
  path: string;
  bytes: number;
  checksum: string;
}
export interface SaveCheckpointOptions {
  format?: "ckpt" | "safetensors";
  appendInfo?:
    | Readonly<Record<string, AppendValue>>
    | ReadonlyMap<string, AppendValue>;
  fileMode?: number;
  encKey?: Uint8Array;
  encMode?: string;
}
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  options: { fileMode?: number } = {},
): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    const f = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: options.fileMode ?? 0o600,
    });
    try {
      let off = 0;
      while (off < data.length) off += await f.write(data.subarray(off));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
export async function checksumFile(path: string): Promise<string> {
  const d = await Deno.readFile(path);
  const h = await crypto.subtle.digest("SHA-256", d);
  return [...new Uint8Array(h)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}
export async function saveCheckpoint(
  path: string,
  network: Network,
  options: SaveCheckpointOptions = {},
): Promise<SaveResult> {
  const entries: [string, Tensor | string][] = networkParameters(network).map((
    p,
  ) => [p.name, p]);
  const append = options.appendInfo instanceof Map
    ? [...options.appendInfo]
    : Object.entries(options.appendInfo ?? {});
  for (const [k, v] of append) {
    if (entries.some(([n]) => n === k)) throw new RangeError(`dup ${k}`);
    if (typeof v === "string") entries.push([k, v]);
    else if (typeof v === "number") {
      entries.push([
        k,
        Number.isInteger(v)
          ? { dtype: "Int64", shape: [], data: BigInt64Array.of(BigInt(v)) }
          : { dtype: "Float32", shape: [], data: Float32Array.of(v) },
      ]);
    } else if (typeof v === "bigint") {
      entries.push([k, {
        dtype: "Int64",
        shape: [],
        data: BigInt64Array.of(v),
      }]);
    } else if (typeof v === "boolean") {
      entries.push([k, {
        dtype: "Bool",
        shape: [],
        data: Uint8Array.of(v ? 1 : 0),
      }]);
    } else entries.push([k, v]);
  }
  const header = entries.map(([n, t]) =>
    typeof t === "string"
      ? { n, s: t }
      : { n, d: t.dtype, sh: t.shape, b: Array.from(tensorBytes(t)) }
  );
  const data = new TextEncoder().encode(JSON.stringify(header));
  await writeFileAtomic(path, data, { fileMode: options.fileMode ?? 0o400 });
  const h = await crypto.subtle.digest("SHA-256", data);
  return {
    path,
    bytes: data.length,
    checksum: [...new Uint8Array(h)].map((b) => b.toString(16).padStart(2, "0"))
      .join(""),
  };
}
export async function loadCheckpoint(
  path: string,
): Promise<Map<string, Tensor | string>> {
  const header = JSON.parse(await Deno.readTextFile(path)) as {
    n: string;
    s?: string;
    d?: DType;
    sh?: number[];
    b?: number[];
  }[];
  return new Map(
    header.map((e) => [
      e.n,
      e.s !== undefined ? e.s : {
        dtype: e.d!,
        shape: e.sh!,
        data: typedArrayFromBytes(e.d!, Uint8Array.from(e.b!)),
      } as Tensor,
    ]),
  );
}
