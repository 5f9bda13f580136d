/**
 * The synth-time check that tokens outlive one failed scheduled run: lifetime ≥ 2 × schedule +
 * margin (the larger of 5 minutes and the function timeout). Tested both ways, at the boundary,
 * with the lifetime given as a prop and read from a grants file.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Duration, Stack } from 'aws-cdk-lib';
import {
  LIFETIME_MARGIN,
  lifetimeProblem,
  RegistryTokenMinter,
  type RegistryTokenMinterProps,
  shortestLifetime,
} from '../../infra/minter.js';
import { newApp } from '../helpers/cdk.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('lifetime-');
});
afterAll(async () => removeTempDir(dir));

/** Writes a grants file with these grant lifetimes (undefined: the file's tokenTtl). */
function grantsFile(name: string, ttls: (string | undefined)[], tokenTtl = '12h'): string {
  const grants = ttls
    .map(
      (ttl, i) =>
        `  - principal: arn:aws:iam::111122223333:role/app-${i}\n${ttl ? `    ttl: ${ttl}\n` : ''}    access:\n      - repository: team/app\n        actions: [pull]\n`,
    )
    .join('');
  const file = join(dir, name);
  writeFileSync(
    file,
    `version: 1\nregistry:\n  host: registry.example.com\n  service: registry.example.com\n  issuer: regtoken\ntokenTtl: ${tokenTtl}\ngrants:\n${grants}`,
  );
  return file;
}

function construct(props: RegistryTokenMinterProps): () => RegistryTokenMinter {
  return () => new RegistryTokenMinter(new Stack(newApp(), 'Test'), 'Minter', props);
}

describe('lifetimeProblem', () => {
  const base = { schedule: Duration.hours(1), timeout: Duration.minutes(5), source: 'test' };

  it('accepts exactly 2 × schedule + 5 minutes', () => {
    expect(lifetimeProblem({ ...base, minTokenTtl: Duration.minutes(125) })).toBeUndefined();
  });

  it('rejects one second less, explaining why and what to change', () => {
    expect(lifetimeProblem({ ...base, minTokenTtl: Duration.seconds(125 * 60 - 1) })).toBe(
      'token lifetime 2h4m59s (test) is shorter than 2 × schedule (1h) + margin (5m) = 2h5m: ' +
        'when one scheduled run fails, tokens would expire before their replacements are written. ' +
        'Raise the ttl in the grants to at least 2h5m or shorten the schedule.',
    );
  });

  it('uses the function timeout as the margin when it is longer than 5 minutes', () => {
    expect(LIFETIME_MARGIN.toMinutes()).toBe(5);
    const long = { ...base, timeout: Duration.minutes(15) };
    expect(lifetimeProblem({ ...long, minTokenTtl: Duration.minutes(135) })).toBeUndefined();
    expect(lifetimeProblem({ ...long, minTokenTtl: Duration.minutes(134) })).toMatch(
      /margin \(15m\) = 2h15m/,
    );
  });
});

describe('shortestLifetime', () => {
  it('is the smallest effective lifetime of any principal', () => {
    const file = grantsFile('mixed.yaml', ['3h', undefined, '4h'], '12h');
    expect(shortestLifetime(readFileSync(file, 'utf8'), file)).toEqual({
      seconds: 3 * 3600,
      principal: 'arn:aws:iam::111122223333:role/app-0',
    });
  });

  it("is the file's tokenTtl when no grant sets a ttl", () => {
    const file = grantsFile('default.yaml', [undefined], '6h');
    expect(shortestLifetime(readFileSync(file, 'utf8'), file)?.seconds).toBe(6 * 3600);
  });

  it('fails synth on an invalid grants file, with every problem at file:line:col', () => {
    const file = join(dir, 'invalid.yaml');
    writeFileSync(file, 'version: 2\n');
    expect(() => shortestLifetime(readFileSync(file, 'utf8'), file)).toThrow(
      [
        `RegistryTokenMinter: grantsFile ${file} is invalid:`,
        `${file}:1:1: missing required field "registry"`,
        `${file}:1:1: missing required field "grants"`,
        `${file}:1:10: unsupported version 2: expected 1`,
      ].join('\n'),
    );
  });
});

describe('RegistryTokenMinter checks lifetimes at synth', () => {
  it('passes with minTokenTtl = 2 × schedule + margin', () => {
    expect(construct({ minTokenTtl: Duration.minutes(125) })).not.toThrow();
  });

  it('fails with minTokenTtl one minute shorter', () => {
    expect(construct({ minTokenTtl: Duration.minutes(124) })).toThrow(
      'RegistryTokenMinter: token lifetime 2h4m (minTokenTtl) is shorter than 2 × schedule (1h) + margin (5m) = 2h5m',
    );
  });

  it('fails for a grants file whose shortest ttl is too short, naming the principal', () => {
    const file = grantsFile('short.yaml', ['12h', '1h']);
    expect(construct({ grantsFile: file })).toThrow(
      `RegistryTokenMinter: token lifetime 1h (${file}: arn:aws:iam::111122223333:role/app-1) is shorter than 2 × schedule (1h)`,
    );
  });

  it('passes for the same kind of file when every ttl is long enough', () => {
    const file = grantsFile('long.yaml', ['12h', '3h']);
    expect(construct({ grantsFile: file })).not.toThrow();
  });

  it('checks the file against the schedule given', () => {
    const file = grantsFile('three-hours.yaml', ['3h']);
    expect(construct({ grantsFile: file, schedule: Duration.minutes(85) })).not.toThrow();
    expect(construct({ grantsFile: file, schedule: Duration.minutes(90) })).toThrow(
      /= 3h5m: when one scheduled run fails/,
    );
  });

  it('checks minTokenTtl too when both are given', () => {
    const file = grantsFile('both.yaml', ['12h']);
    expect(construct({ grantsFile: file, minTokenTtl: Duration.hours(1) })).toThrow(
      /token lifetime 1h \(minTokenTtl\)/,
    );
  });

  it('names a grants file it cannot read', () => {
    expect(construct({ grantsFile: join(dir, 'missing.yaml') })).toThrow(
      `RegistryTokenMinter: grantsFile ${join(dir, 'missing.yaml')} cannot be read: ENOENT`,
    );
  });

  it('needs minTokenTtl or grantsFile', () => {
    expect(construct({})).toThrow(
      'RegistryTokenMinter: set minTokenTtl (the shortest token lifetime your grants use) or grantsFile',
    );
  });

  it('refuses a schedule whose two periods exceed the longest token lifetime', () => {
    expect(construct({ minTokenTtl: Duration.hours(24), schedule: Duration.hours(13) })).toThrow(
      'RegistryTokenMinter: schedule 13h is too long',
    );
  });
});
