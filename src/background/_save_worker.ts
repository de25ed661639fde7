// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The module Worker of the save queue: serialises, encrypts (through the
 * save options) and durably writes each file it is sent, off the training
 * loop's thread.
 *
 * @module
 */

import { serveSaves } from "./_save_wire.ts";

// deno-lint-ignore no-explicit-any
serveSaves(self as any);
