/**
 * The credential helper's cache on disk: `$XDG_CACHE_HOME/regtoken` (default
 * `~/.cache/regtoken`), directories 0700, files 0600, with `identities/` and `tokens/` entries
 * (lambda/core/token-cache.ts says what they hold).
 *
 * Every write replaces an entry in one rename (lambda/adapters/atomic-file.ts): a reader, or
 * another `get` running at the same time, sees the old file or the new one, never a
 * half-written one. Anything unreadable is a miss, never an error: the cache only saves time.
 */

import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CachedIdentity,
  type CachedToken,
  identityFileName,
  parseCachedIdentity,
  parseCachedToken,
  serialiseIdentity,
  serialiseToken,
  tokenFileName,
} from '../core/token-cache.js';
import { TEMP_PREFIX, writeAtomically } from './atomic-file.js';

/** Where the cache lives for these settings. */
export function tokenCacheDir(env: { xdgCacheHome?: string | undefined; home: string }): string {
  return join(env.xdgCacheHome ?? join(env.home, '.cache'), 'regtoken');
}

/** Entries and stray temporary files not touched for this long are removed. */
const PRUNE_AFTER_MS = 7 * 24 * 3600_000;
const STRAY_TEMP_AFTER_MS = 60_000;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** One user's token cache. */
export class TokenCache {
  private readonly identities: string;
  private readonly tokens: string;

  constructor(readonly dir: string) {
    this.identities = join(dir, 'identities');
    this.tokens = join(dir, 'tokens');
  }

  /** The identity entry of a credential source, if there is a readable one. */
  async identity(material: string): Promise<CachedIdentity | undefined> {
    const text = await readText(join(this.identities, identityFileName(material)));
    return text === undefined ? undefined : parseCachedIdentity(text);
  }

  /** The token entry of an owner for a host and location, if there is a readable one. */
  async token(owner: string, host: string, from: string): Promise<CachedToken | undefined> {
    const text = await readText(join(this.tokens, tokenFileName(owner, host, from)));
    return text === undefined ? undefined : parseCachedToken(text, { owner, host, from });
  }

  /** The path of a token entry (for tests and diagnostics). */
  tokenPath(owner: string, host: string, from: string): string {
    return join(this.tokens, tokenFileName(owner, host, from));
  }

  /** The path of an identity entry (for tests and diagnostics). */
  identityPath(material: string): string {
    return join(this.identities, identityFileName(material));
  }

  /** Stores a token entry, replacing any previous (or corrupt) one. */
  async putToken(entry: CachedToken): Promise<void> {
    await writeAtomically(
      this.tokenPath(entry.owner, entry.host, entry.from),
      serialiseToken(entry),
    );
  }

  /** Stores an identity entry, replacing any previous (or corrupt) one. */
  async putIdentity(material: string, entry: CachedIdentity): Promise<void> {
    await writeAtomically(this.identityPath(material), serialiseIdentity(entry));
  }

  /**
   * Removes entries not written for a week and temporary files a crashed writer left behind:
   * every new role session adds an identity entry. Best effort; runs after a fetch only. Ages
   * are measured on the file system's clock (the system clock), not an injected one.
   */
  async prune(): Promise<void> {
    for (const dir of [this.identities, this.tokens]) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const path = join(dir, name);
        try {
          const age = Date.now() - (await stat(path)).mtimeMs;
          const limit = name.startsWith(TEMP_PREFIX) ? STRAY_TEMP_AFTER_MS : PRUNE_AFTER_MS;
          if (age > limit) await rm(path, { force: true });
        } catch {
          // gone already, or not ours to judge
        }
      }
    }
  }
}
