// Copyright 2026 the @ckpt/monitor authors. MIT license.
/** A save Worker that dies while it starts, before it listens (tests). */

throw new Error("injected start-up failure");
