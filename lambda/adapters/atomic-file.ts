/**
 * Replacing a small file so that nobody ever reads half of it: the new content goes to a new
 * temporary file in the same directory (created 0600 with O_EXCL, flushed), which is then
 * renamed over the target. Readers, and writers racing each other, see the old file or a
 * complete new one.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The prefix of the temporary files, so that stray ones can be recognised. */
export const TEMP_PREFIX = '.tmp-';

/** Writes `text` to `path` (mode 0600) in one rename, creating its directory (0700) if needed. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
