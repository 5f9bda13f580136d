/**
 * The settings of the client side, read once per command: the user config file, and from it,
 * the flags and the environment, where the token is, which registry is expected and which AWS
 * profile reads it (lambda/core/client-settings.ts and lambda/core/routes.ts give the order).
 */

import { homedir } from 'node:os';
import { readUserConfig, userConfigPath } from '../adapters/user-config.js';
import { pick, type Sourced, type UserConfig } from '../core/client-settings.js';
import type { RouteSettings } from '../core/routes.js';
import { normaliseRegistryHost } from '../core/token-check.js';
import { UsageError } from '../errors.js';
import { type ParsedArgs, str } from './command.js';
import type { CliContext } from './io.js';

/** Where the user config file is, and what it says. */
export interface UserConfigFile {
  readonly home: string;
  readonly configPath: string;
  readonly file: UserConfig;
}

/** The settings of `login`, `token` and `whoami`. */
export interface ClientSettings extends UserConfigFile {
  readonly from: Sourced;
  readonly registry: Sourced | undefined;
  /** The AWS profile: `--profile`, else the expected registry's `profile` in the file. */
  readonly profile: string | undefined;
}

/** How the config file is named in help texts. */
export const CONFIG_FILE_HELP =
  '$XDG_CONFIG_HOME/regtoken/config.json (default ~/.config/regtoken/config.json)';

/** Reads the user config file (an error names it when it is unreadable or malformed). */
export async function userConfigFile(ctx: CliContext): Promise<UserConfigFile> {
  const home = ctx.env.home ?? homedir();
  const configPath = userConfigPath({ xdgConfigHome: ctx.env.xdgConfigHome, home });
  return { home, configPath, file: await readUserConfig(configPath) };
}

/** What the credential helpers route hosts with: the file, REGTOKEN_FROM, REGTOKEN_REGISTRY. */
export async function routeSettings(ctx: CliContext): Promise<RouteSettings> {
  const { configPath, file } = await userConfigFile(ctx);
  return { file, filePath: configPath, envFrom: ctx.env.from, envRegistry: ctx.env.registry };
}

/**
 * The client commands' settings. The token location is the first of `--from`, the expected
 * registry's `registries[HOST].from`, `REGTOKEN_FROM` and the file's `from`: the same order as
 * the credential helper's (lambda/core/routes.ts).
 */
export async function clientSettings(args: ParsedArgs, ctx: CliContext): Promise<ClientSettings> {
  const config = await userConfigFile(ctx);
  const { configPath, file } = config;
  const registry = pick(
    [str(args, 'registry'), '--registry'],
    [ctx.env.registry, 'REGTOKEN_REGISTRY'],
    [file.registry, configPath],
  );
  const host = registry ? normaliseRegistryHost(registry.value) : undefined;
  const route = host === undefined ? undefined : file.registries?.[host];
  const from = pick(
    [str(args, 'from'), '--from'],
    [route?.from, `${configPath} (registries["${host}"].from)`],
    [ctx.env.from, 'REGTOKEN_FROM'],
    [file.from, configPath],
  );
  if (!from)
    throw new UsageError(
      `no token location: pass --from s3://TOKEN_BUCKET[/PREFIX], set REGTOKEN_FROM, or put {"from": "s3://TOKEN_BUCKET"} in ${configPath}`,
    );
  return { ...config, from, registry, profile: str(args, 'profile') ?? route?.profile };
}
