/**
 * Reads a grants file: YAML → structure checked by the JSON Schema → meaning checked here.
 *
 * Every problem is reported with `file:line:col` taken from the YAML node it concerns, and all
 * problems are collected before failing, so a reviewer fixes a file in one pass. Nothing here
 * throws on bad input except {@link ConfigError}, which carries the full list.
 */

import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Pair,
  parseDocument,
  type Node as YamlNode,
} from 'yaml';
import schema from '../../config-schema/grants.schema.json' with { type: 'json' };
import { ConfigError, type ConfigIssue } from '../errors.js';
import { MAX_TTL_SECONDS, MIN_TTL_SECONDS, parseDuration } from './duration.js';
import type {
  AccessEntry,
  Action,
  Grant,
  GrantsConfig,
  Location,
  RegistrySettings,
} from './grants.js';
import { type Principal, parsePrincipal, principalIdentity } from './principal.js';
import { parseRepositoryPattern } from './repository.js';

/** Token lifetime when the file sets none. */
export const DEFAULT_TOKEN_TTL_SECONDS = 12 * 3_600;
/** Hard token size limit when the file sets none: one HTTP header behind an AWS load balancer. */
export const DEFAULT_MAX_TOKEN_BYTES = 16_384;

type Path = readonly (string | number)[];

let validateSchema: ReturnType<Ajv2020['compile']> | undefined;
function schemaValidator() {
  // Compiled on first use, not at import, to keep the Lambda's cold start short for runs that
  // fail before reading a config.
  validateSchema ??= new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(
    schema,
  );
  return validateSchema;
}

/**
 * Parses and validates a grants file. `file` is the name used in messages (a path or URL).
 * Throws {@link ConfigError} listing every problem.
 */
export function parseGrants(text: string, file: string): GrantsConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  const at = (offset: number | undefined): Location => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { file, line: pos.line, col: pos.col };
  };
  const report = (loc: Location, message: string) => issues.push({ ...loc, message });

  for (const err of doc.errors) {
    const pos = err.linePos?.[0];
    const loc = pos ? { file, line: pos.line, col: pos.col } : at(err.pos[0]);
    // One syntax slip often yields several parser errors at the same spot: report the first.
    if (issues.some((i) => i.line === loc.line && i.col === loc.col)) continue;
    report(loc, `YAML: ${err.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  if (issues.length) throw new ConfigError(issues);
  if (doc.contents === null) {
    report(at(0), 'the file is empty: expected a grants file (see docs/config.md)');
    throw new ConfigError(issues);
  }

  const locate = (path: Path, key = false): Location =>
    at(nodeAt(doc.contents, path, key)?.range?.[0]);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const validate = schemaValidator();
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      const issue = describeSchemaError(e, data);
      if (issue) report(locate(issue.path, issue.atKey), issue.message);
    }
  }

  const config = checkMeaning(data, file, locate, report);
  if (issues.length || !config) throw new ConfigError(sortIssues(issues));
  return config;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues
    .filter((i) => {
      const k = `${i.line}:${i.col}:${i.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Finds the YAML node at a data path; with `key`, the key node of the last step instead. */
function nodeAt(root: unknown, path: Path, key = false): YamlNode | undefined {
  let node = root as YamlNode | undefined;
  let keyNode: YamlNode | undefined;
  for (const step of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p: Pair) => isScalar(p.key) && String(p.key.value) === String(step),
      );
      if (!pair) return node;
      keyNode = pair.key as YamlNode;
      node = (pair.value ?? pair.key) as YamlNode;
    } else if (isSeq(node) && typeof step === 'number') {
      const item = node.items[step] as YamlNode | undefined;
      if (!item) return node;
      keyNode = item;
      node = item;
    } else {
      return node;
    }
  }
  return key ? (keyNode ?? node) : node;
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
  if (typeof value === 'string') return `the string "${value}"`;
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
function describeSchemaError(
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
        message: `unknown field "${extra}"${suggest(extra)}`,
      };
    }
    case 'type':
      return {
        path,
        message: `"${field}" must be ${TYPE_WORDS[String(e.params.type)] ?? e.params.type}, not ${typeName(value)}`,
      };
    case 'const':
      if (field === 'version')
        return { path, message: `unsupported version ${JSON.stringify(value)}: expected 1` };
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
        message: `"${String((value as unknown[])[Number(e.params.i)])}" is listed twice in "${field}"`,
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

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The checks a schema cannot express or explains badly: ARN grammar, repository grammar,
 * durations and their bounds, duplicates and conflicts between grants. Returns the model when
 * the parts it needs are well-formed (other issues may still have been reported).
 */
function checkMeaning(
  data: unknown,
  file: string,
  locate: (path: Path, key?: boolean) => Location,
  report: (loc: Location, message: string) => void,
): GrantsConfig | undefined {
  if (!isRecord(data)) return undefined;
  const fail = (path: Path, message: string) => report(locate(path), message);

  let registry: RegistrySettings | undefined;
  const r = data.registry;
  if (isRecord(r)) {
    if (typeof r.host === 'string' && !HOST_RE.test(r.host)) {
      fail(
        ['registry', 'host'],
        r.host.includes('://')
          ? `registry host "${r.host}" must not include a scheme: write it as it appears in image names, like registry.example.com`
          : `registry host "${r.host}" must be a host name with an optional port, like registry.example.com:5000`,
      );
    }
    if (typeof r.host === 'string' && typeof r.service === 'string' && typeof r.issuer === 'string')
      registry = {
        host: r.host,
        service: r.service,
        issuer: r.issuer,
        maxTokenBytes:
          typeof r.maxTokenBytes === 'number' ? r.maxTokenBytes : DEFAULT_MAX_TOKEN_BYTES,
      };
  }

  const ttl = (path: Path, value: unknown): number | undefined => {
    if (typeof value !== 'string') return undefined;
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      fail(
        path,
        `"${value}" is not a duration: write it like 12h, 90m or 1h30m (units d, h, m, s)`,
      );
      return undefined;
    }
    if (seconds < MIN_TTL_SECONDS || seconds > MAX_TTL_SECONDS) {
      fail(
        path,
        `token lifetime ${value} is outside the allowed ${MIN_TTL_SECONDS / 60}m to ${MAX_TTL_SECONDS / 3600}h`,
      );
      return undefined;
    }
    return seconds;
  };
  const tokenTtl =
    data.tokenTtl === undefined ? DEFAULT_TOKEN_TTL_SECONDS : ttl(['tokenTtl'], data.tokenTtl);

  const grants: Grant[] = [];
  const firstSeen = new Map<string, { arn: string; at: Location }>();
  const explicitTtl = new Map<string, { seconds: number; text: string; line: number }>();
  const rawGrants = Array.isArray(data.grants) ? data.grants : [];
  let complete = registry !== undefined && tokenTtl !== undefined && Array.isArray(data.grants);

  rawGrants.forEach((g: unknown, gi: number) => {
    if (!isRecord(g)) {
      complete = false;
      return;
    }
    const base: Path = ['grants', gi];
    const grantTtl = g.ttl === undefined ? undefined : ttl([...base, 'ttl'], g.ttl);
    if (g.ttl !== undefined && grantTtl === undefined) complete = false;

    // Principals.
    const listed: { value: unknown; path: Path }[] =
      typeof g.principal === 'string'
        ? [{ value: g.principal, path: [...base, 'principal'] }]
        : Array.isArray(g.principals)
          ? g.principals.map((value, i) => ({ value, path: [...base, 'principals', i] }))
          : [];
    const principals: Principal[] = [];
    const inGrant = new Map<string, Location>();
    for (const { value, path } of listed) {
      if (typeof value !== 'string') {
        complete = false;
        continue;
      }
      const parsed = parsePrincipal(value);
      if (!parsed.ok) {
        fail(path, parsed.reason);
        complete = false;
        continue;
      }
      const p = parsed.value;
      const id = principalIdentity(p);
      const here = locate(path);
      const dupe = inGrant.get(id);
      if (dupe) {
        fail(
          path,
          `principal "${p.arn}" is listed twice in this grant (first at line ${dupe.line})`,
        );
        continue;
      }
      inGrant.set(id, here);
      const prev = firstSeen.get(id);
      if (!prev) firstSeen.set(id, { arn: p.arn, at: here });
      else if (prev.arn !== p.arn)
        fail(
          path,
          `"${p.arn}" and "${prev.arn}" (line ${prev.at.line}) are the same ${p.type} for IAM (names are unique per account, ignoring case and path): write it one way`,
        );
      // A grant without ttl defers to others; two different explicit lifetimes are a conflict.
      if (grantTtl !== undefined && typeof g.ttl === 'string') {
        const other = explicitTtl.get(id);
        if (!other) explicitTtl.set(id, { seconds: grantTtl, text: g.ttl, line: here.line });
        else if (other.seconds !== grantTtl)
          fail(
            [...base, 'ttl'],
            `conflicting ttl for "${p.arn}": ${g.ttl} here, ${other.text} in the grant at line ${other.line}`,
          );
      }
      principals.push(p);
    }
    if (listed.length === 0) complete = false;

    // Access.
    const access: AccessEntry[] = [];
    const seenPatterns = new Map<string, Location>();
    let catalogAt: Location | undefined;
    (Array.isArray(g.access) ? g.access : []).forEach((a: unknown, ai: number) => {
      const path: Path = [...base, 'access', ai];
      if (!isRecord(a)) {
        complete = false;
        return;
      }
      if (a.catalog === true && a.repository === undefined && a.actions === undefined) {
        if (catalogAt)
          fail(path, `catalog is granted twice in this grant (first at line ${catalogAt.line})`);
        catalogAt ??= locate(path);
        access.push({ kind: 'catalog', at: locate(path) });
        return;
      }
      if (typeof a.repository !== 'string' || !Array.isArray(a.actions)) {
        complete = false;
        return;
      }
      const parsed = parseRepositoryPattern(a.repository);
      if (!parsed.ok) {
        fail([...path, 'repository'], parsed.reason);
        complete = false;
        return;
      }
      const dupe = seenPatterns.get(a.repository);
      if (dupe)
        fail(
          [...path, 'repository'],
          `repository "${a.repository}" appears twice in this grant (first at ${dupe.line}:${dupe.col}): merge the actions into one entry`,
        );
      seenPatterns.set(a.repository, locate([...path, 'repository']));
      const actions = a.actions.filter((x): x is Action =>
        ['pull', 'push', 'delete', '*'].includes(x as string),
      );
      if (actions.length !== a.actions.length) complete = false;
      if (actions.includes('*') && actions.length > 1)
        fail([...path, 'actions'], '"*" already means every action: list it alone');
      access.push({
        kind: 'repository',
        pattern: parsed.value,
        actions,
        at: locate([...path, 'repository']),
      });
    });
    if (!Array.isArray(g.access) || g.access.length === 0) complete = false;

    grants.push({
      number: gi + 1,
      principals,
      ttlSeconds: grantTtl,
      access,
      at: locate(base),
    });
  });

  if (!complete || !registry || tokenTtl === undefined) return undefined;
  return { file, registry, tokenTtlSeconds: tokenTtl, grants };
}
