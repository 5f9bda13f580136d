/**
 * The `regtoken` subcommands that work on grants: validate, mint, plan. Each is a thin layer:
 * read flags, pick adapters, call the core, print the result.
 */

import { parseGrants } from '../core/config.js';
import type { GrantsConfig } from '../core/grants.js';
import {
  describeShortLifetime,
  readSchedule,
  type Schedule,
  shortLifetimes,
} from '../core/lifetime.js';
import { planChanges, renderPlan } from '../core/plan.js';
import { type Logger, noMetrics } from '../core/ports.js';
import { ConfigError, formatIssue, NotFoundError, UsageError } from '../errors.js';
import type { MintResult } from '../mint.js';
import {
  type AwsSide,
  configSource,
  DEFAULT_SIGNING_KEY,
  inventory,
  type RunSettings,
  runMint,
  usesAws,
} from '../run.js';
import { CLIENT_COMMANDS } from './client-commands.js';
import { type Command, type ParsedArgs, str } from './command.js';
import { type CliContext, paint, table } from './io.js';
import { realmCommand } from './realm-command.js';

/** This process's AWS side, made on first use. */
let awsLoaded: Promise<AwsSide> | undefined;

/**
 * The AWS side of a command whose locations include `s3://` or `kms:`, loaded then: a command on
 * local files never loads the AWS SDK (lambda/run.ts).
 */
async function awsFor(
  settings: Partial<Pick<RunSettings, 'config' | 'out' | 'repositories' | 'signingKey'>>,
): Promise<AwsSide | undefined> {
  if (!usesAws(settings)) return undefined;
  awsLoaded ??= import('../run-aws.js').then(({ awsSide }) => awsSide());
  return awsLoaded;
}

/** Logger for CLI runs: warnings and errors as readable lines on stderr, the rest dropped. */
function cliLogger(ctx: CliContext): Logger {
  return {
    debug() {},
    info() {},
    warn(message, attributes) {
      const details = Object.entries(attributes ?? {})
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join(', ');
      ctx.stderr.write(
        `${paint(ctx.color, 'yellow', 'warning:')} ${message}${details ? ` (${details})` : ''}\n`,
      );
    },
    error() {},
  };
}

function printConfigError(err: ConfigError, ctx: CliContext): void {
  for (const issue of err.issues) ctx.stderr.write(`${formatIssue(issue)}\n`);
}

/** The lifetime check's flags, shared by validate and plan. */
const SCHEDULE_OPTIONS = {
  schedule: { type: 'string' },
  margin: { type: 'string' },
} as const;

const SCHEDULE_HELP = `  --schedule DURATION    the deployment's minting schedule (stack setting schedule, default
                         1h; env REGTOKEN_SCHEDULE): warn about every token lifetime shorter
                         than 2 × schedule + margin, which would expire before its
                         replacement when one scheduled run fails
  --margin DURATION      the margin in that check (default 5m, or the deployment's function
                         timeout when longer; env REGTOKEN_LIFETIME_MARGIN)`;

/** The schedule from --schedule/--margin, else REGTOKEN_SCHEDULE/REGTOKEN_LIFETIME_MARGIN. */
function scheduleOf(args: ParsedArgs, ctx: CliContext): Schedule | undefined {
  const flagPeriod = str(args, 'schedule');
  const flagMargin = str(args, 'margin');
  return readSchedule(
    flagPeriod ?? ctx.env.schedule,
    flagMargin ?? ctx.env.lifetimeMargin,
    (which, message) => {
      if (which === 'period')
        return new UsageError(`${flagPeriod ? '--schedule' : 'REGTOKEN_SCHEDULE'} ${message}`);
      return new UsageError(`${flagMargin ? '--margin' : 'REGTOKEN_LIFETIME_MARGIN'} ${message}`);
    },
  );
}

/** One warning line per lifetime in `config` too short for `schedule`, on stderr. */
function warnShortLifetimes(config: GrantsConfig, schedule: Schedule | undefined, ctx: CliContext) {
  if (!schedule) return;
  for (const short of shortLifetimes(config, schedule))
    ctx.stderr.write(
      `${paint(ctx.color, 'yellow', 'warning:')} ${describeShortLifetime(config.file, short, schedule)}\n`,
    );
}

export const validate: Command = {
  name: 'validate',
  summary: 'check grants files against the schema and the rules',
  help: `Usage: regtoken validate [--schedule DURATION [--margin DURATION]] FILE...

Checks each grants file and prints every problem as FILE:LINE:COL: MESSAGE. With --schedule,
also warns (on stderr, as FILE:LINE:COL) about token lifetimes too short for the schedule.

Options:
${SCHEDULE_HELP}

Exit status: 0 all valid (warnings included), 1 some file invalid or unreadable, 2 usage error.`,
  options: { ...SCHEDULE_OPTIONS },
  positionals: true,
  async run(args, ctx) {
    if (args.positionals.length === 0) throw new UsageError('validate needs at least one FILE');
    const schedule = scheduleOf(args, ctx);
    let failed = false;
    for (const file of args.positionals) {
      try {
        const { text } = await configSource(file, await awsFor({ config: file })).read();
        const config = await parseGrants(text, file);
        const principals = new Set(config.grants.flatMap((g) => g.principals.map((p) => p.arn)));
        ctx.stdout.write(
          `${file}: valid (${config.grants.length} grants, ${principals.size} principals)\n`,
        );
        warnShortLifetimes(config, schedule, ctx);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        printConfigError(err, ctx);
        failed = true;
      }
    }
    return failed ? 1 : 0;
  },
};

function summarise(result: MintResult, out: string, ctx: CliContext): string {
  const rows = [['PRINCIPAL', 'EXPIRES (UTC)', 'SIZE', 'ACCESS']];
  for (const t of result.tokens) {
    const access = [
      `${t.repositories} ${t.repositories === 1 ? 'repository' : 'repositories'}`,
      ...(t.catalog ? ['catalog'] : []),
    ].join(' + ');
    rows.push([t.principal, t.expiresAt.slice(0, 16).replace('T', ' '), `${t.bytes} B`, access]);
  }
  const lines = [
    `Minted ${result.tokens.length} token${result.tokens.length === 1 ? '' : 's'} into ${out} with ${result.signingKey}.`,
    '',
    table(rows),
    '',
    `Trust bundle (registry auth.token.rootcertbundle): ${result.trustBundle}`,
  ];
  if (result.removed.length)
    lines.push(`Removed ${result.removed.length} token(s) of principals no longer granted.`);
  for (const u of result.unknown)
    lines.push(paint(ctx.color, 'yellow', `SKIPPED ${u.principal}: ${u.reason}`));
  for (const f of result.failed)
    lines.push(paint(ctx.color, 'red', `FAILED ${f.principal}: ${f.reason}`));
  if (result.configVersion) lines.push(`Config version: ${result.configVersion}`);
  return `${lines.join('\n')}\n`;
}

export const mintCommand: Command = {
  name: 'mint',
  summary: "mint every principal's token and publish the trust bundle",
  help: `Usage: regtoken mint --config FILE [--out DIR] [--signing-key PEM] [--repositories PATH] [--json]
       regtoken mint --config s3://CONFIG_BUCKET/grants.yaml --out s3://TOKEN_BUCKET[/PREFIX]
                     --signing-key kms:KEY_ID_OR_ALIAS [--repositories s3://REGISTRY_BUCKET/PREFIX] [--json]

Mints one token per principal in the grants file into OUT/tokens/ACCOUNT/role|user/NAME.json
and publishes the trust bundle for the registry's auth.token.rootcertbundle (a folder:
OUT/trust-bundle.pem and OUT/jwks.json; S3: OUT/trust/bundle.pem and OUT/trust/jwks.json).
Tokens of principals no longer in the file are removed. A grants file that fails validation
writes nothing. Into S3, regtoken also checks principals against IAM, writes the bucket policy
(REGTOKEN_MINTER_ARNS) and holds a run lock; a bucket holds one token store (one PREFIX).

Options:
  --config FILE          grants file or s3:// object (env REGTOKEN_CONFIG)
  --out DIR              token folder or s3:// prefix (env REGTOKEN_OUT; default: out)
  --signing-key PEM      P-256 or RSA private key, or kms:KEY for an AWS KMS key (env
                         REGTOKEN_SIGNING_KEY; default: ${DEFAULT_SIGNING_KEY}, created on first run)
  --repositories PATH    repository inventory for wildcard patterns: a file with one name per
                         line, a registry's filesystem storage root, or s3://BUCKET/PREFIX of a
                         registry's S3 storage (env REGTOKEN_REPOSITORIES)
  --json                 print {"tokens":[{"principal","path","expiresAt"}],"trustBundle":PATH}

Exit status: 0 all tokens minted, 1 invalid input or some principal failed, 2 usage error.`,
  options: {
    config: { type: 'string' },
    out: { type: 'string' },
    'signing-key': { type: 'string' },
    repositories: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: false,
  async run(args, ctx) {
    const config = str(args, 'config') ?? ctx.env.config;
    if (!config) throw new UsageError('mint needs --config FILE (or REGTOKEN_CONFIG)');
    const out = str(args, 'out') ?? ctx.env.out ?? 'out';
    const logger = cliLogger(ctx);
    const settings: RunSettings = {
      config,
      out,
      signingKey: str(args, 'signing-key') ?? ctx.env.signingKey,
      repositories: str(args, 'repositories') ?? ctx.env.repositories,
      minterArns: ctx.env.minterArns,
      trustedKeys: ctx.env.trustedKeys,
      signingMode: ctx.env.signingMode,
      lockLease: ctx.env.lockLease,
    };
    const aws = await awsFor(settings);
    let run: Awaited<ReturnType<typeof runMint>>;
    try {
      run = await runMint(settings, {
        ...(aws ? { aws } : {}),
        logger,
        metrics: noMetrics,
        onKeyCreated: (path) =>
          ctx.stderr.write(
            `Created signing key ${path}. Keep it private and keep it: a new key means a new trust bundle and a registry restart.\n`,
          ),
      });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      printConfigError(err, ctx);
      ctx.stderr.write(`regtoken: ${config} is invalid; nothing was written\n`);
      return 1;
    }
    if (run.skipped) {
      ctx.stdout.write(
        args.values.json
          ? `${JSON.stringify({ skipped: true })}\n`
          : 'Another run holds the lock on this token store; it will pick up any config change. Nothing done.\n',
      );
      return 0;
    }
    const result = run.result;
    if (args.values.json) {
      ctx.stdout.write(
        `${JSON.stringify(
          {
            tokens: result.tokens.map((t) => ({
              principal: t.principal,
              path: t.location,
              expiresAt: t.expiresAt,
            })),
            trustBundle: result.trustBundle,
            jwks: result.jwks,
            removed: result.removed,
            failed: result.failed,
            unknown: result.unknown,
            configVersion: result.configVersion,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      ctx.stdout.write(summarise(result, out, ctx));
    }
    return result.failed.length ? 1 : 0;
  },
};

export const plan: Command = {
  name: 'plan',
  summary: 'show what a change to the grants file changes, per principal',
  help: `Usage: regtoken plan --from OLD.yaml --to NEW.yaml [--repositories PATH]
                     [--schedule DURATION [--margin DURATION]] [--json]

Compares two grants files the way minting reads them (union of grants, push implies pull) and
prints, per principal, the access added (+), removed (-), changed (~) and unchanged (=), and
which principals are new or gone. This is what a reviewer reads on a config pull request.

Options:
  --from FILE|S3URL      the grants file in effect now (a missing file, or a missing object
                         in a bucket that exists, means nothing is deployed yet; a missing
                         bucket or a refused read is an error)
  --to FILE|S3URL        the proposed grants file
  --repositories PATH    expand wildcard patterns against this inventory (default: compare
                         patterns as written)
${SCHEDULE_HELP.replace('warn about', 'warn (on stderr) about')}
  --json                 machine-readable plan

Exit status: 0 plan printed (warnings included), 1 a file is invalid, 2 usage error.`,
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    repositories: { type: 'string' },
    ...SCHEDULE_OPTIONS,
    json: { type: 'boolean' },
  },
  positionals: false,
  async run(args, ctx) {
    const to = str(args, 'to');
    if (!to) throw new UsageError('plan needs --to FILE');
    const schedule = scheduleOf(args, ctx);
    const from = str(args, 'from');
    const load = async (file: string) =>
      parseGrants((await configSource(file, await awsFor({ config: file })).read()).text, file);
    let before: Awaited<ReturnType<typeof load>> | undefined;
    let after: Awaited<ReturnType<typeof load>>;
    try {
      try {
        before = from ? await load(from) : undefined;
      } catch (err) {
        // Nothing deployed yet (first rollout): plan against an empty config, and say so.
        if (!(err instanceof NotFoundError)) throw err;
        ctx.stderr.write(`note: ${err.message}; planning as if nothing were deployed\n`);
      }
      after = await load(to);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      printConfigError(err, ctx);
      return 1;
    }
    const repositories = str(args, 'repositories');
    const names = repositories
      ? await inventory(repositories, await awsFor({ repositories })).list()
      : undefined;
    warnShortLifetimes(after, schedule, ctx);
    const result = planChanges(before, after, names);
    ctx.stdout.write(
      args.values.json ? `${JSON.stringify(result, null, 2)}\n` : renderPlan(result),
    );
    return 0;
  },
};

export const COMMANDS: readonly Command[] = [
  validate,
  mintCommand,
  plan,
  ...CLIENT_COMMANDS,
  realmCommand,
];
