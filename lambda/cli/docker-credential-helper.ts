/**
 * `docker-credential-regtoken`: the Docker credential helper. With
 * `"credHelpers": {"registry.example.com": "regtoken"}` in a Docker config (or a
 * containers/image auth file), Docker and skopeo run it for that host on every pull and push.
 *
 * - `get` (server URL on stdin) answers `{"ServerURL", "Username": "regtoken", "Secret": TOKEN}`
 *   from the cache or a fresh fetch; for a host regtoken does not serve, exactly
 *   `credentials not found in native keychain` and exit 1, Docker's "no credentials".
 * - `store` and `erase` (`docker login`, `docker logout`) succeed and do nothing: there is no
 *   password to keep, and failing them would break those commands for the host.
 * - `list` lists the served hosts; `version` prints the version.
 *
 * Errors are one line on stderr (which Docker shows as it is) and exit 1. The token appears
 * only in the `get` answer.
 */

import pkg from '../../package.json' with { type: 'json' };
import {
  CREDENTIALS_NOT_FOUND,
  getAnswer,
  helperAction,
  listAnswer,
  serverUrl,
} from '../core/credential-protocols.js';
import { routeFor, servedHosts } from '../core/routes.js';
import { UsageError } from '../errors.js';
import { reportError } from './io.js';
import { type Program, type ProgramContext, runAsProcess, tokenFor } from './program.js';
import { routeSettings } from './settings.js';

const USAGE = `Usage: docker-credential-regtoken get|store|erase|list|version

The Docker credential helper of regtoken (docs/client.md). Docker runs it for the hosts of
"credHelpers": {"HOST": "regtoken"} in its config (regtoken login --helper writes that):
  get      a server URL on stdin; prints {"ServerURL","Username","Secret"} with your own
           registry token (cached until 5 minutes before it expires; a cached answer makes no
           AWS call); "${CREDENTIALS_NOT_FOUND}" (exit 1) for a host it does not serve
  store    accepts what docker login stores, and keeps nothing
  erase    accepts docker logout, and erases nothing
  list     the hosts it serves, as {"HOST": "regtoken"}

Hosts and token locations: "registries" in $XDG_CONFIG_HOME/regtoken/config.json (default
~/.config/regtoken/config.json), or REGTOKEN_REGISTRY with REGTOKEN_FROM. The cache is in
$XDG_CACHE_HOME/regtoken (default ~/.cache/regtoken).`;

async function get(ctx: ProgramContext): Promise<number> {
  const server = serverUrl(await ctx.stdin());
  const route = routeFor(server, await routeSettings(ctx));
  if (!route) {
    ctx.stdout.write(`${CREDENTIALS_NOT_FOUND}\n`);
    return 1;
  }
  const { token } = await tokenFor(route, ctx);
  ctx.stdout.write(getAnswer(server, token));
  return 0;
}

/** Runs the helper with `argv` (the action); returns the exit code. */
export const runHelper: Program = async (argv, ctx) => {
  try {
    const [arg] = argv;
    if (arg === '--help' || arg === '-h') {
      ctx.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const action = helperAction(arg === '--version' || arg === '-v' ? 'version' : arg);
    if (argv.length > 1)
      throw new UsageError(
        `docker-credential-regtoken takes one action, not ${argv.length} arguments`,
      );
    switch (action) {
      case 'get':
        return await get(ctx);
      case 'store':
      case 'erase':
        await ctx.stdin();
        return 0;
      case 'list':
        ctx.stdout.write(listAnswer(servedHosts(await routeSettings(ctx))));
        return 0;
      case 'version':
        ctx.stdout.write(`docker-credential-regtoken (regtoken) ${pkg.version}\n`);
        return 0;
    }
  } catch (err) {
    return reportError(ctx, err, USAGE.split('\n')[0]);
  }
};

/** Entry point of the `docker-credential-regtoken` binary. */
export function main(): Promise<void> {
  return runAsProcess(runHelper);
}
