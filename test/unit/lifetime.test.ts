/**
 * Token lifetimes against the schedule, where the grants really come from: the rule (core), the
 * mint run's warning and ShortLifetimes metric (what the function logs and the stack alarms on),
 * and the lines `regtoken validate` and `regtoken plan` print when given --schedule.
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { parseGrantsSync } from '../../lambda/core/config-positions.js';
import {
  describeShortLifetime,
  minimumLifetime,
  readSchedule,
  type Schedule,
  shortLifetimes,
} from '../../lambda/core/lifetime.js';
import type { Logger } from '../../lambda/core/ports.js';
import { mint } from '../../lambda/mint.js';
import { cli } from '../helpers/cli.js';
import { FIXED_NOW } from '../helpers/keys.js';
import {
  fixedSigner,
  MemoryConfig,
  MemoryStore,
  RecordingMetrics,
} from '../helpers/memory-ports.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const HOURLY: Schedule = { periodSeconds: 3600, marginSeconds: 300 };

/** A grants file: `tokenTtl` (or none) and grants given as [principals, ttl or none]. */
function grants(tokenTtl: string | undefined, ...list: [string[], string | undefined][]): string {
  return [
    'version: 1',
    'registry: {host: registry.test, service: svc, issuer: iss}',
    ...(tokenTtl ? [`tokenTtl: ${tokenTtl}`] : []),
    'grants:',
    ...list.flatMap(([principals, ttl]) => [
      '  - principals:',
      ...principals.map((p) => `      - arn:aws:iam::111122223333:role/${p}`),
      ...(ttl ? [`    ttl: ${ttl}`] : []),
      '    access: [{repository: team-a/app, actions: [pull]}]',
    ]),
    '',
  ].join('\n');
}

/** Each short lifetime as `LINE:COL setting seconds principals`. */
function short(text: string, schedule = HOURLY): string[] {
  return shortLifetimes(parseGrantsSync(text, 'g.yaml'), schedule).map(
    (s) =>
      `${s.at ? `${s.at.line}:${s.at.col}` : '-'} ${s.setting} ${s.seconds} ${s.principals.map((p) => p.split('/')[1]).join(',')}`,
  );
}

describe('shortLifetimes', () => {
  it('needs 2 × period + margin', () => {
    expect(minimumLifetime(HOURLY)).toBe(7500);
  });

  it.each([
    ['a ttl exactly 2h5m is long enough', grants('12h', [['a'], '2h5m']), []],
    ['a ttl one minute shorter is not', grants('12h', [['a'], '2h4m']), ['7:10 ttl 7440 a']],
    [
      'every principal of the grant is named',
      grants('12h', [['a', 'b'], '1h']),
      ['8:10 ttl 3600 a,b'],
    ],
    ['tokenTtl, where it is written', grants('2h', [['a'], undefined]), ['3:11 tokenTtl 7200 a']],
    [
      'a grant without ttl defers to the ttl another grant gives the principal',
      grants('12h', [['a'], undefined], [['a', 'b'], '1h']),
      ['11:10 ttl 3600 a,b'],
    ],
    [
      'the same ttl in two grants: each principal at the first one naming it',
      grants('12h', [['a'], '1h'], [['a', 'b'], '1h']),
      ['7:10 ttl 3600 a', '12:10 ttl 3600 b'],
    ],
  ])('%s', (_, text, expected) => {
    expect(short(text)).toEqual(expected);
  });

  it('the default tokenTtl (12h) against a 6 hour schedule: no position, the setting named', () => {
    const schedule = { periodSeconds: 6 * 3600, marginSeconds: 300 };
    const config = parseGrantsSync(grants(undefined, [['a'], undefined]), 'g.yaml');
    const [only, ...rest] = shortLifetimes(config, schedule);
    expect(rest).toEqual([]);
    expect(describeShortLifetime('g.yaml', only as never, schedule)).toBe(
      'g.yaml: the default tokenTtl 12h is shorter than 2 × schedule (6h) + margin (5m) = 12h5m: when one scheduled run fails, these tokens expire before they are replaced (arn:aws:iam::111122223333:role/a). Raise it to at least 12h5m.',
    );
  });

  it('names three principals and counts the rest', () => {
    const config = parseGrantsSync(grants('12h', [['a', 'b', 'c', 'd', 'e'], '1h']), 'g.yaml');
    const [only] = shortLifetimes(config, HOURLY);
    expect(describeShortLifetime('g.yaml', only as never, HOURLY)).toBe(
      'g.yaml:11:10: ttl 1h is shorter than 2 × schedule (1h) + margin (5m) = 2h5m: when one scheduled run fails, these tokens expire before they are replaced (arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:role/b, arn:aws:iam::111122223333:role/c and 2 more). Raise it to at least 2h5m.',
    );
  });
});

describe('readSchedule', () => {
  const problem = (which: string, message: string) => new Error(`${which} ${message}`);
  it.each([
    [undefined, undefined, undefined],
    ['1h', undefined, { periodSeconds: 3600, marginSeconds: 300 }],
    ['30m', '15m', { periodSeconds: 1800, marginSeconds: 900 }],
  ])('%s with margin %s', (period, margin, expected) => {
    expect(readSchedule(period, margin, problem)).toEqual(expected);
  });
  it.each([
    ['90s', undefined, 'period "90s" is not a duration of whole minutes like 1h or 30m'],
    ['hourly', undefined, 'period "hourly" is not a duration of whole minutes like 1h or 30m'],
    ['1h', 'soon', 'margin "soon" is not a duration like 5m'],
    [undefined, '5m', 'margin is only used with a schedule period'],
  ])('refuses %s with margin %s', (period, margin, message) => {
    expect(() => readSchedule(period, margin, problem)).toThrow(message);
  });
});

describe('a mint run that knows the schedule', () => {
  const warnings: { message: string; attributes: Record<string, unknown> | undefined }[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (message, attributes) => warnings.push({ message, attributes }),
    error() {},
  };
  beforeEach(() => {
    warnings.length = 0;
  });

  async function run(text: string, schedule: Schedule | undefined) {
    const metrics = new RecordingMetrics();
    const result = await mint({
      config: new MemoryConfig(text),
      store: new MemoryStore(),
      signer: fixedSigner,
      logger,
      metrics,
      clock: () => FIXED_NOW,
      ...(schedule ? { schedule } : {}),
    });
    return { result, metrics: metrics.calls };
  }

  it('still mints, warns once per short ttl (where, whom) and counts the principals', async () => {
    const { result, metrics } = await run(
      grants('12h', [['a', 'b'], '1h'], [['c'], undefined]),
      HOURLY,
    );
    expect(result.tokens).toHaveLength(3);
    expect(warnings).toEqual([
      {
        message: 'token lifetime shorter than two schedule periods plus the margin',
        attributes: {
          problem:
            'mem://grants.yaml:8:10: ttl 1h is shorter than 2 × schedule (1h) + margin (5m) = 2h5m: when one scheduled run fails, these tokens expire before they are replaced (arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:role/b). Raise it to at least 2h5m.',
          ttl: '1h',
          needed: '2h5m',
          principals: ['arn:aws:iam::111122223333:role/a', 'arn:aws:iam::111122223333:role/b'],
        },
      },
    ]);
    expect(metrics).toContain('count ShortLifetimes 2');
  });

  it('publishes ShortLifetimes 0 when every lifetime is long enough (the alarm recovers)', async () => {
    const { metrics } = await run(grants('12h', [['a'], '3h']), HOURLY);
    expect(warnings).toEqual([]);
    expect(metrics).toContain('count ShortLifetimes 0');
  });

  it('without a schedule checks nothing and publishes no ShortLifetimes', async () => {
    const { metrics } = await run(grants('12h', [['a'], '1h']), undefined);
    expect(warnings).toEqual([]);
    expect(metrics.filter((m) => m.includes('ShortLifetimes'))).toEqual([]);
  });
});

describe('regtoken validate and plan with --schedule', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('lifetime-');
  });
  afterEach(async () => removeTempDir(dir));

  const warning =
    'warning: examples/grants.yaml:18:10: ttl 1h is shorter than 2 × schedule (1h) + margin (5m) = 2h5m: when one scheduled run fails, these tokens expire before they are replaced (arn:aws:iam::111122223333:role/web/ec2-web, arn:aws:iam::444455556666:user/alice). Raise it to at least 2h5m.\n';

  it('validate: valid, exit 0, one warning line at the ttl', async () => {
    expect(await cli(['validate', '--schedule', '1h', 'examples/grants.yaml'])).toEqual({
      code: 0,
      stdout: 'examples/grants.yaml: valid (3 grants, 4 principals)\n',
      stderr: warning,
    });
  });

  it('validate: the schedule from REGTOKEN_SCHEDULE, the margin from --margin', async () => {
    const r = await cli(['validate', '--margin', '1h', 'examples/grants.yaml'], {
      REGTOKEN_SCHEDULE: '30m',
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('ttl 1h is shorter than 2 × schedule (30m) + margin (1h) = 2h:');
  });

  it('validate: no warning without a schedule, or when lifetimes are long enough', async () => {
    expect((await cli(['validate', 'examples/grants.yaml'])).stderr).toBe('');
    const fine = join(dir, 'fine.yaml');
    writeFileSync(fine, grants('12h', [['a'], '2h5m']));
    expect((await cli(['validate', '--schedule', '1h', fine])).stderr).toBe('');
  });

  it('plan: the warnings on stderr, the plan on stdout, exit 0', async () => {
    const r = await cli(['plan', '--schedule', '1h', '--to', 'examples/grants.yaml']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(warning);
    expect(r.stdout).toContain('Principals: 4 added');
  });

  it.each([
    [
      ['validate', '--schedule', '90s', 'examples/grants.yaml'],
      {},
      'regtoken: --schedule "90s" is not a duration of whole minutes like 1h or 30m',
    ],
    [
      ['plan', '--to', 'examples/grants.yaml'],
      { REGTOKEN_SCHEDULE: 'daily' },
      'regtoken: REGTOKEN_SCHEDULE "daily" is not a duration of whole minutes like 1h or 30m',
    ],
    [
      ['validate', '--margin', '5m', 'examples/grants.yaml'],
      {},
      'regtoken: --margin is only used with a schedule period',
    ],
  ])('usage error, exit 2, one line: %j', async (args, env, line) => {
    const r = await cli(args, env);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(line);
    expect(r.stdout).toBe('');
  });
});
