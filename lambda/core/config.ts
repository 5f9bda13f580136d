/**
 * Reads a grants file: YAML → structure checked by the JSON Schema → meaning checked here.
 *
 * Every problem is reported with `file:line:col` taken from the YAML node it concerns, and all
 * problems are collected before failing, so a reviewer fixes a file in one pass. Nothing here
 * throws on bad input except {@link ConfigError}, which carries the full list.
 */

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
import {
  MAX_PRINCIPAL_ARN_LENGTH,
  type Principal,
  parsePrincipal,
  principalIdentity,
} from './principal.js';
import { MAX_REPOSITORY_NAME_LENGTH, parseRepositoryPattern } from './repository.js';
import { type Path, schemaValidator } from './schema-errors.js';
import { excerpt, quote } from './text.js';
import { readYamlFast } from './yaml-fast.js';
import { sizeProblem } from './yaml-limits.js';

/** Token lifetime when the file sets none. */
export const DEFAULT_TOKEN_TTL_SECONDS = 12 * 3_600;
/** Hard token size limit when the file sets none: one HTTP header behind an AWS load balancer. */
export const DEFAULT_MAX_TOKEN_BYTES = 16_384;

/** Most problems one error lists; a hostile file can have millions. */
export const MAX_ISSUES = 100;

/**
 * Parses and validates a grants file. `file` is the name used in messages (a path or URL).
 * Rejects with {@link ConfigError} listing every problem (at most {@link MAX_ISSUES}). Messages
 * quote values only as short escaped excerpts, and nothing at all of a file that is not
 * YAML-shaped. A valid file is read by the fast first pass alone; the position-keeping reader
 * (config-positions.ts, with the `yaml` library) is loaded only for a file the fast pass refuses
 * or finds a problem in, which is the only work that needs it.
 */
export async function parseGrants(text: string, file: string): Promise<GrantsConfig> {
  return (
    parseFast(text, file) ?? (await import('./config-positions.js')).parseWithPositions(text, file)
  );
}

/**
 * The fast first pass (yaml-fast.ts): the model of a valid file, or undefined when the fast
 * reader refuses the text or anything about it is wrong — then the full reader runs, and
 * reports every problem with its position. Exported for the differential test.
 */
export function parseFast(text: string, file: string): GrantsConfig | undefined {
  const read = readYamlFast(text);
  if (!read || !isRecord(read.data) || !schemaValidator()(read.data)) return undefined;
  let clean = true;
  // A valid file is located only where its model says (each grant, each ttl): the checks that
  // locate anything else are reporting a problem, and then clean turns false.
  const locate = (path: Path): Location => {
    const offset = read.offsetOf(path);
    if (offset === undefined) clean = false;
    return { file, ...read.linePos(offset ?? 0) };
  };
  const config = checkMeaning(read.data, file, locate, () => {
    clean = false;
  });
  return clean ? config : undefined;
}

/**
 * The error for a grants file over the size limit, for sources that can tell before reading it
 * all (a file's size, an S3 object's length); `bytes` undefined when only "more" is known.
 */
export function oversizedGrants(file: string, bytes: number | undefined): ConfigError {
  const message = sizeProblem(bytes)?.message ?? `the file is ${bytes} bytes`;
  return new ConfigError([{ file, line: 1, col: 1, message }]);
}

/** The first {@link MAX_ISSUES} issues, and one more saying how many are not shown. */
export function capIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const next = issues[MAX_ISSUES];
  if (!next) return issues;
  return [
    ...issues.slice(0, MAX_ISSUES),
    { ...next, message: `and ${issues.length - MAX_ISSUES} more problems from here on, not shown` },
  ];
}

export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
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

const HOST_RE = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The checks a schema cannot express or explains badly: ARN grammar, repository grammar,
 * durations and their bounds, duplicates and conflicts between grants. Returns the model when
 * the parts it needs are well-formed (other issues may still have been reported).
 */
export function checkMeaning(
  data: unknown,
  file: string,
  locate: (path: Path, key?: boolean) => Location,
  report: (loc: Location, message: string) => void,
): GrantsConfig | undefined {
  if (!isRecord(data)) return undefined;
  const fail = (path: Path, message: string) => report(locate(path), message);
  const registry = checkRegistry(data.registry, fail);
  const ttl = ttlCheck(fail);
  const tokenTtl =
    data.tokenTtl === undefined ? DEFAULT_TOKEN_TTL_SECONDS : ttl(['tokenTtl'], data.tokenTtl);

  const grants: Grant[] = [];
  const across: AcrossGrants = { firstSeen: new Map(), explicitTtl: new Map() };
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
    const principals = checkPrincipals(g, base, grantTtl, across, locate, fail);
    const access = checkAccess(g, base, locate, fail);
    if (!principals.complete || !access.complete) complete = false;
    grants.push({
      number: gi + 1,
      principals: principals.principals,
      ttlSeconds: grantTtl,
      ...(g.ttl === undefined ? {} : { ttlAt: locate([...base, 'ttl']) }),
      access: access.access,
      at: locate(base),
    });
  });

  if (!complete || !registry || tokenTtl === undefined) return undefined;
  const tokenTtlAt = data.tokenTtl === undefined ? {} : { tokenTtlAt: locate(['tokenTtl']) };
  return { file, registry, tokenTtlSeconds: tokenTtl, ...tokenTtlAt, grants };
}

type Fail = (path: Path, message: string) => void;
type Locate = (path: Path, key?: boolean) => Location;

/** What the checks of one grant need to know of the others. */
interface AcrossGrants {
  /**
   * Each principal's identity (see principalIdentity) and how and where it was first written.
   * Places are kept as {@link Place}s and located only for a message: a valid file needs none.
   */
  readonly firstSeen: Map<string, { arn: string; place: Place }>;
  /** Each principal's first explicit ttl. */
  readonly explicitTtl: Map<string, { seconds: number; text: string; place: Place }>;
}

/** The registry settings, when they are all there; reports a malformed host. */
function checkRegistry(r: unknown, fail: Fail): RegistrySettings | undefined {
  if (!isRecord(r)) return undefined;
  if (typeof r.host === 'string' && !HOST_RE.test(r.host)) {
    fail(
      ['registry', 'host'],
      r.host.includes('://')
        ? `registry host ${quote(r.host)} must not include a scheme: write it as it appears in image names, like registry.example.com`
        : `registry host ${quote(r.host)} must be a host name with an optional port, like registry.example.com:5000`,
    );
  }
  if (typeof r.host === 'string' && typeof r.service === 'string' && typeof r.issuer === 'string')
    return {
      host: r.host,
      service: r.service,
      issuer: r.issuer,
      maxTokenBytes:
        typeof r.maxTokenBytes === 'number' ? r.maxTokenBytes : DEFAULT_MAX_TOKEN_BYTES,
    };
  return undefined;
}

/** Reads a duration at `path` as seconds of token lifetime, reporting what is wrong with it. */
function ttlCheck(fail: Fail): (path: Path, value: unknown) => number | undefined {
  return (path, value) => {
    if (typeof value !== 'string') return undefined;
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      fail(
        path,
        `${quote(value)} is not a duration: write it like 12h, 90m or 1h30m (units d, h, m, s)`,
      );
      return undefined;
    }
    if (seconds < MIN_TTL_SECONDS || seconds > MAX_TTL_SECONDS) {
      fail(
        path,
        `token lifetime ${excerpt(value)} is outside the allowed ${MIN_TTL_SECONDS / 60}m to ${MAX_TTL_SECONDS / 3600}h`,
      );
      return undefined;
    }
    return seconds;
  };
}

/**
 * The principals of grant `g` at `base`: each must parse, appear once in the grant, be written
 * the same way in every grant, and have one explicit ttl at most.
 */
function checkPrincipals(
  g: Record<string, unknown>,
  base: Path,
  grantTtl: number | undefined,
  across: AcrossGrants,
  locate: Locate,
  fail: Fail,
): { principals: Principal[]; complete: boolean } {
  const single = typeof g.principal === 'string';
  const listed: readonly unknown[] = single
    ? [g.principal]
    : Array.isArray(g.principals)
      ? g.principals
      : [];
  // Places are made only for a message: a valid file (most principals) needs none.
  const placeOf = (index: number): Place => ({ base, index: single ? undefined : index });
  let complete = listed.length > 0;
  const principals: Principal[] = [];
  const inGrant = new Map<string, number>();
  for (let i = 0; i < listed.length; i++) {
    const value = listed[i];
    if (typeof value !== 'string') {
      complete = false;
      continue;
    }
    const parsed = parsePrincipal(value);
    if (!parsed.ok) {
      fail(pathOf(placeOf(i)), parsed.reason);
      complete = false;
      continue;
    }
    const p = parsed.value;
    const id = principalIdentity(p);
    const dupe = inGrant.get(id);
    if (dupe !== undefined) {
      fail(
        pathOf(placeOf(i)),
        `principal ${quote(p.arn, MAX_PRINCIPAL_ARN_LENGTH)} is listed twice in this grant (first at line ${locate(pathOf(placeOf(dupe))).line})`,
      );
      continue;
    }
    inGrant.set(id, i);
    const prev = across.firstSeen.get(id);
    if (!prev) across.firstSeen.set(id, { arn: p.arn, place: placeOf(i) });
    else if (prev.arn !== p.arn)
      fail(
        pathOf(placeOf(i)),
        `${quote(p.arn, MAX_PRINCIPAL_ARN_LENGTH)} and ${quote(prev.arn, MAX_PRINCIPAL_ARN_LENGTH)} (line ${locate(pathOf(prev.place)).line}) are the same ${p.type} for IAM (names are unique per account, ignoring case and path): write it one way`,
      );
    // A grant without ttl defers to others; two different explicit lifetimes are a conflict.
    if (grantTtl !== undefined && typeof g.ttl === 'string') {
      const other = across.explicitTtl.get(id);
      if (!other) across.explicitTtl.set(id, { seconds: grantTtl, text: g.ttl, place: placeOf(i) });
      else if (other.seconds !== grantTtl)
        fail(
          [...base, 'ttl'],
          `conflicting ttl for ${quote(p.arn, MAX_PRINCIPAL_ARN_LENGTH)}: ${excerpt(g.ttl)} here, ${excerpt(other.text)} in the grant at line ${locate(pathOf(other.place)).line}`,
        );
    }
    principals.push(p);
  }
  return { principals, complete };
}

/**
 * Where a principal is written: its grant's path and its index in `principals`, or undefined
 * for a grant's single `principal`.
 */
interface Place {
  readonly base: Path;
  readonly index: number | undefined;
}

function pathOf(place: Place): Path {
  return place.index === undefined
    ? [...place.base, 'principal']
    : [...place.base, 'principals', place.index];
}

/** The access entries of grant `g` at `base`: patterns, actions, no entry twice. */
function checkAccess(
  g: Record<string, unknown>,
  base: Path,
  locate: Locate,
  fail: Fail,
): { access: AccessEntry[]; complete: boolean } {
  let complete = true;
  const access: AccessEntry[] = [];
  const seenPatterns = new Map<string, Path>();
  let catalogAt: Path | undefined;
  (Array.isArray(g.access) ? g.access : []).forEach((a: unknown, ai: number) => {
    const path: Path = [...base, 'access', ai];
    if (!isRecord(a)) {
      complete = false;
      return;
    }
    if (a.catalog === true && a.repository === undefined && a.actions === undefined) {
      if (catalogAt)
        fail(
          path,
          `catalog is granted twice in this grant (first at line ${locate(catalogAt).line})`,
        );
      catalogAt ??= path;
      access.push({ kind: 'catalog' });
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
    if (dupe) {
      const first = locate(dupe);
      fail(
        [...path, 'repository'],
        `repository ${quote(a.repository, MAX_REPOSITORY_NAME_LENGTH)} appears twice in this grant (first at ${first.line}:${first.col}): merge the actions into one entry`,
      );
    }
    seenPatterns.set(a.repository, [...path, 'repository']);
    const actions = a.actions.filter((x): x is Action =>
      ['pull', 'push', 'delete', '*'].includes(x as string),
    );
    if (actions.length !== a.actions.length) complete = false;
    if (actions.includes('*') && actions.length > 1)
      fail([...path, 'actions'], '"*" already means every action: list it alone');
    access.push({ kind: 'repository', pattern: parsed.value, actions });
  });
  if (!Array.isArray(g.access) || g.access.length === 0) complete = false;
  return { access, complete };
}
