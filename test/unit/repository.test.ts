import { describe, expect, it } from '@jest/globals';
import {
  checkRepositoryName,
  expandPattern,
  parseRepositoryPattern,
} from '../../lambda/core/repository.js';

describe('repository names follow the registry grammar', () => {
  it.each([
    ['team-a/app', true],
    ['a', true],
    ['a.b_c__d---e/f', true],
    ['base/node/20', true],
    ['Team/app', false],
    ['team//app', false],
    ['-app', false],
    ['app-', false],
    ['a___b', false],
    ['a..b', false],
    ['a/', false],
    ['', false],
    [`${'a'.repeat(256)}`, false],
  ])('%s → %s', (name, ok) => {
    expect(checkRepositoryName(name) === undefined).toBe(ok);
  });
});

const INVENTORY = [
  'app',
  'base/alpine',
  'base/node/20',
  'cache',
  'team-a/app',
  'team-a/app/cache',
  'team-a/tools/lint',
  'team-b/api',
  'team-b/cache',
];

describe('pattern expansion', () => {
  it.each([
    ['team-a/app', ['team-a/app']],
    ['not/yet/pushed', ['not/yet/pushed']],
    ['base/*', ['base/alpine']],
    ['team-*/app', ['team-a/app']],
    ['*', ['app', 'cache']],
    ['team-a/**', ['team-a/app', 'team-a/app/cache', 'team-a/tools/lint']],
    ['**/cache', ['cache', 'team-a/app/cache', 'team-b/cache']],
    ['team-a/**/lint', ['team-a/tools/lint']],
    ['team-a/**/app', ['team-a/app']],
    ['**', INVENTORY],
    ['*/*', ['base/alpine', 'team-a/app', 'team-b/api', 'team-b/cache']],
    ['base/node/*', ['base/node/20']],
    ['nothing/*', []],
  ])('%s', (source, expected) => {
    const parsed = parseRepositoryPattern(source);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(expandPattern(parsed.value, INVENTORY)).toEqual(expected);
  });

  it.each([
    ['team-a/**app', '"**" must be a whole path component'],
    ['Team/*', 'must be lower case'],
    ['a//*', 'empty path component'],
    ['a/b?', 'component "b?" must be lower-case letters and digits'],
    ['a/[bc]*', 'may use only'],
    ['a/**/**/b', '"**/**" means the same as "**": write it once'],
  ])('refuses %s', (source, reason) => {
    const parsed = parseRepositoryPattern(source);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain(reason);
  });

  it('treats regular-expression characters literally', () => {
    const parsed = parseRepositoryPattern('a.b/*');
    expect(parsed.ok && expandPattern(parsed.value, ['a.b/x', 'aXb/x'])).toEqual(['a.b/x']);
  });
});

/**
 * The regular expression patterns used to compile to, kept here as the reference: on small
 * inputs its backtracking is harmless, and the matcher must agree with it on every case.
 */
function referenceRegExp(source: string): RegExp {
  const literal = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const components = source.split('/');
  const parts = components.map((c, i) => {
    const last = i === components.length - 1;
    if (c === '**') {
      if (components.length === 1) return '.+';
      if (i === 0) return '(?:.+/)?';
      return last ? '/.+' : '/(?:.+/)?';
    }
    const sep = i === 0 || components[i - 1] === '**' ? '' : '/';
    return sep + c.split('*').map(literal).join('[^/]*');
  });
  return new RegExp(`^${parts.join('')}$`);
}

describe('the pattern matcher agrees with the regular expression it replaced', () => {
  // Deterministic pseudo-random cases (mulberry32), small enough for the reference.
  let seed = 7;
  const random = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const nameComponent = () =>
    Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(['a', 'b', 'ab', 'x'])).join(
      pick(['-', '.', '', '']),
    );
  const patternComponent = () =>
    random() < 0.2
      ? '**'
      : Array.from({ length: 1 + Math.floor(random() * 3) }, () =>
          pick(['a', 'b', '*', 'a*', '*b', 'x']),
        ).join('');
  const names = Array.from({ length: 300 }, () =>
    Array.from({ length: 1 + Math.floor(random() * 4) }, nameComponent).join('/'),
  ).filter((n) => checkRepositoryName(n) === undefined);
  const patterns = [
    ...new Set(
      Array.from({ length: 400 }, () =>
        Array.from({ length: 1 + Math.floor(random() * 4) }, patternComponent).join('/'),
      ),
    ),
  ].filter((p) => p.includes('*') && !p.includes('**/**') && parseRepositoryPattern(p).ok);

  it('has enough cases to mean something', () => {
    expect(names.length).toBeGreaterThan(200);
    expect(patterns.length).toBeGreaterThan(150);
    expect(patterns.some((p) => p.startsWith('**/'))).toBe(true);
    expect(patterns.some((p) => p.endsWith('/**'))).toBe(true);
    expect(patterns.some((p) => /[^/]\/\*\*\/[^/]/.test(p))).toBe(true);
  });

  it('on every pattern and name', () => {
    const disagreements: string[] = [];
    let matched = 0;
    for (const source of patterns) {
      const parsed = parseRepositoryPattern(source);
      if (!parsed.ok) throw new Error(parsed.reason);
      const re = referenceRegExp(source);
      for (const name of names) {
        const expected = re.test(name);
        if (expected) matched += 1;
        if (parsed.value.matches(name) !== expected) disagreements.push(`${source} ~ ${name}`);
      }
    }
    expect(disagreements).toEqual([]);
    expect(matched).toBeGreaterThan(500);
  });
});
