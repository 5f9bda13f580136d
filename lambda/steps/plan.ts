/**
 * The first step of a mint run: everything decided once per run, before any token is signed.
 * It reads and validates the grants, reads the repository inventory, checks the principals
 * against IAM, prepares the signing key, writes the bucket policy and the trust material, and
 * lists the stored tokens to find the stale ones.
 *
 * Its result, {@link MintPlan}, is plain data (no class instances, no Maps), so it can be handed
 * to workers in other processes (docs/performance.md, "Past one function"); only the signing key
 * stays with the caller. A single run starts writing before the stale keys are known
 * ({@link planWrites}, {@link listStale}): no token it writes is a stale one.
 */

import { parseGrants } from '../core/config.js';
import { formatDuration } from '../core/duration.js';
import {
  type GrantsConfig,
  needsInventory,
  type PrincipalAccess,
  principalsOf,
  type ResourceAccess,
  resolveAccess,
} from '../core/grants.js';
import { describeShortLifetime, type Schedule, shortLifetimes } from '../core/lifetime.js';
import type {
  ConfigSource,
  Logger,
  PrincipalCheck,
  PrincipalDirectory,
  RepositoryInventory,
  Signer,
  SigningKey,
  TokenStore,
} from '../core/ports.js';
import { type Principal, tokenKey } from '../core/principal.js';
import { compareCodeUnits } from '../core/text.js';

/** What the plan step needs. */
export interface PlanDeps {
  readonly config: ConfigSource;
  readonly store: TokenStore;
  readonly signer: Signer;
  readonly inventory?: RepositoryInventory | undefined;
  /** Checks principals exist before minting for them (AWS runs); absent locally. */
  readonly principals?: PrincipalDirectory | undefined;
  readonly logger: Logger;
  /** Injected for exact tests; defaults to the system clock. */
  readonly clock?: () => Date;
  /**
   * The grants this run mints, already read and validated, when the caller may use them as the
   * run's (see mintExclusive); without them the plan reads the grants itself.
   */
  readonly grants?: LoadedGrants | undefined;
  /** Keeps the last grants model (see {@link GrantsCache}); without one every read is parsed. */
  readonly grantsCache?: GrantsCache | undefined;
  /** The minting schedule, when known: lifetimes too short for it are warned about. */
  readonly schedule?: Schedule | undefined;
}

/** A principal not minted for, and why. */
export interface PrincipalProblem {
  readonly principal: string;
  readonly reason: string;
}

/** The grant that contributes most access entries to a token: named when a token is too large. */
export interface LargestGrant {
  /** The grant's number in the file (1-based). */
  readonly grant: number;
  readonly line: number;
  readonly entries: number;
}

/** One principal to mint for, with its resolved access. */
export interface PrincipalWork {
  readonly principal: Principal;
  /** Where its token is written: {@link tokenKey}. */
  readonly key: string;
  readonly ttlSeconds: number;
  readonly access: readonly ResourceAccess[];
  /** Wildcard patterns that matched no repository in the inventory. */
  readonly unmatched: readonly string[];
  readonly largestGrant: LargestGrant | undefined;
  /**
   * The principal's place in ARN order among the plan's principals (0-based): the run reports
   * its tokens in that order, and knowing each one's place spares sorting them by ARN.
   */
  readonly rank: number;
}

/** What every token of the run shares. */
export interface TokenSettings {
  readonly issuer: string;
  readonly service: string;
  /** The registry host written into each token document. */
  readonly host: string;
  readonly maxTokenBytes: number;
  /** The run's issue time (ISO 8601): every token's `iat` and `nbf`. */
  readonly issuedAt: string;
  /** The repository inventory's name, for warnings about patterns that matched nothing. */
  readonly inventory: string | undefined;
}

/** The outcome of the plan step: plain, serialisable data. */
export interface MintPlan {
  readonly configVersion: string | undefined;
  readonly settings: TokenSettings;
  /** Principals to mint for, in the order of the grants file. */
  readonly principals: readonly PrincipalWork[];
  /** Principals that get no token because IAM does not know them (see docs/aws.md). */
  readonly unknown: readonly PrincipalProblem[];
  /**
   * How many principals (in other accounts) were minted for without an IAM check; undefined
   * when the run checks no principal against IAM (a local run).
   */
  readonly unverified: number | undefined;
  /**
   * How many principals get a token that would expire before its replacement when one
   * scheduled run fails; undefined when the run does not know the schedule.
   */
  readonly shortLifetimes: number | undefined;
  /** Warnings about the run as a whole (per-token warnings come from the batches). */
  readonly warnings: readonly string[];
  /** Keys stored before the run whose principals are no longer granted: removed at the end. */
  readonly stale: readonly string[];
  /** Where the trust bundle and the JWKS were published. */
  readonly trust: { readonly bundle: string; readonly jwks: string };
  /** The signing key's description (never key material). */
  readonly signingKey: string;
  /** Reader accounts the store left out of its policy (S3 refused them), when it has one. */
  readonly policyAccountsLeftOut: number | undefined;
  /** Whole days until the signing root's newest certificate expires, when the signer says. */
  readonly rootDaysLeft: number | undefined;
  /** When the run started (ms since the epoch), for its duration metric. */
  readonly startedAt: number;
}

/**
 * The last grants text parsed and its model, kept by whoever owns the cache: a warm Lambda
 * container (one per handler) or one CLI run. A locked run reads the grants twice (checked
 * before the lock, minted from under it) and the scheduled function reads the same object run
 * after run; parsing is the costliest step of the engine (docs/performance.md), and
 * {@link parseGrants} is pure, so the same text from the same source is parsed once. The cache
 * lives with its owner, never in module state, so separate runs (and tests) share nothing.
 */
export class GrantsCache {
  #last: { file: string; text: string; config: GrantsConfig } | undefined;
  #resolved:
    | { config: GrantsConfig; inventory: readonly string[]; work: readonly PrincipalWork[] }
    | undefined;

  /** The model of `text`, parsed now unless it is the text last parsed for `file`. */
  async parse(text: string, file: string): Promise<GrantsConfig> {
    const last = this.#last;
    if (last?.file === file && last.text === text) return last.config;
    const config = await parseGrants(text, file);
    this.#last = { file, text, config };
    return config;
  }

  /**
   * Each principal's work under `config` and `inventory` ({@link planWork}), made now unless
   * they are the model and the repository names last resolved (it is pure, and its result is
   * read-only). A scheduled run of unchanged grants over an unchanged registry resolves
   * nothing; a pushed repository or a new grants text resolves again.
   */
  resolve(config: GrantsConfig, inventory: readonly string[]): readonly PrincipalWork[] {
    const last = this.#resolved;
    if (last?.config === config && sameNames(last.inventory, inventory)) return last.work;
    const work = planWork(config, inventory);
    this.#resolved = { config, inventory: [...inventory], work };
    return work;
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The grants as read and validated, with the version of the object they were read from. */
export interface LoadedGrants {
  readonly config: GrantsConfig;
  readonly version: string | undefined;
}

/**
 * Reads and validates the grants; throws ConfigError (with every problem) before any write.
 * With a cache, an unchanged text is not parsed again.
 */
export async function loadGrants(source: ConfigSource, cache?: GrantsCache): Promise<LoadedGrants> {
  const { text, version } = await source.read();
  const config = await (cache ? cache.parse(text, source.name) : parseGrants(text, source.name));
  return { config, version };
}

/** Each principal's work ({@link planWork}); with a cache, unchanged input is not resolved again. */
function resolveGrants(
  config: GrantsConfig,
  inventory: readonly string[],
  cache?: GrantsCache,
): readonly PrincipalWork[] {
  return cache ? cache.resolve(config, inventory) : planWork(config, inventory);
}

/**
 * Starts `start` now and returns a function that awaits its result later. A failure is kept
 * for that moment: it surfaces where the value is needed (as if the call had been made then),
 * never as an unhandled rejection if the run stops earlier for another reason.
 */
function early<T>(start: () => Promise<T>): () => Promise<T> {
  const promise = start();
  promise.catch(() => undefined);
  return () => promise;
}

/**
 * Starts the reads that depend on the grants, side by side: on S3 and IAM each is one or more
 * round trips, and none needs another's answer. Each is awaited where the run needs it, so a
 * failure still stops the run at the same point.
 *
 * The per-run certificate must outlive the longest token (or the default, if none is minted).
 * It is taken over every grant, before the inventory is read and the IAM check leaves out
 * unknown principals, so the signing key is made while S3 and IAM answer: the certificate may
 * outlive what is minted, never fall short of it. The signer gets the published bundle when it
 * comes (it needs the bundle for the root certificates only, not to certify the run's key).
 */
function startReads(
  deps: PlanDeps,
  config: GrantsConfig,
  now: Date,
  readBundle: () => Promise<string | undefined>,
) {
  const { inventory: source, principals: directory } = deps;
  const maxTtl = config.grants.reduce(
    (m, g) => Math.max(m, g.ttlSeconds ?? config.tokenTtlSeconds),
    config.tokenTtlSeconds,
  );
  return {
    listInventory: needsInventory(config) && source ? early(() => source.list()) : undefined,
    checkPrincipals: directory ? early(() => directory.check(principalsOf(config))) : undefined,
    prepareKey: early(() =>
      deps.signer.prepare({
        now,
        notAfter: new Date(now.getTime() + maxTtl * 1000),
        publishedBundle: readBundle(),
      }),
    ),
  };
}

/** A {@link MintPlan} but for its stale keys: all a single run needs to start writing. */
export type WritePlan = Omit<MintPlan, 'stale'>;

/**
 * Plans a run and publishes what must exist before any token does (the read policy, the trust
 * material). Throws ConfigError on a bad config, before anything is written. The stored tokens
 * are listed beside the other reads: a fanned-out run hands the whole plan to its workers.
 */
export async function plan(deps: PlanDeps): Promise<{ plan: MintPlan; key: SigningKey }> {
  const listStored = early(() => deps.store.listTokenKeys());
  const { plan: planned, key } = await planWrites(deps);
  return { plan: { ...planned, stale: staleKeys(await listStored(), planned.principals) }, key };
}

/**
 * The stored token keys whose principals this run does not mint for (absent from the config,
 * or unknown to IAM: a role deleted and recreated later must not find an old token waiting),
 * listed now, or taken from `known` when the run knows the stored keys already (a
 * `ReleaseNote`). Every key the run writes is a wanted one, so a listing made while the
 * run writes finds the same stale keys as one made before.
 */
export async function listStale(
  store: TokenStore,
  principals: readonly PrincipalWork[],
  known?: readonly string[],
): Promise<string[]> {
  return staleKeys(known ?? (await store.listTokenKeys()), principals);
}

function staleKeys(stored: readonly string[], principals: readonly PrincipalWork[]): string[] {
  const wanted = new Set(principals.map((r) => r.key));
  return stored.filter((k) => !wanted.has(k));
}

/**
 * {@link plan} without the listing of the stored tokens: a single run lists them beside its
 * writes ({@link listStale}), so the listing, which grows with the tokens, does not hold up the
 * first write.
 */
export async function planWrites(deps: PlanDeps): Promise<{ plan: WritePlan; key: SigningKey }> {
  const { store, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const startedAt = Date.now();

  // The published bundle does not depend on the grants: its read starts with the grants' read
  // (under the run lock, on S3 a round trip). It is awaited where the run needs it, so a bad
  // grants file is still reported first, and nothing is written.
  const now = clock();
  const grants = deps.grants ?? loadGrants(deps.config, deps.grantsCache);
  const readBundle = early(() => store.readTrustBundle());
  const { config, version } = await grants;
  const { listInventory, checkPrincipals, prepareKey } = startReads(deps, config, now, readBundle);
  logger.info('grants loaded', {
    config: deps.config.name,
    configVersion: version,
    grants: config.grants.length,
  });
  const shortLifetimes = deps.schedule
    ? warnShortLifetimes(config, deps.schedule, logger)
    : undefined;

  const source = deps.inventory;
  let inventory: string[] = [];
  if (listInventory && source) {
    inventory = await listInventory();
    logger.info('repository inventory read', {
      inventory: source.name,
      repositories: inventory.length,
    });
  }
  const warnings: string[] = [];
  if (needsInventory(config) && !source)
    warnings.push(
      'the grants use wildcard patterns but no repository inventory was given: patterns grant nothing (pass --repositories)',
    );

  let resolved = resolveGrants(config, inventory, deps.grantsCache);
  let unknown: PrincipalProblem[] = [];
  let unverified: number | undefined;
  if (checkPrincipals) {
    const check = await checkPrincipals();
    unknown = reportUnknown(check, logger);
    unverified = check.unverified.length;
    const skip = new Set(unknown.map((u) => u.principal));
    resolved = resolved.filter((r) => !skip.has(r.principal.arn));
  }
  const key = await prepareKey();
  // Root certificates left out, re-issued or expiring within a year: the operators must know.
  warnings.push(...(key.root?.notes ?? []));

  // Protect before publishing: a new reader account must be in the policy before its token
  // exists. Built from every configured account, so it does not depend on IAM lookups. The
  // policy and the trust material are independent, so they are written side by side; a policy
  // failure is reported first, as when they were written one after the other.
  const [policy, published] = await Promise.allSettled([
    store.applyReadPolicy?.([
      ...new Set(config.grants.flatMap((g) => g.principals.map((p) => p.account))),
    ]),
    store.publishTrust(key.trust),
  ]);
  if (policy.status === 'rejected') throw policy.reason;
  if (published.status === 'rejected') throw published.reason;
  // Accounts S3 refuses as principals (no such account) stay out of the policy; their
  // principals still get tokens, readable once the account exists and a run names it.
  const leftOut = policy.value ?? [];
  for (const account of leftOut)
    warnings.push(
      `account ${account} left out of the token bucket policy: S3 refuses it as a principal (Invalid principal in policy), so its principals cannot read their tokens; check the account ID in the grants`,
    );

  const writePlan: WritePlan = {
    configVersion: version,
    settings: {
      issuer: config.registry.issuer,
      service: config.registry.service,
      host: config.registry.host,
      maxTokenBytes: config.registry.maxTokenBytes,
      issuedAt: now.toISOString(),
      inventory: source?.name,
    },
    principals: resolved,
    unknown,
    unverified,
    shortLifetimes,
    warnings,
    trust: published.value,
    signingKey: key.description,
    policyAccountsLeftOut: store.applyReadPolicy ? leftOut.length : undefined,
    rootDaysLeft: key.root?.daysLeft,
    startedAt,
  };
  return { plan: writePlan, key };
}

/** The principals IAM does not know (no token for them), each logged; and how many went unchecked. */
function reportUnknown(check: PrincipalCheck, logger: Logger): PrincipalProblem[] {
  for (const u of check.unknown)
    logger.warn('unknown principal: no token minted', {
      principal: u.principal.arn,
      reason: u.reason,
    });
  if (check.unverified.length)
    logger.info('principals in other accounts minted unverified', {
      count: check.unverified.length,
    });
  return check.unknown.map((u) => ({ principal: u.principal.arn, reason: u.reason }));
}

/**
 * Logs each lifetime in the grants that is too short for the schedule (one warning per `ttl`
 * or `tokenTtl`, naming where it is written and whom it affects); returns how many principals
 * it affects.
 */
function warnShortLifetimes(config: GrantsConfig, schedule: Schedule, logger: Logger): number {
  let principals = 0;
  for (const short of shortLifetimes(config, schedule)) {
    principals += short.principals.length;
    logger.warn('token lifetime shorter than two schedule periods plus the margin', {
      problem: describeShortLifetime(config.file, short, schedule),
      ttl: formatDuration(short.seconds),
      needed: formatDuration(short.neededSeconds),
      principals: short.principals,
    });
  }
  return principals;
}

/**
 * Each principal's access ({@link resolveAccess}) as plain data, in the grants' order, with its
 * place in ARN order. Principals named by the same grants share their access list, and so their
 * largest grant: it is found once per list.
 */
function planWork(config: GrantsConfig, inventory: readonly string[]): PrincipalWork[] {
  const resolved = resolveAccess(config, inventory);
  const ranks = arnRanks(resolved);
  const largest = new Map<PrincipalAccess['contributions'], LargestGrant | undefined>();
  return resolved.map((r, i) => {
    let grant = largest.get(r.contributions);
    if (!largest.has(r.contributions)) {
      grant = largestGrant(r.contributions);
      largest.set(r.contributions, grant);
    }
    return {
      principal: r.principal,
      key: tokenKey(r.principal),
      ttlSeconds: r.ttlSeconds,
      access: r.access,
      unmatched: r.unmatched,
      largestGrant: grant,
      rank: ranks[i] as number,
    };
  });
}

/** Each principal's place when sorted by the ARN's characters (the same in every locale: an ARN is ASCII). */
function arnRanks(resolved: readonly PrincipalAccess[]): number[] {
  const byArn = resolved.map((_, i) => i);
  byArn.sort((a, b) =>
    compareCodeUnits(
      (resolved[a] as PrincipalAccess).principal.arn,
      (resolved[b] as PrincipalAccess).principal.arn,
    ),
  );
  const ranks = new Array<number>(resolved.length);
  byArn.forEach((at, rank) => {
    ranks[at] = rank;
  });
  return ranks;
}

function largestGrant(contributions: PrincipalAccess['contributions']): LargestGrant | undefined {
  let worst: LargestGrant | undefined;
  for (const [grant, entries] of contributions)
    if (!worst || entries > worst.entries)
      worst = { grant: grant.number, line: grant.at.line, entries };
  return worst;
}
