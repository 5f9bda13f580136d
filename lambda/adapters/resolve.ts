/**
 * Picks adapters from locations, so the CLI and the Lambda handler accept the same strings:
 * a plain path means the local filesystem (or a PEM file for keys).
 */

import type { ConfigSource, RepositoryInventory, Signer, TokenStore } from '../core/ports.js';
import { FileConfigSource, FileInventory, FileTokenStore } from './filesystem.js';
import { PemSigner } from './pem-signer.js';

/** Where the local signing key lives when none is given: created there on first run. */
export const DEFAULT_SIGNING_KEY = '.regtoken/signing-key.pem';

export function configSource(location: string): ConfigSource {
  return new FileConfigSource(location);
}

export function tokenStore(location: string): TokenStore {
  return new FileTokenStore(location);
}

export function inventory(location: string): RepositoryInventory {
  return new FileInventory(location);
}

/** The signer for a key location; `undefined` means the default local key, created if missing. */
export function signer(location: string | undefined, onCreate?: (path: string) => void): Signer {
  if (location === undefined)
    return new PemSigner(
      DEFAULT_SIGNING_KEY,
      onCreate ? { create: true, onCreate } : { create: true },
    );
  return new PemSigner(location, { create: false });
}
