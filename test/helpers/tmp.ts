import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Creates a fresh private directory under os.tmpdir() named `regtoken-<prefix>-XXXXXX` and
 * returns its absolute path. The caller owns it and must remove it with {@link removeTempDir}
 * (helpers in this folder do so in their `stop()` or before returning).
 */
export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `regtoken-${prefix}-`));
}

/** Recursively removes a directory made by {@link makeTempDir}; missing directories are fine. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
