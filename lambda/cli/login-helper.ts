/**
 * `regtoken login --helper`: sets Docker up to ask `docker-credential-regtoken` for the
 * registry's credentials instead of holding a token it cannot renew.
 *
 * 1. Fetches the caller's token with the credential helper's own code path (which checks it and
 *    puts it in the helper's cache, so the first pull is answered from there);
 * 2. writes `credHelpers[HOST] = "regtoken"` into the Docker config (merged like `login`);
 * 3. routes HOST to its token location and profile in the user config file, unless the file
 *    already does: Docker runs the helper with whatever environment `docker` has, so the
 *    location must not depend on a flag or a variable of this shell.
 */

import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { DockerConfigFile, dockerConfigPath } from '../adapters/docker-config.js';
import { TokenCache, tokenCacheDir } from '../adapters/token-cache.js';
import { readUserConfigText, writeUserConfig } from '../adapters/user-config.js';
import { parseUserConfig, withRoute } from '../core/client-settings.js';
import { HELPER_NAME, setCredentialHelper } from '../core/docker-config.js';
import { routeFor } from '../core/routes.js';
import { humanDuration, normaliseRegistryHost, utc } from '../core/token-check.js';
import { awsSide, fetchCredentials } from '../credentials.js';
import { type CliContext, warn, warnSkew } from './io.js';
import type { ClientSettings } from './settings.js';

const HELPER_BIN = `docker-credential-${HELPER_NAME}`;

/** True when an executable `name` is in one of PATH's directories. */
async function onPath(name: string, path: string | undefined): Promise<boolean> {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    try {
      await access(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

/** Runs `login --helper` with the client settings; returns the exit code. */
export async function loginHelper(settings: ClientSettings, ctx: CliContext): Promise<number> {
  const clock = ctx.clock ?? (() => new Date());
  const { from, profile, registry } = settings;
  const served = await fetchCredentials(
    { from, profile },
    {
      cache: new TokenCache(
        tokenCacheDir({ xdgCacheHome: ctx.env.xdgCacheHome, home: settings.home }),
      ),
      clock,
      aws: awsSide({ from, profile }, ctx.env.aws, clock),
    },
    { expected: registry },
  );
  const host = served.host;

  const docker = new DockerConfigFile(
    dockerConfigPath({ dockerConfig: ctx.env.dockerConfig, home: settings.home }),
  );
  const update = setCredentialHelper(await docker.read(), host, docker.path);
  if (update.changed) await docker.write(update.text);

  // Re-read the file as it is now: it is the helper's only source that this shell cannot change.
  const text = await readUserConfigText(settings.configPath);
  const file = text === undefined ? {} : parseUserConfig(text, settings.configPath);
  const known = routeFor(host, {
    file,
    filePath: settings.configPath,
    envFrom: undefined,
    envRegistry: undefined,
  });
  const routed = known?.from.value === from.value && known.profile === profile;
  const next = routed ? undefined : withRoute(text, host, { from: from.value, profile });
  if (next !== undefined) await writeUserConfig(settings.configPath, next);

  for (const w of [...update.warnings, ...served.warnings]) warn(ctx, w);
  warnSkew(ctx, served.skewSeconds);
  if (!(await onPath(HELPER_BIN, ctx.env.path)))
    warn(
      ctx,
      `${HELPER_BIN} is not on PATH, so Docker cannot run it: install regtoken globally (npm install -g) or add its bin directory to PATH`,
    );
  ctx.stdout.write(
    `Docker asks ${HELPER_BIN} for ${host} from now on (as ${served.principal}); ` +
      `the current token expires ${utc(served.expiresAt)} (in ${humanDuration(served.remainingSeconds)}) and is renewed by itself.\n` +
      `Docker config: ${docker.path}${update.changed ? '' : ' (already up to date)'}\n` +
      `regtoken config: ${settings.configPath}${next === undefined ? ' (already routes this registry)' : ` (registries["${normaliseRegistryHost(host)}"])`}\n`,
  );
  return 0;
}
