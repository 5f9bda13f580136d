import { describe, expect, it } from '@jest/globals';
import { callerFromArn } from '../../lambda/core/identity.js';
import {
  checkRegistry,
  checkTimes,
  humanDuration,
  type OwnToken,
  parseTokenDocument,
} from '../../lambda/core/token-check.js';
import { ClockSkewError, InputError, TokenExpiredError } from '../../lambda/errors.js';

const A = '111122223333';
const URL = `s3://tokens-bucket/tokens/${A}/role/ci.json`;
const T = Date.parse('2026-01-02T03:00:00Z') / 1000; // issue time of the test token

/** A JWT-shaped string with these claims (the signature is not checked client-side). */
function jwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64(claims)}.c2ln`;
}

function caller(arn = `arn:aws:sts::${A}:assumed-role/ci/s1`) {
  const r = callerFromArn(arn);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function doc(over: Record<string, unknown> = {}, claims: Record<string, unknown> = {}) {
  return JSON.stringify({
    principal: `arn:aws:iam::${A}:role/build/ci`,
    registry: 'registry.example.com',
    token: jwt({
      sub: `arn:aws:iam::${A}:role/build/ci`,
      exp: T + 3600,
      nbf: T,
      iat: T,
      ...claims,
    }),
    issuedAt: new Date(T * 1000).toISOString(),
    expiresAt: new Date((T + 3600) * 1000).toISOString(),
    access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
    ...over,
  });
}

describe('parseTokenDocument', () => {
  it('accepts the document of the caller (a role session of a role with a path)', () => {
    const t = parseTokenDocument(doc(), URL, caller());
    expect(t.document.registry).toBe('registry.example.com');
    expect(t.claims).toEqual({
      exp: T + 3600,
      nbf: T,
      iat: T,
      sub: `arn:aws:iam::${A}:role/build/ci`,
    });
  });

  it.each([
    ['not JSON', '{', `${URL}: not a token document (not JSON)`],
    [
      'a field missing',
      doc({ token: undefined }),
      `${URL}: not a token document (expected principal, registry, token, access)`,
    ],
    [
      'a bad registry host',
      doc({ registry: 'https://x/' }),
      `${URL}: "https://x/" is not a registry host`,
    ],
    [
      'a token without exp',
      doc({ token: jwt({ sub: 'x' }) }),
      `${URL}: the token in it is not a registry token (no "exp" claim)`,
    ],
    [
      "another role's document",
      doc({ principal: `arn:aws:iam::${A}:role/other` }),
      `${URL} holds the token of arn:aws:iam::${A}:role/other, not of arn:aws:sts::${A}:assumed-role/ci/s1; tell the registry administrators`,
    ],
    [
      "a user's document with the role's name",
      doc({ principal: `arn:aws:iam::${A}:user/ci` }),
      `${URL} holds the token of arn:aws:iam::${A}:user/ci, not of arn:aws:sts::${A}:assumed-role/ci/s1; tell the registry administrators`,
    ],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseTokenDocument(text, URL, caller())).toThrow(new InputError(message));
  });
});

describe('checkRegistry', () => {
  const token = parseTokenDocument(doc(), URL, caller());
  it.each([['registry.example.com'], ['REGISTRY.example.com'], ['https://registry.example.com/']])(
    'accepts %s',
    (value) => {
      expect(() => checkRegistry(token, { value, source: '--registry' }, URL)).not.toThrow();
    },
  );
  it('accepts no expectation', () => {
    expect(() => checkRegistry(token, undefined, URL)).not.toThrow();
  });
  it('names both hosts and the source of the expectation', () => {
    let err: unknown;
    try {
      checkRegistry(token, { value: 'other.example.com', source: 'REGTOKEN_REGISTRY' }, URL);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'UNKNOWN_REGISTRY',
      message: `your token at ${URL} is for registry registry.example.com, not other.example.com (REGTOKEN_REGISTRY): use --registry registry.example.com, or ask for a grant on other.example.com`,
    });
  });
});

describe('checkTimes: the token is valid from T to T+1h; the registry allows 60 s', () => {
  const token: OwnToken = parseTokenDocument(doc(), URL, caller());
  const at = (s: number) => new Date(s * 1000);
  const SYNC = 'set the clock right (timedatectl set-ntp true, or chronyd) and retry';
  // what, this machine's clock, AWS's clock (undefined: no Date seen) → remaining s, skew s | error
  it.each([
    ['both clocks agree', T + 10, T + 10, 3590, 0],
    ['no AWS clock known', T + 10, undefined, 3590, undefined],
    ['local clock 30 s behind the issue time: within the leeway', T - 30, T + 1, 3599, -31],
    ['local clock 5 min ahead, token still valid: AWS time counts', T + 400, T + 100, 3500, 300],
  ])('%s', (_what, local, aws, remaining, skew) => {
    const times = checkTimes(
      token,
      { local: at(local), aws: aws === undefined ? undefined : at(aws) },
      URL,
    );
    expect(times).toEqual({
      expiresAt: at(T + 3600),
      remainingSeconds: remaining,
      skewSeconds: skew,
    });
  });

  it.each([
    [
      'local clock 10 min behind AWS',
      T - 600,
      T + 5,
      ClockSkewError,
      `this machine's clock is 10m 5s behind AWS: the token at ${URL} is valid from 2026-01-02 03:00 UTC, 10m from now by this clock (the registry allows 60 s); ${SYNC}`,
    ],
    [
      'local clock 10 min behind, AWS clock unknown',
      T - 600,
      undefined,
      ClockSkewError,
      `the token at ${URL} is valid only from 2026-01-02 03:00 UTC, 10m from now by this machine's clock (the registry allows 60 s): this clock or the minter's is wrong; ${SYNC}`,
    ],
    [
      'local clock 3 h ahead: the token only looks expired',
      T + 3 * 3600,
      T + 60,
      ClockSkewError,
      `this machine's clock is 2h 59m ahead of AWS: the token at ${URL} looks expired here but is valid until 2026-01-02 04:00 UTC; ${SYNC}`,
    ],
    [
      'expired by both clocks',
      T + 3600 + 121,
      T + 3600 + 120,
      TokenExpiredError,
      `the token at ${URL} expired at 2026-01-02 04:00 UTC (2m ago): the minter has not replaced it; tell the registry administrators (its RunsFailed alarm)`,
    ],
    [
      'expired 10 s ago by AWS, and this clock 20 s ahead: within the leeway, simply expired',
      T + 3600 + 30,
      T + 3600 + 10,
      TokenExpiredError,
      `the token at ${URL} expired at 2026-01-02 04:00 UTC (10s ago): the minter has not replaced it; tell the registry administrators (its RunsFailed alarm)`,
    ],
    [
      'expired exactly now',
      T + 3600,
      undefined,
      TokenExpiredError,
      `the token at ${URL} expired at 2026-01-02 04:00 UTC (0s ago): the minter has not replaced it; tell the registry administrators (its RunsFailed alarm)`,
    ],
  ])('%s', (_what, local, aws, cls, message) => {
    const run = () =>
      checkTimes(token, { local: at(local), aws: aws === undefined ? undefined : at(aws) }, URL);
    expect(run).toThrow(cls);
    expect(run).toThrow(message);
  });
});

describe('humanDuration', () => {
  it.each([
    [0, '0s'],
    [45, '45s'],
    [60, '1m'],
    [125, '2m 5s'],
    [3600, '1h'],
    [3601, '1h'],
    [43_140, '11h 59m'],
    [90_000, '1d 1h'],
  ])('%d s → %s', (s, text) => {
    expect(humanDuration(s)).toBe(text);
  });
});
