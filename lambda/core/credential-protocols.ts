/**
 * The two protocols through which container clients ask for credentials, as pure functions:
 *
 * - The **Docker credential-helper protocol** (docker/docker-credential-helpers): the action
 *   is the only argument; `get` and `erase` read a server URL on stdin, `store` reads
 *   `{"ServerURL","Username","Secret"}`; `get` answers that JSON on stdout, `list` a map of
 *   server URL to username. "No credentials" is exactly `credentials not found in native
 *   keychain` on stdout with exit status 1: Docker and containers/image compare that text and
 *   then go on without credentials. Any other failure is another exit-1 answer, which they
 *   report as an error.
 * - The kubelet's **image credential provider** exec protocol,
 *   `credentialprovider.kubelet.k8s.io/v1`: a `CredentialProviderRequest` (`image`) on stdin,
 *   a `CredentialProviderResponse` (`cacheKeyType`, `cacheDuration`, `auth`) on stdout.
 *
 * Both answer with username `regtoken` and the token as the password: the registry's token
 * endpoint (regtoken realm) takes it in exchange for itself.
 */

import { InputError, UsageError } from '../errors.js';
import { excerpt, quote } from './text.js';
import { normaliseRegistryHost } from './token-check.js';

/** The username every answer carries; the token endpoint ignores it. */
export const REGISTRY_USERNAME = 'regtoken';

/** What Docker and containers/image take as "no credentials here" (exit status 1). */
export const CREDENTIALS_NOT_FOUND = 'credentials not found in native keychain';

/** The Docker credential-helper actions. */
export const HELPER_ACTIONS = ['get', 'store', 'erase', 'list', 'version'] as const;
export type HelperAction = (typeof HELPER_ACTIONS)[number];

/** Checks the action argument; throws UsageError naming the accepted ones. */
export function helperAction(arg: string | undefined): HelperAction {
  if (arg !== undefined && (HELPER_ACTIONS as readonly string[]).includes(arg))
    return arg as HelperAction;
  throw new UsageError(
    arg === undefined
      ? `docker-credential-regtoken needs an action: ${HELPER_ACTIONS.join(', ')}`
      : `unknown action ${quote(arg)}: docker-credential-regtoken takes ${HELPER_ACTIONS.join(', ')}`,
  );
}

/** The server URL of a `get` or `erase` request (stdin, trimmed); throws when there is none. */
export function serverUrl(stdin: string): string {
  const url = stdin.trim();
  // The text the Docker helpers use for this case, so clients recognise it.
  if (url === '') throw new InputError('no credentials server URL');
  return url;
}

/** The `get` answer: the server URL as asked, username `regtoken`, the token as the secret. */
export function getAnswer(server: string, token: string): string {
  return `${JSON.stringify({ ServerURL: server, Username: REGISTRY_USERNAME, Secret: token })}\n`;
}

/** The `list` answer: every served host with its username. */
export function listAnswer(hosts: readonly string[]): string {
  return `${JSON.stringify(Object.fromEntries(hosts.map((h) => [h, REGISTRY_USERNAME])))}\n`;
}

/** The kubelet's credential provider API version this provider speaks. */
export const KUBELET_API_VERSION = 'credentialprovider.kubelet.k8s.io/v1';

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** A request field as a message shows it: quoted when a string, else its JSON (`null`, `3`). */
const shown = (v: unknown) =>
  typeof v === 'string' ? quote(v) : excerpt(JSON.stringify(v ?? null) ?? 'null');

/**
 * The image of a `CredentialProviderRequest`. Throws InputError for anything the kubelet would
 * not send: not JSON, another `apiVersion` or `kind`, no image. Unknown fields are ignored:
 * newer kubelets add some (service account tokens) that this provider does not use.
 */
export function providerRequestImage(stdin: string): string {
  let request: unknown;
  try {
    request = JSON.parse(stdin);
  } catch {
    throw new InputError(
      'stdin is not a CredentialProviderRequest (not JSON): regtoken-credential-provider is run by the kubelet (--image-credential-provider-config)',
    );
  }
  if (!isObject(request))
    throw new InputError('stdin is not a CredentialProviderRequest (not a JSON object)');
  const { apiVersion, kind, image } = request;
  if (apiVersion !== KUBELET_API_VERSION)
    throw new InputError(
      `unsupported apiVersion ${shown(apiVersion)}: regtoken-credential-provider speaks ${KUBELET_API_VERSION}; set apiVersion: ${KUBELET_API_VERSION} for it in the kubelet's CredentialProviderConfig`,
    );
  if (kind !== 'CredentialProviderRequest')
    throw new InputError(
      `kind ${shown(kind)} is not CredentialProviderRequest: regtoken-credential-provider answers only those`,
    );
  if (typeof image !== 'string' || image.trim() === '')
    throw new InputError('the CredentialProviderRequest has no image');
  return image.trim();
}

/**
 * The registry host of an image reference, as Docker and the kubelet read it: the first path
 * component when it looks like a host (has a `.` or a `:`, or is `localhost`), else Docker Hub.
 */
export function imageHost(image: string): string {
  const slash = image.indexOf('/');
  const first = slash < 0 ? '' : image.slice(0, slash);
  if (first === 'localhost' || first.includes('.') || first.includes(':'))
    return normaliseRegistryHost(first);
  return 'docker.io';
}

/** A whole number of seconds as Go's time.Duration prints it (`5h59m30s`, `4m0s`, `45s`). */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${m}m${rest}s`;
  if (m > 0) return `${m}m${rest}s`;
  return `${rest}s`;
}

/**
 * The `CredentialProviderResponse` for a host: keyed by registry (one answer serves every
 * image there), cached by the kubelet for half the token's remaining lifetime so it asks
 * again while the token is still good.
 */
export function providerResponse(host: string, token: string, remainingSeconds: number): string {
  return `${JSON.stringify({
    apiVersion: KUBELET_API_VERSION,
    kind: 'CredentialProviderResponse',
    cacheKeyType: 'Registry',
    cacheDuration: goDuration(remainingSeconds / 2),
    auth: { [host]: { username: REGISTRY_USERNAME, password: token } },
  })}\n`;
}
