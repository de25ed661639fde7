// Copyright 2026 the @ckpt/monitor authors. MIT license.
// Internal: an exclusive lock shared by processes, freed when one dies.

/**
 * Runs `fn` while holding an exclusive `flock` on `path` (created when
 * missing, never removed). Processes (and handles within one process)
 * take turns; the kernel releases the lock when its holder's process dies,
 * so a crash never leaves it held.
 */
export async function withFileLock<T>(
  path: string,
  fn: () => Promise<T>,
): Promise<T> {
  const file = await Deno.open(path, {
    create: true,
    write: true,
    mode: 0o600,
  });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close(); // Closing the handle releases the lock.
  }
}
