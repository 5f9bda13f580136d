/**
 * The client subcommands: login, token, whoami. They read flags and settings, run the client
 * code path (lambda/client.ts) and print the outcome. The token itself is printed by `token`
 * only, on stdout; no message, warning or error ever contains it.
 */

import { DockerConfigFile, dockerConfigPath } from '../adapters/docker-config.js';
import type { ClientDeps, Fetched, Identified } from '../client.js';
import { setRegistryToken } from '../core/docker-config.js';
import { describeOwner } from '../core/identity.js';
import { accessRows, humanDuration, type TokenTimes, utc } from '../core/token-check.js';
import {
  AccessDeniedError,
  ClockSkewError,
  NoTokenError,
  type RegtokenError,
  TokenExpiredError,
} from '../errors.js';
import type { Command, ParsedArgs } from './command.js';
import { type CliContext, table, warn, warnSkew } from './io.js';
import { loginHelper } from './login-helper.js';
import { type ClientSettings, CONFIG_FILE_HELP, clientSettings } from './settings.js';

/**
 * The client code path and its AWS clients. Loaded when a client command runs, so that the
 * other commands (a local mint) never load the AWS SDK.
 */
async function clientFor(
  settings: ClientSettings,
  ctx: CliContext,
): Promise<{ client: typeof import('../client.js'); deps: ClientDeps }> {
  const client = await import('../client.js');
  const deps = client.awsClientDeps(settings.from, ctx.clock ?? (() => new Date()), {
    profile: settings.profile,
  });
  return { client, deps };
}

/** Fetches the caller's token and checks it can be used now: the path login and token share. */
async function usableToken(
  args: ParsedArgs,
  ctx: CliContext,
): Promise<{ fetched: Fetched; times: TokenTimes; settings: ClientSettings }> {
  const settings = await clientSettings(args, ctx);
  const { client, deps } = await clientFor(settings, ctx);
  const { fetched, times } = await client.usableOwnToken(deps, settings.registry);
  return { fetched, times, settings };
}

const LOCATION_OPTIONS = `  --from s3://TOKEN_BUCKET[/PREFIX]
                     where the tokens are (env REGTOKEN_FROM; else "from" in the config file)`;
const REGISTRY_OPTION = `  --registry HOST    fail unless the token is for registry HOST (env REGTOKEN_REGISTRY;
                     else "registry" in the config file; default: the registry in the token)
  --profile NAME     read the token with this AWS profile (default: the registry's "profile"
                     in the config file, else the AWS SDK's default chain: AWS_PROFILE, …)`;
const PROFILE_OPTION = `  --profile NAME     read the token with this AWS profile (default: AWS_PROFILE, …)`;
const IDENTITY_HELP = `Who you are comes from the AWS default credential chain: environment variables, AWS_PROFILE
(including SSO), or an instance profile / task role. A role session uses its role's token.
Config file: ${CONFIG_FILE_HELP}, e.g.
  {"from": "s3://TOKEN_BUCKET", "registry": "registry.example.com",
   "registries": {"registry.staging.example.com": {"from": "s3://STAGING", "profile": "staging"}}}`;

export const login: Command = {
  name: 'login',
  summary: 'set up Docker for the registry: your token in its config, or --helper',
  help: `Usage: regtoken login [--helper] [--from s3://TOKEN_BUCKET[/PREFIX]] [--registry HOST]
                      [--profile NAME]

Fetches your own registry token with your AWS credentials, checks that it is valid, and writes
it into the Docker config as auths[HOST].registrytoken, where Docker Engine and BuildKit find
it. HOST is the registry named in the token. Every other entry, credsStore and credHelpers are
kept; stored credentials for HOST itself are replaced (and reported). The file,
$DOCKER_CONFIG/config.json (default ~/.docker/config.json), is replaced atomically with mode
0600; on any error it is left as it was. Prints when the token expires: run login again before
then (docs/client.md shows a systemd timer for servers).

With --helper it writes credHelpers[HOST] = "regtoken" instead: Docker then asks
docker-credential-regtoken for a fresh token on every pull and push, so there is nothing to
renew. It needs the registry's token endpoint (regtoken realm). HOST's token location and
profile go into the config file (registries), where the helper finds them, and the token into
the helper's cache. Run it again to pick up a new grant at once.

${IDENTITY_HELP}

Options:
  --helper           use the credential helper docker-credential-regtoken (credHelpers)
${LOCATION_OPTIONS}
${REGISTRY_OPTION}

Exit status: 0 logged in, 1 error (no credentials, access denied, no token, expired token,
clock skew, other registry, unreadable Docker config), 2 usage error.`,
  options: {
    from: { type: 'string' },
    registry: { type: 'string' },
    profile: { type: 'string' },
    helper: { type: 'boolean' },
  },
  positionals: false,
  async run(args, ctx) {
    if (args.values.helper) return loginHelper(await clientSettings(args, ctx), ctx);
    const { fetched, times, settings } = await usableToken(args, ctx);
    const { document } = fetched.token;
    const file = new DockerConfigFile(
      dockerConfigPath({ dockerConfig: ctx.env.dockerConfig, home: settings.home }),
    );
    const update = setRegistryToken(
      await file.read(),
      document.registry,
      document.token,
      file.path,
    );
    if (update.changed) await file.write(update.text);
    for (const w of update.warnings) warn(ctx, w);
    warnSkew(ctx, times.skewSeconds);
    ctx.stdout.write(
      `Logged in to ${document.registry} as ${document.principal}; the token expires ${utc(
        Math.floor(times.expiresAt.getTime() / 1000),
      )} (in ${humanDuration(times.remainingSeconds)}).\n` +
        `Docker config: ${file.path}${update.changed ? '' : ' (already up to date)'}\n`,
    );
    return 0;
  },
};

export const tokenCommand: Command = {
  name: 'token',
  summary: 'print your own registry token, for skopeo --registry-token, crane and scripts',
  help: `Usage: regtoken token [--from s3://TOKEN_BUCKET[/PREFIX]] [--registry HOST] [--profile NAME]

Prints your own registry token, and nothing else, on stdout — after the same checks as login
(not expired, clock in sync, the expected registry). For tools that take a token:
  skopeo copy --dest-registry-token "$(regtoken token)" oci:image docker://HOST/REPO:TAG
Keep it out of logs and shell history: it is a bearer credential until it expires.

${IDENTITY_HELP}

Options:
${LOCATION_OPTIONS}
${REGISTRY_OPTION}

Exit status: 0 token printed, 1 error (as for login), 2 usage error.`,
  options: { from: { type: 'string' }, registry: { type: 'string' }, profile: { type: 'string' } },
  positionals: false,
  async run(args, ctx) {
    const { fetched, times } = await usableToken(args, ctx);
    warnSkew(ctx, times.skewSeconds);
    ctx.stdout.write(`${fetched.token.document.token}\n`);
    return 0;
  },
};

/** Errors whoami reports after showing what it found, rather than instead of it. */
const REPORTABLE = [NoTokenError, AccessDeniedError, TokenExpiredError, ClockSkewError];

function whoamiReport(
  who: Identified,
  fetched: Fetched | undefined,
  times: TokenTimes | undefined,
  problem: RegtokenError | undefined,
  clock: () => Date,
) {
  const doc = fetched?.token.document;
  const exp = fetched?.token.claims.exp;
  const now = Math.floor(clock().getTime() / 1000);
  return {
    caller: who.caller.arn,
    // A role session does not show its role's path: the full ARN is known from the document.
    principal: doc?.principal ?? who.caller.principalArn ?? null,
    tokenKey: who.key,
    tokenUrl: who.url,
    registry: doc?.registry ?? null,
    issuedAt: doc?.issuedAt ?? null,
    expiresAt: exp === undefined ? null : new Date(exp * 1000).toISOString(),
    expiresInSeconds: times ? times.remainingSeconds : exp === undefined ? null : exp - now,
    clockSkewSeconds: times?.skewSeconds ?? null,
    status: problem ? problem.code.toLowerCase().replace(/_/g, '-') : 'valid',
    access: doc?.access ?? [],
    ...(problem ? { error: { code: problem.code, message: problem.message } } : {}),
  };
}

export const whoami: Command = {
  name: 'whoami',
  summary: 'show who you are to AWS, where your token is, and its access and expiry',
  help: `Usage: regtoken whoami [--from s3://TOKEN_BUCKET[/PREFIX]] [--profile NAME] [--json]

Shows your caller ARN (STS), the token key it maps to and its URL, and — when the token can be
read — its registry, access and expiry. Never shows the token.

${IDENTITY_HELP}

Options:
${LOCATION_OPTIONS}
${PROFILE_OPTION}
  --json             print {"caller","principal","tokenKey","tokenUrl","registry","issuedAt",
                     "expiresAt","expiresInSeconds","clockSkewSeconds","status","access"}

Exit status: 0 your token is valid, 1 no credentials, no readable token, expired token or
clock skew (what could be found is still shown), 2 usage error.`,
  options: { from: { type: 'string' }, profile: { type: 'string' }, json: { type: 'boolean' } },
  positionals: false,
  async run(args, ctx) {
    const settings = await clientSettings(args, ctx);
    const { client, deps } = await clientFor(settings, ctx);
    const who = await client.identify(deps);
    let fetched: Fetched | undefined;
    let times: TokenTimes | undefined;
    let problem: RegtokenError | undefined;
    try {
      fetched = await client.fetchOwnToken(deps, who);
      times = client.checkUsable(deps, fetched, undefined);
    } catch (err) {
      if (!REPORTABLE.some((cls) => err instanceof cls)) throw err;
      problem = err as RegtokenError;
    }
    const report = whoamiReport(who, fetched, times, problem, deps.clock);
    if (args.values.json) {
      ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const rows: string[][] = [
        ['Caller:', report.caller],
        ['Principal:', report.principal ?? describeOwner(who.caller)],
        ['Token:', report.tokenUrl],
      ];
      if (fetched) {
        const { exp, iat } = fetched.token.claims;
        const left = report.expiresInSeconds ?? 0;
        rows.push(
          ['Registry:', fetched.token.document.registry],
          ...(iat === undefined ? [] : [['Issued:', utc(iat)]]),
          [
            'Expires:',
            `${utc(exp)} (${left > 0 ? `in ${humanDuration(left)}` : `${humanDuration(-left)} ago`})`,
          ],
        );
      }
      ctx.stdout.write(`${table(rows)}\n`);
      if (fetched) {
        const access = accessRows(report.access);
        ctx.stdout.write(
          access.length ? `Access:\n${table(access.map((r) => ['', ...r]))}\n` : 'Access: none\n',
        );
      }
    }
    if (times) warnSkew(ctx, times.skewSeconds);
    if (problem) {
      ctx.stderr.write(`regtoken: ${problem.message}\n`);
      return problem.exitCode;
    }
    return 0;
  },
};

/** The client commands, in the order `regtoken --help` lists them. */
export const CLIENT_COMMANDS: readonly Command[] = [login, tokenCommand, whoami];
