import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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

/** Mount points at or below `dir`, deepest first, from /proc/self/mountinfo (octal escapes decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  let table: string;
  try {
    table = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const root = path.resolve(dir);
  return table
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((field) =>
      field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))),
    )
    .filter((mountPoint) => mountPoint === root || mountPoint.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Like {@link removeTempDir}, for the state directory of a daemon that may mount things below it
 * (dockerd, containerd): lazily unmounts whatever is still mounted there first, so the removal
 * can neither fail on a busy mount nor reach through one into another filesystem; throws if a
 * mount cannot be removed (and then leaves the directory in place).
 */
export async function removeMountedTempDir(dir: string): Promise<void> {
  for (const mountPoint of await mountsUnder(dir)) {
    await new Promise<void>((resolve, reject) => {
      execFile('umount', ['-l', mountPoint], (err) =>
        err ? reject(new Error(`umount -l ${mountPoint} failed: ${err.message}`)) : resolve(),
      );
    });
  }
  await removeTempDir(dir);
}
