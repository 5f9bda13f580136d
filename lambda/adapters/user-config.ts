/**
 * regtoken's user config file for the client commands:
 * `$XDG_CONFIG_HOME/regtoken/config.json`, default `~/.config/regtoken/config.json`.
 * A missing file is an empty config; an unreadable or malformed one is an error naming it.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseUserConfig, type UserConfig } from '../core/client-settings.js';
import { InputError } from '../errors.js';

/** Where the user config file lives for these settings. */
export function userConfigPath(env: { xdgConfigHome?: string | undefined; home: string }): string {
  return join(env.xdgConfigHome ?? join(env.home, '.config'), 'regtoken', 'config.json');
}

/** Reads and checks the user config file; `{}` when there is none. */
export async function readUserConfig(path: string): Promise<UserConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return {};
    throw new InputError(`cannot read ${path} (${code ?? (err as Error).message})`, { cause: err });
  }
  return parseUserConfig(text, path);
}
