/**
 * The embedded default: grants, repository inventory and tokens on the local filesystem.
 *
 * Layout of a token folder (docs/tokens.md):
 *   DIR/trust-bundle.pem                      certificates for the registry's rootcertbundle
 *   DIR/jwks.json                             the same keys as a JWKS
 *   DIR/tokens/ACCOUNT/role|user/NAME.json    one token document per principal (mode 0600)
 * Every file is written to a temporary name and renamed, so a reader never sees half a file.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { oversizedGrants } from '../core/config.js';
import type {
  ConfigSource,
  RepositoryInventory,
  TokenDocument,
  TokenStore,
  TrustMaterial,
} from '../core/ports.js';
import { isTokenKey } from '../core/principal.js';
import { checkRepositoryName } from '../core/repository.js';
import { isTokenDocumentAt, tokenDocumentText } from '../core/token-document.js';
import { MAX_GRANTS_BYTES } from '../core/yaml-limits.js';
import { ConfigError, InputError, NotFoundError, StoreError } from '../errors.js';

/** Writes `data` to `path` atomically (temporary file + rename) with the given mode. */
export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function describeFsError(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `${path}: no such file`;
  if (code === 'EACCES' || code === 'EPERM') return `${path}: permission denied`;
  if (code === 'EISDIR') return `${path}: is a directory, expected a file`;
  if (code === 'ENOTDIR') return `${path}: part of this path is a file, not a folder`;
  return `${path}: ${(err as Error).message}`;
}

/**
 * Reads at most `max` bytes of an open file; undefined when it holds more (a file's size is not
 * trusted: a pipe or a device has none).
 */
async function readAtMost(handle: FileHandle, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.alloc(Math.min(1 << 20, max + 1 - total));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
    if (total > max) return undefined;
  }
}

/** A grants file on disk, read only up to the size limit (docs/config.md, "Limits"). */
export class FileConfigSource implements ConfigSource {
  constructor(readonly name: string) {}

  async read(): Promise<{ text: string; version?: string }> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.name, 'r');
      const size = (await handle.stat()).size;
      const data = size > MAX_GRANTS_BYTES ? undefined : await readAtMost(handle, MAX_GRANTS_BYTES);
      if (!data) throw oversizedGrants(this.name, size > MAX_GRANTS_BYTES ? size : undefined);
      return { text: data.toString('utf8') };
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFoundError(describeFsError(err, this.name), { cause: err });
      throw new InputError(describeFsError(err, this.name), { cause: err });
    } finally {
      await handle?.close();
    }
  }
}

/**
 * A repository inventory on disk: either a text file with one repository name per line (`#`
 * starts a comment), or the root directory of a registry's filesystem storage, whose
 * repositories are found under `docker/registry/v2/repositories/`.
 */
export class FileInventory implements RepositoryInventory {
  constructor(readonly name: string) {}

  async list(): Promise<string[]> {
    let isDir: boolean;
    try {
      isDir = (await stat(this.name)).isDirectory();
    } catch (err) {
      throw new InputError(describeFsError(err, this.name), { cause: err });
    }
    return isDir ? this.listStorage() : this.listFile();
  }

  private async listFile(): Promise<string[]> {
    const text = await readFile(this.name, 'utf8');
    const names: string[] = [];
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      // The line is not quoted: a file given here by mistake may be a key or credentials.
      if (checkRepositoryName(line))
        throw new InputError(
          `${this.name}:${i + 1}: not a repository name (expected one name per line, like team-a/app; # starts a comment)`,
        );
      names.push(line);
    }
    return names;
  }

  private async listStorage(): Promise<string[]> {
    const root = join(this.name, 'docker', 'registry', 'v2', 'repositories');
    const names: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && dir === root) return;
        throw new InputError(describeFsError(err, dir), { cause: err });
      }
      // A directory holding _manifests/_layers/_uploads is a repository; it may also have
      // nested repositories below it (a/b and a/b/c can both exist).
      if (entries.some((e) => e.isDirectory() && e.name.startsWith('_')))
        names.push(relative(root, dir).split(sep).join('/'));
      for (const e of entries)
        if (e.isDirectory() && !e.name.startsWith('_')) await walk(join(dir, e.name));
    };
    await walk(root);
    return names.sort();
  }
}

/** Token documents and trust material in a local folder. */
export class FileTokenStore implements TokenStore {
  readonly concurrency = 8;
  /** Directories this store has made (or found) during its run. */
  readonly #made = new Set<string>();
  /**
   * Temporary names: random per store, counted per file (one `randomBytes` call per file cost
   * more than the rest of the name). `wx` still refuses to write through an existing name.
   */
  readonly #tmpTag = randomBytes(6).toString('hex');
  #tmpCount = 0;

  /** `join(dir, key)` of a token's key, whose segments need no normalizing: the folder, joined once. */
  readonly #tokenPrefix: string;

  constructor(readonly dir: string) {
    this.#tokenPrefix = join(dir, 'tokens', '_').slice(0, -1);
  }

  locate(key: string): string {
    // A run locates each of its thousands of tokens twice (to write it, and in its summary).
    if (isTokenKey(key)) {
      const rest = key.slice('tokens/'.length);
      return this.#tokenPrefix + (sep === '/' ? rest : rest.replaceAll('/', sep));
    }
    return join(this.dir, ...key.split('/'));
  }

  async listTokenKeys(): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new StoreError(describeFsError(err, dir), { cause: err });
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        const key = relative(this.dir, path).split(sep).join('/');
        if (e.isDirectory()) await walk(path);
        else if (isTokenKey(key)) keys.push(key);
      }
    };
    await walk(join(this.dir, 'tokens'));
    return keys.sort();
  }

  /**
   * Writes a token document atomically (a temporary file of mode 0600, renamed into place), with
   * synchronous calls, creating its directory once per run. A run writes thousands of small
   * files: the synchronous calls cost about a quarter less CPU than the same calls through the
   * thread pool, and one `mkdir` per directory instead of one per file saves the rest
   * (docs/performance.md, "Local mint").
   */
  async putToken(key: string, doc: TokenDocument): Promise<void> {
    const path = this.locate(key);
    const tmp = `${path}.${this.#tmpTag}-${++this.#tmpCount}.tmp`;
    try {
      const dir = dirname(path);
      if (!this.#made.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.#made.add(dir);
      }
      writeFileSync(tmp, tokenDocumentText(doc), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new StoreError(describeFsError(err, path), { cause: err });
    }
  }

  /**
   * Deletes a token document, but only one regtoken wrote for this key, judged by its content:
   * anyone may put files in a folder (a package.json, a backup, a renamed copy), and they stay.
   */
  async deleteToken(key: string): Promise<boolean> {
    const path = this.locate(key);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new StoreError(describeFsError(err, path), { cause: err });
    }
    if (!isTokenDocumentAt(text, key)) return false;
    await rm(path, { force: true });
    return true;
  }

  async readTrustBundle(): Promise<string | undefined> {
    try {
      return await readFile(join(this.dir, 'trust-bundle.pem'), 'utf8');
    } catch {
      return undefined;
    }
  }

  async publishTrust(trust: TrustMaterial): Promise<{ bundle: string; jwks: string }> {
    const bundle = join(this.dir, 'trust-bundle.pem');
    const jwks = join(this.dir, 'jwks.json');
    try {
      // Rewrite only what changed, so a registry host watching the file sees real changes only.
      if ((await this.readTrustBundle()) !== trust.bundlePem)
        await writeFileAtomic(bundle, trust.bundlePem);
      const jwksText = `${JSON.stringify(trust.jwks, null, 2)}\n`;
      const current = await readFile(jwks, 'utf8').catch(() => undefined);
      if (current !== jwksText) await writeFileAtomic(jwks, jwksText);
    } catch (err) {
      throw new StoreError(describeFsError(err, this.dir), { cause: err });
    }
    return { bundle, jwks };
  }
}
