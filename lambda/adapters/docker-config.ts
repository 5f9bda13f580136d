/**
 * The Docker client configuration file on disk (`$DOCKER_CONFIG/config.json`, default
 * `~/.docker/config.json`): read it, and replace it atomically with mode 0600.
 *
 * A write goes to a new temporary file in the same directory (created 0600, flushed to disk)
 * that is then renamed over the file, so a reader — Docker, or a crash half-way — sees the old
 * file or the new one, never a mix. Like Docker, it follows a symbolic link and replaces its
 * target. The directory is created (0700) when missing.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readlink, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { InputError, StoreError } from '../errors.js';

/** Where Docker looks for its config: `$DOCKER_CONFIG/config.json` or `HOME/.docker/config.json`. */
export function dockerConfigPath(env: { dockerConfig?: string | undefined; home: string }): string {
  return join(env.dockerConfig ?? join(env.home, '.docker'), 'config.json');
}

/** One Docker config file. */
export class DockerConfigFile {
  constructor(readonly path: string) {}

  /** The file's text, or undefined when it does not exist. Throws InputError when unreadable. */
  async read(): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      throw new InputError(
        `cannot read ${this.path} (${code ?? (err as Error).message}); fix it and retry — it was not changed`,
        { cause: err },
      );
    }
  }

  /** Replaces the file with `text` (mode 0600) in one rename. */
  async write(text: string): Promise<void> {
    const target = await this.resolveTarget();
    const dir = dirname(target);
    const temp = join(dir, `.${basename(target)}.regtoken-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new StoreError(`cannot write ${target} (${code}); it was not changed`, { cause: err });
    }
    // Make the rename itself durable; not every filesystem lets a directory be synced.
    try {
      const d = await open(dir, 'r');
      await d.sync().finally(() => d.close());
    } catch {
      // best effort
    }
  }

  /** The file a write replaces: the target of a symbolic link (even a dangling one), else the path. */
  private async resolveTarget(): Promise<string> {
    try {
      return await realpath(this.path);
    } catch {
      try {
        const link = await readlink(this.path);
        return isAbsolute(link) ? link : join(dirname(this.path), link);
      } catch {
        return this.path;
      }
    }
  }
}
