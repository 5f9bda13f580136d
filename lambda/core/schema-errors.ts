/**
 * The grants file's JSON Schema check, and its errors as sentences a reviewer understands: what
 * is wrong, where (a data path the caller turns into `file:line:col`), never more of a value
 * than a short excerpt.
 */

import type { ErrorObject } from 'ajv';
import validateGrantsSchema from './grants-schema-validator.js';
import { quote } from './text.js';

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A path into the parsed data: mapping keys and list indexes. */
export type Path = readonly (string | number)[];

/**
 * The schema check: config-schema/grants.schema.json compiled ahead of time by
 * scripts/schema-validator.ts (`npm run generate`), so no container compiles it on a cold start.
 */
export function schemaValidator() {
  return validateGrantsSchema;
}

function pathOf(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function getAt(data: unknown, path: Path): unknown {
  let cur = data;
  for (const step of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[step];
  }
  return cur;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  return `${typeof value === 'number' ? 'the number' : 'the value'} ${String(value)}`;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  boolean: 'true or false',
};

/** Field names that only make sense in a known place, for "did you mean" hints. */
const KNOWN_FIELDS = [
  'version',
  'registry',
  'tokenTtl',
  'grants',
  'host',
  'service',
  'issuer',
  'maxTokenBytes',
  'principal',
  'principals',
  'ttl',
  'access',
  'repository',
  'actions',
  'catalog',
];

function suggest(name: string): string {
  const lower = name.toLowerCase();
  const hit = KNOWN_FIELDS.find(
    (k) => k.toLowerCase() === lower || editDistance(k.toLowerCase(), lower) <= 2,
  );
  return hit && hit !== name ? ` (did you mean "${hit}"?)` : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min(
        (row[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

/**
 * Turns one JSON Schema error into a sentence a reviewer understands, at the right node.
 * Returns undefined for errors that say nothing new (the `if` wrapper, string formats the
 * meaning checks explain better).
 */
export function describeSchemaError(
  e: ErrorObject,
  data: unknown,
): { path: Path; atKey?: boolean; message: string } | undefined {
  const path = pathOf(e.instancePath);
  const field = path.filter((s) => typeof s === 'string').at(-1) ?? 'grants file';
  const value = getAt(data, path);
  switch (e.keyword) {
    case 'required': {
      const missing = String(e.params.missingProperty);
      if (e.schemaPath.includes('/else') && missing === 'principal')
        return { path, message: 'grant names no principal: add "principal" or "principals"' };
      if (e.schemaPath.includes('/else') && (missing === 'repository' || missing === 'actions'))
        return {
          path,
          message: `access entry needs "${missing}" (or is it "catalog: true"?)`,
        };
      return {
        path,
        atKey: true,
        message:
          typeof path.at(-1) === 'string'
            ? `"${field}" is missing required field "${missing}"`
            : `missing required field "${missing}"`,
      };
    }
    case 'additionalProperties': {
      const extra = String(e.params.additionalProperty);
      return {
        path: [...path, extra],
        atKey: true,
        message: `unknown field ${quote(extra)}${extra.length <= 40 ? suggest(extra) : ''}`,
      };
    }
    case 'type':
      return {
        path,
        message: `"${field}" must be ${TYPE_WORDS[String(e.params.type)] ?? e.params.type}, not ${typeName(value)}`,
      };
    case 'const':
      if (field === 'version')
        return {
          path,
          message: `unsupported version ${typeof value === 'string' ? quote(value) : String(value)}: expected 1`,
        };
      return { path, message: `"${field}" must be true (or left out)` };
    case 'enum':
      return {
        path,
        message: `unknown action ${typeName(value).replace('the string ', '')} (allowed: pull, push, delete, *)`,
      };
    case 'minItems':
      return { path, message: `"${field}" must not be empty` };
    case 'minLength':
      return { path, message: `"${field}" must not be empty` };
    case 'uniqueItems':
      return {
        path: [...path, Number(e.params.i)],
        message: `${quote(String((value as unknown[])[Number(e.params.i)]))} is listed twice in "${field}"`,
      };
    case 'minimum':
      return { path, message: `"${field}" must be at least ${e.params.limit}` };
    case 'maximum':
      return { path, message: `"${field}" must be at most ${e.params.limit}` };
    case 'not':
      if (isRecord(value) && 'principal' in value && 'principals' in value)
        return { path, message: 'use either "principal" or "principals" in a grant, not both' };
      return { path, message: 'a "catalog: true" entry cannot also name a repository or actions' };
    case 'pattern':
    case 'maxLength':
      // Formats (ARNs, repository names, durations, hosts) get precise messages from checkMeaning.
      return undefined;
    case 'if':
      return undefined;
    default:
      return { path, message: `"${field}" ${e.message ?? 'is invalid'}` };
  }
}
