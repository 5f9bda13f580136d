import { describe, expect, it } from '@jest/globals';
import {
  parsePrincipal,
  parsePrincipalStepwise,
  principalIdentity,
  tokenKey,
} from '../../lambda/core/principal.js';

describe('parsePrincipal accepts IAM users and roles', () => {
  it.each([
    ['arn:aws:iam::111122223333:role/ci-runner', 'role', '/', 'ci-runner'],
    ['arn:aws:iam::111122223333:role/web/ec2-web', 'role', '/web/', 'ec2-web'],
    [
      'arn:aws:iam::111122223333:role/a/b/c/Svc+Name=x,y'.replace(',y', ''),
      'role',
      '/a/b/c/',
      'Svc+Name=x',
    ],
    ['arn:aws-cn:iam::111122223333:user/alice', 'user', '/', 'alice'],
    [
      'arn:aws-us-gov:iam::111122223333:user/ops/bob@example.com',
      'user',
      '/ops/',
      'bob@example.com',
    ],
  ])('%s', (arn, type, path, name) => {
    const r = parsePrincipal(arn);
    expect(r).toEqual({
      ok: true,
      value: expect.objectContaining({ arn, type, path, name, account: '111122223333' }),
    });
  });
});

describe('parsePrincipal refuses what cannot own a token', () => {
  it.each([
    ['role/ci', 'is not an IAM ARN'],
    ['arn:aws:s3:::bucket', 'not an IAM ARN (service "s3")'],
    ['arn:aws-iso:iam::111122223333:role/ci', 'unknown partition "aws-iso"'],
    ['arn:aws:iam:us-east-1:111122223333:role/ci', 'IAM ARNs have no region'],
    ['arn:aws:iam::12345:role/ci', 'must be 12 digits'],
    ['arn:aws:iam::111122223333:group/devs', 'names a group'],
    ['arn:aws:iam::111122223333:root', 'names a root'],
    ['arn:aws:iam::111122223333:role', 'has no role name'],
    ['arn:aws:iam::111122223333:role/', 'has no role name'],
    ['arn:aws:iam::111122223333:role/a//b', 'empty segment'],
    ['arn:aws:iam::111122223333:role/a b', 'role name "a b" must be 1-64 characters'],
    [`arn:aws:iam::111122223333:role/${'x'.repeat(65)}`, 'must be 1-64 characters'],
    ['arn:aws:iam::111122223333:user/a,b', 'contains ","'],
    ['arn:aws:iam::111122223333:role/*', 'contains a wildcard'],
    [
      'arn:aws:sts::111122223333:assumed-role/ci/i-123',
      'name the role instead: arn:aws:iam::111122223333:role/ci',
    ],
    [
      `arn:aws:iam::111122223333:role/${'p/'.repeat(120)}x`,
      'is too long: at most 256 characters fit',
    ],
  ])('%s', (arn, reason) => {
    const r = parsePrincipal(arn);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });
});

describe('parsePrincipal reads a valid ARN in one match', () => {
  it('answers as the step-by-step checks on 20,000 mutated ARNs', () => {
    // Seeds of every shape, then one to three edits each: a character from the ARN alphabet
    // and its neighbours inserted, deleted or replaced (xorshift32, so every run is the same).
    const seeds = [
      'arn:aws:iam::111122223333:role/ci-runner',
      'arn:aws:iam::111122223333:role/web/ec2-web',
      'arn:aws-cn:iam::111122223333:user/a/b/c/Svc+Name=x',
      'arn:aws-us-gov:iam::111122223333:user/ops/bob@example.com',
      `arn:aws:iam::111122223333:role/${'p/'.repeat(110)}x`,
      `arn:aws:iam::111122223333:user/${'n'.repeat(64)}`,
    ];
    const alphabet = 'arn:aws-cniuvgolestr/*?, 0123456789AZaz+=.@_-\n';
    let x = 0x2545f491;
    const next = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      let arn = seeds[next(seeds.length)] as string;
      for (let edits = 1 + next(3); edits > 0; edits--) {
        const at = next(arn.length + 1);
        const c = alphabet[next(alphabet.length)] as string;
        const op = next(3);
        arn =
          op === 0
            ? arn.slice(0, at) + c + arn.slice(at)
            : op === 1
              ? arn.slice(0, at) + arn.slice(at + 1)
              : arn.slice(0, at) + c + arn.slice(at + 1);
      }
      const expected = parsePrincipalStepwise(arn);
      expect({ arn, ...parsePrincipal(arn) }).toEqual({ arn, ...expected });
      if (expected.ok) valid += 1;
    }
    // Both kinds were tried: mutations that stay valid and ones that do not.
    expect(valid).toBeGreaterThan(2_000);
    expect(valid).toBeLessThan(18_000);
  });
});

describe('token keys', () => {
  it('leave out the path so a role session can find its own token', () => {
    const r = parsePrincipal('arn:aws:iam::111122223333:role/web/ec2-web');
    expect(r.ok && tokenKey(r.value)).toBe('tokens/111122223333/role/ec2-web.json');
  });
  it('treat names differing only in case and path as the same IAM identity', () => {
    const a = parsePrincipal('arn:aws:iam::111122223333:role/web/Ci');
    const b = parsePrincipal('arn:aws:iam::111122223333:role/ci');
    expect(a.ok && b.ok && principalIdentity(a.value) === principalIdentity(b.value)).toBe(true);
  });
});
