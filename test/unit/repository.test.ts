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
