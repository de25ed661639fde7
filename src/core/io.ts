/**
 * The two byte interfaces that connect the format layer (serialisers and
 * parsers) to what lies beneath it (files, encryption). They are runtime
 * neutral: nothing here touches `Deno.*`.
 *
 * @module
 */

/**
 * Where a serialiser writes bytes, in order.
 *
 * The caller may reuse or mutate `chunk` as soon as the returned promise
 * resolves, so a sink that keeps bytes for later must copy them (into a buffer
 * it reuses). Chunks may be of any size, from a few header bytes to a view of
 * a whole tensor.
 */
export interface ByteSink {
  /** Appends `chunk`. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Optional: writes `chunk` at byte `position` of the output, where the
   * layout is known in advance. Calls may run at the same time (on distinct
   * ranges); together they must cover the output from byte 0 with no gap or
   * overlap by the time the producer returns. A producer uses either
   * `write` or `writeAt` on one sink, never both. Sinks that can only
   * append (object storage, the browser) leave it out, and producers fall
   * back to `write`.
   */
  writeAt?(position: number, chunk: Uint8Array): Promise<void>;
}

/** Random-access reads over a byte sequence of known size. */
export interface ByteSource {
  /** Total number of bytes. */
  readonly size: number;
  /**
   * Reads exactly `into.byteLength` bytes starting at `position` into
   * `into`. Rejects when the range goes past `size`.
   */
  readAt(position: number, into: Uint8Array): Promise<void>;
}
