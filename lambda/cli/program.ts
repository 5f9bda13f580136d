/**
 * What the two credential programs share — `docker-credential-regtoken` (Docker's credential
 * helper protocol) and `regtoken-credential-provider` (the kubelet's): a request on stdin, one
 * answer on stdout, notes and errors on stderr; the route of the host asked for; and a token
 * from the cache or the client code path (lambda/credentials.ts).
 */

import { homedir } from 'node:os';
import { TokenCache, tokenCacheDir } from '../adapters/token-cache.js';
import type { Route } from '../core/routes.js';
import { awsSide, type CredentialsDeps, registryCredentials, type Served } from '../credentials.js';
import { quietSdkNotices, readEnv } from '../env.js';
import { type CliContext, escaping, warn, warnSkew } from './io.js';

/** A credential program's context: a CLI context plus its request on stdin. */
export interface ProgramContext extends CliContext {
  /** The whole of stdin. */
  readonly stdin: () => Promise<string>;
}

/** What a credential program runs: its arguments and context, to an exit code. */
export type Program = (argv: readonly string[], ctx: ProgramContext) => Promise<number>;

/** The dependencies of a token request on this machine: the user's cache, the clock, AWS. */
export function credentialsDeps(route: Route, ctx: CliContext): CredentialsDeps {
  const clock = ctx.clock ?? (() => new Date());
  const home = ctx.env.home ?? homedir();
  return {
    cache: new TokenCache(tokenCacheDir({ xdgCacheHome: ctx.env.xdgCacheHome, home })),
    clock,
    aws: awsSide(route, ctx.env.aws, clock),
  };
}

/** The route's token, with its notes (cache problems, clock skew) written to stderr. */
export async function tokenFor(route: Route, ctx: CliContext): Promise<Served> {
  const served = await registryCredentials(route, credentialsDeps(route, ctx));
  for (const w of served.warnings) warn(ctx, w);
  warnSkew(ctx, served.skewSeconds);
  return served;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs `program` as this process: process arguments, streams and environment. */
export async function runAsProcess(program: Program): Promise<void> {
  quietSdkNotices();
  const env = readEnv();
  const color = Boolean(process.stderr.isTTY) && !env.noColor;
  process.exitCode = await program(process.argv.slice(2), {
    stdin: readStdin,
    stdout: { write: (t) => process.stdout.write(t), isTTY: Boolean(process.stdout.isTTY) },
    // Messages may quote what a request or a config file held: no control character gets through.
    stderr: escaping(
      { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY) },
      color,
    ),
    env,
    color,
  });
}
