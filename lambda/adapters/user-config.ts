/**
 * regtoken's user config file for the client commands and the credential helpers:
 * `$XDG_CONFIG_HOME/regtoken/config.json`, default `~/.config/regtoken/config.json`.
 * A missing file is an empty config; an unreadable or malformed one is an error naming it.
 * `regtoken login --helper` writes it (atomically, mode 0600) to route a host to its token.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseUserConfig, type UserConfig } from '../core/client-settings.js';
import { InputError, StoreError } from '../errors.js';
import { writeAtomically } from './atomic-file.js';

/** Where the user config file lives for these settings. */
export function userConfigPath(env: { xdgConfigHome?: string | undefined; home: string }): string {
  return join(env.xdgConfigHome ?? join(env.home, '.config'), 'regtoken', 'config.json');
}

/** The file's text, or undefined when there is none; throws InputError when unreadable. */
export async function readUserConfigText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`cannot read ${path} (${code ?? (err as Error).message})`, { cause: err });
  }
}

/** Reads and checks the user config file; `{}` when there is none. */
export async function readUserConfig(path: string): Promise<UserConfig> {
  const text = await readUserConfigText(path);
  return text === undefined ? {} : parseUserConfig(text, path);
}

/** Replaces the user config file with `text` in one rename (mode 0600). */
export async function writeUserConfig(path: string, text: string): Promise<void> {
  try {
    await writeAtomically(path, text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new StoreError(`cannot write ${path} (${code}); it was not changed`, { cause: err });
  }
}
