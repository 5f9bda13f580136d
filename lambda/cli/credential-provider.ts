/**
 * `regtoken-credential-provider`: a kubelet image credential provider
 * (`credentialprovider.kubelet.k8s.io/v1`). The kubelet runs it for images whose host matches
 * `matchImages` in its CredentialProviderConfig, with a `CredentialProviderRequest` on stdin,
 * and passes the answer's `auth` to the container runtime's PullImage, which logs in at the
 * registry's token endpoint with it.
 *
 * On a node it reads the token of the node's instance role (the AWS SDK's default chain), from
 * the location REGTOKEN_FROM / REGTOKEN_REGISTRY (the config's `env`) or the user config file
 * give; the region comes from AWS_REGION, the profile, or the instance metadata. Malformed or
 * unsupported requests (another `apiVersion`, no image, an image of another registry) are
 * refused with one line on stderr and exit 1; the kubelet then pulls without credentials.
 */

import pkg from '../../package.json' with { type: 'json' };
import {
  imageHost,
  KUBELET_API_VERSION,
  providerRequestImage,
  providerResponse,
} from '../core/credential-protocols.js';
import { routeFor, servedHosts } from '../core/routes.js';
import { excerpt, quote } from '../core/text.js';
import { InputError, UsageError } from '../errors.js';
import { reportError } from './io.js';
import { type Program, runAsProcess, tokenFor } from './program.js';
import { routeSettings } from './settings.js';

const USAGE = `Usage: regtoken-credential-provider < CredentialProviderRequest

A kubelet image credential provider (${KUBELET_API_VERSION}) for regtoken's registry
(docs/client.md, examples/kubernetes/). The kubelet runs it: a CredentialProviderRequest on
stdin, a CredentialProviderResponse on stdout (cacheKeyType Registry, cacheDuration half the
token's remaining lifetime, auth {HOST: {username: regtoken, password: TOKEN}}).
Settings: REGTOKEN_FROM and REGTOKEN_REGISTRY (the provider's env in the kubelet's
CredentialProviderConfig), or "registries" in $XDG_CONFIG_HOME/regtoken/config.json.`;

/** Runs the provider (no arguments; the request on stdin); returns the exit code. */
export const runProvider: Program = async (argv, ctx) => {
  try {
    const [arg] = argv;
    if (arg === '--help' || arg === '-h') {
      ctx.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (arg === '--version' || arg === '-v') {
      ctx.stdout.write(`regtoken-credential-provider (regtoken) ${pkg.version}\n`);
      return 0;
    }
    if (argv.length > 0)
      throw new UsageError(
        `regtoken-credential-provider takes no arguments (got ${quote(arg ?? '')}): remove args from its entry in the kubelet's CredentialProviderConfig`,
      );
    const image = providerRequestImage(await ctx.stdin());
    const host = imageHost(image);
    const settings = await routeSettings(ctx);
    const route = routeFor(host, settings);
    if (!route) {
      const served = servedHosts(settings);
      throw new InputError(
        `image ${quote(image)} is on registry ${excerpt(host)}, which regtoken does not serve (${
          served.length
            ? `it serves ${served.join(', ')}`
            : 'no registry is set: add REGTOKEN_REGISTRY and REGTOKEN_FROM to its env'
        }): match only those hosts in matchImages of the kubelet's CredentialProviderConfig`,
      );
    }
    const { token, remainingSeconds } = await tokenFor(route, ctx);
    ctx.stdout.write(providerResponse(route.host, token, remainingSeconds));
    return 0;
  } catch (err) {
    return reportError(ctx, err, USAGE.split('\n')[0]);
  }
};

/** Entry point of the `regtoken-credential-provider` binary. */
export function main(): Promise<void> {
  return runAsProcess(runProvider);
}
