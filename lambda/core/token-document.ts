/**
 * Recognising a token document regtoken wrote, by its content: a store may hold other files
 * where tokens live (a local folder is anyone's to write), and removing stale tokens must never
 * remove those.
 */

import type { TokenDocument } from './ports.js';
import { parsePrincipal, tokenKey } from './principal.js';
import { decodeClaims } from './token.js';

const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * True when `text` is a token document (docs/tokens.md) whose principal's token lives at `key`
 * and whose token was issued to that principal: a JSON object with every field of a document,
 * a principal ARN that maps to `key`, and a JWT whose `sub` is that ARN.
 */
export function isTokenDocumentAt(text: string, key: string): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return false;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return false;
  const d = doc as Partial<Record<keyof TokenDocument, unknown>>;
  if (
    !isString(d.principal) ||
    !isString(d.registry) ||
    !isString(d.token) ||
    !isString(d.issuedAt) ||
    !isString(d.expiresAt) ||
    !Array.isArray(d.access)
  )
    return false;
  const owner = parsePrincipal(d.principal);
  if (!owner.ok || tokenKey(owner.value) !== key) return false;
  return decodeClaims(d.token)?.sub === d.principal;
}
