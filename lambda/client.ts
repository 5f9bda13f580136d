/**
 * The client side, one code path for `regtoken login`, `token` and `whoami`: find out who the
 * caller is (STS), compute the key of its own token, read that token document with the
 * caller's credentials, and check it before anything uses it. The commands differ only in what
 * they do with the result (write the Docker config, print the token, describe it).
 */

import { S3Client } from '@aws-sdk/client-s3';
import { AwsClients, MAX_ATTEMPTS } from './adapters/aws.js';
import { type OwnTokenRead, S3OwnTokenSource } from './adapters/s3/own-token.js';
import { isS3Url, parseS3Url } from './adapters/s3/shared.js';
import { StsCallerIdentity } from './adapters/sts.js';
import type { Sourced } from './core/client-settings.js';
import { type Caller, callerFromArn, callerTokenKey, describeOwner } from './core/identity.js';
import { quote } from './core/text.js';
import {
  checkRegistry,
  checkTimes,
  type OwnToken,
  parseTokenDocument,
  type TokenTimes,
} from './core/token-check.js';
import { AccessDeniedError, NoTokenError, UnsupportedIdentityError, UsageError } from './errors.js';

/** Who is asking. */
export interface IdentitySource {
  callerArn(): Promise<string>;
}

/** Where the caller's token document is read from. */
export interface OwnTokenSource {
  /** The URL of a key, for messages. */
  locate(key: string): string;
  read(key: string): Promise<OwnTokenRead>;
}

/** What the client commands need; tests pass in-memory ones. */
export interface ClientDeps {
  readonly identity: IdentitySource;
  readonly source: OwnTokenSource;
  /** This machine's clock. */
  readonly clock: () => Date;
}

/** The caller and where its token is. */
export interface Identified {
  readonly caller: Caller;
  /** `tokens/ACCOUNT/role|user/NAME.json`, relative to the token location. */
  readonly key: string;
  /** The full `s3://` URL of the token document. */
  readonly url: string;
}

/** The caller's token document, read and parsed (not yet checked for time or registry). */
export interface Fetched extends Identified {
  readonly token: OwnToken;
  /** AWS's clock when the document was read (the answer's Date header). */
  readonly awsDate: Date | undefined;
}

/** Asks STS who the caller is; fails for identities that own no token (root, federated users). */
export async function identify(deps: ClientDeps): Promise<Identified> {
  const arn = await deps.identity.callerArn();
  const parsed = callerFromArn(arn);
  if (!parsed.ok) throw new UnsupportedIdentityError(parsed.reason);
  const key = callerTokenKey(parsed.value);
  return { caller: parsed.value, key, url: deps.source.locate(key) };
}

/** Reads the caller's token document. Throws NoTokenError or AccessDeniedError with advice. */
export async function fetchOwnToken(deps: ClientDeps, who: Identified): Promise<Fetched> {
  const { caller, key, url } = who;
  const owner = describeOwner(caller);
  const read = await deps.source.read(key);
  if (read.kind === 'missing')
    throw new NoTokenError(
      `no token for ${caller.arn} at ${url} yet: ${owner} is not in the grants file, or the minter has not run since it was added`,
    );
  if (read.kind === 'denied')
    throw new AccessDeniedError(
      `access denied reading ${url} as ${caller.arn}: ${owner} has no token there yet (not in the grants file, or not minted yet), or its IAM policy does not allow s3:GetObject on that key; ask the registry administrators`,
    );
  return { ...who, token: parseTokenDocument(read.text, url, caller), awsDate: read.awsDate };
}

/**
 * Checks that a fetched token can be used now, for the expected registry (if any). Throws
 * UnknownRegistryError, ClockSkewError or TokenExpiredError.
 */
export function checkUsable(
  deps: ClientDeps,
  fetched: Fetched,
  registry: Sourced | undefined,
): TokenTimes {
  checkRegistry(fetched.token, registry, fetched.url);
  return checkTimes(fetched.token, { local: deps.clock(), aws: fetched.awsDate }, fetched.url);
}

/**
 * The one path from "who am I" to a token that can be used now: asks STS who the caller is,
 * reads the caller's own token document and checks it (owner, registry when `registry` is
 * given, times). `regtoken login` and `token`, the Docker credential helper and the kubelet
 * credential provider all get their token here.
 */
export async function usableOwnToken(
  deps: ClientDeps,
  registry: Sourced | undefined,
): Promise<{ fetched: Fetched; times: TokenTimes }> {
  const fetched = await fetchOwnToken(deps, await identify(deps));
  return { fetched, times: checkUsable(deps, fetched, registry) };
}

/** {@link ClientDeps} on AWS, plus the access key id of the credentials they resolved. */
export interface AwsClientDeps extends ClientDeps {
  /** Resolves the credentials (as the calls would) and returns their access key id. */
  credentialKeyId(): Promise<string>;
}

/**
 * Client dependencies for a token location `s3://TOKEN_BUCKET[/PREFIX]`, using the AWS default
 * credential chain, or the named AWS `profile`. The S3 client follows region redirects: the
 * token bucket may live in another region than the caller's default one.
 */
export function awsClientDeps(
  from: Sourced,
  clock: () => Date,
  options: { profile?: string | undefined } = {},
): AwsClientDeps {
  if (!isS3Url(from.value))
    throw new UsageError(
      `${from.source}: ${quote(from.value)} is not a token location (expected s3://TOKEN_BUCKET[/PREFIX])`,
    );
  const at = parseS3Url(from.value, 'prefix');
  const aws = new AwsClients({ profile: options.profile });
  const s3 = new S3Client({
    maxAttempts: MAX_ATTEMPTS,
    followRegionRedirects: true,
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    // One resolution of credentials and region for both clients: an SSO or assume-role
    // profile costs one AWS call to resolve, not two, and the instance metadata one visit.
    credentials: aws.sts.config.credentials,
    region: aws.sts.config.region,
  });
  const identity = new StsCallerIdentity(aws.sts);
  return {
    identity,
    source: new S3OwnTokenSource(s3, at),
    clock,
    credentialKeyId: () => identity.accessKeyId(),
  };
}
