/**
 * Recognising a token document regtoken wrote, by its content: a store may hold other files
 * where tokens live (a local folder is anyone's to write), and removing stale tokens must never
 * remove those.
 */

import type { ResourceAccess } from './grants.js';
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

/**
 * Access lists as indented JSON, by list: principals named by the same grants share one list,
 * and the list is most of a document (the same reuse as the token's claims, lambda/core/token.ts).
 */
const accessText = new WeakMap<readonly ResourceAccess[], string>();
const ACCESS_KEY = '{\n  "access": ';

/**
 * A token document as stored: `JSON.stringify(doc, null, 2)` and a newline, byte for byte, with
 * the indented access list reused. The shortcut applies when `access` is the last of several
 * keys (as the mint step writes documents); anything else is serialized whole.
 */
export function tokenDocumentText(doc: TokenDocument): string {
  let last: string | undefined;
  let keys = 0;
  for (const k in doc) {
    last = k;
    keys += 1;
  }
  const { access, ...rest } = doc;
  if (last !== 'access' || keys < 2 || !Array.isArray(access))
    return `${JSON.stringify(doc, null, 2)}\n`;
  let list = accessText.get(access);
  if (list === undefined) {
    // Serialized one level deep, as it stands in the document, and cut out of its wrapper: one
    // flat string (re-indenting with replaceAll builds a tree of hundreds of pieces, which every
    // document that reuses it walks again and the GC copies).
    const wrapped = JSON.stringify({ access }, null, 2); // `{\n  "access": [ … ]\n}`
    list = wrapped.slice(ACCESS_KEY.length, -2);
    accessText.set(access, list);
  }
  const head = JSON.stringify(rest, null, 2); // `{\n  "principal": …\n}`
  if (head === '{}') return `${JSON.stringify(doc, null, 2)}\n`;
  return `${head.slice(0, -2)},\n  "access": ${list}\n}\n`;
}
