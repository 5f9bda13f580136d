/**
 * `regtoken realm`: the token endpoint as a long-running server next to the registry. It reads
 * its settings, loads the trust bundle (a bad start is a one-line error, exit 1), serves until
 * SIGTERM or SIGINT, and then finishes the requests in flight and exits 0.
 */

import { isS3Url } from '../adapters/s3/url.js';
import { REALM_USERNAME } from '../core/realm.js';
import { InputError, UsageError } from '../errors.js';
import { type Command, str } from './command.js';

/** Default listen address: loopback, behind the registry's TLS front end. */
export const DEFAULT_LISTEN = '127.0.0.1:5001';
/** How often the server looks for a new trust bundle. */
const REFRESH_MS = { file: 5_000, s3: 30_000 } as const;

/** An S3 client for the trust bundle, retrying as every regtoken client does. */
async function trustBucketClient() {
  const [{ S3Client }, { MAX_ATTEMPTS }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('../adapters/aws.js'),
  ]);
  return new S3Client({ maxAttempts: MAX_ATTEMPTS });
}

/** `HOST:PORT` or `[IPV6]:PORT` → host and port; a usage error otherwise. */
export function parseListen(value: string, source: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (!m || !host || !Number.isInteger(port) || port > 65535)
    throw new UsageError(`${source}: "${value}" is not HOST:PORT (e.g. ${DEFAULT_LISTEN})`);
  return { host, port };
}

export const realmCommand: Command = {
  name: 'realm',
  summary: "serve the registry's token endpoint (docker login, containerd, Kubernetes)",
  help: `Usage: regtoken realm --trust s3://TOKEN_BUCKET[/PREFIX] | FILE --service NAME --issuer NAME
                      [--listen HOST:PORT]

Serves the registry's auth.token.realm. Clients log in with username ${REALM_USERNAME} and their
regtoken token as the password (docker login -u ${REALM_USERNAME} --password-stdin HOST); the
endpoint verifies the token exactly as the registry does and hands it back. It holds no
signing key. Set the registry's auth.token.realm to this server's /token URL.

Options:
  --trust LOCATION     the trust bundle: the token bucket (its trust/bundle.pem) or a PEM file,
                       re-read when it changes (env REGTOKEN_TRUST)
  --service NAME       the registry's auth.token.service (env REGTOKEN_SERVICE)
  --issuer NAME        the registry's auth.token.issuer (env REGTOKEN_ISSUER)
  --listen HOST:PORT   where to listen (env REGTOKEN_LISTEN; default ${DEFAULT_LISTEN})

Logs one JSON line per request on stdout (principal, jti, scopes, client, outcome; never a
token). Stops cleanly on SIGTERM or SIGINT.

Exit status: 0 stopped by a signal, 1 the trust bundle or address is unusable, 2 usage error.`,
  options: {
    trust: { type: 'string' },
    service: { type: 'string' },
    issuer: { type: 'string' },
    listen: { type: 'string' },
  },
  positionals: false,
  async run(args, ctx) {
    const trust = str(args, 'trust') ?? ctx.env.trust;
    const service = str(args, 'service') ?? ctx.env.service;
    const issuer = str(args, 'issuer') ?? ctx.env.issuer;
    if (!trust)
      throw new UsageError(
        'realm needs --trust s3://TOKEN_BUCKET[/PREFIX] or a PEM file (or REGTOKEN_TRUST)',
      );
    if (!service)
      throw new UsageError(
        "realm needs --service NAME, the registry's auth.token.service (or REGTOKEN_SERVICE)",
      );
    if (!issuer)
      throw new UsageError(
        "realm needs --issuer NAME, the registry's auth.token.issuer (or REGTOKEN_ISSUER)",
      );
    const listenFlag = str(args, 'listen');
    const listen = parseListen(
      listenFlag ?? ctx.env.listen ?? DEFAULT_LISTEN,
      listenFlag ? '--listen' : ctx.env.listen ? 'REGTOKEN_LISTEN' : 'default',
    );

    // The endpoint's parts are loaded when it starts (the AWS SDK only for an s3:// bundle), so
    // that the other commands never load them.
    const { jsonLineLogger } = await import('../adapters/log.js');
    const { FileTrustSource, S3TrustSource, TrustCache } = await import(
      '../adapters/trust-source.js'
    );
    const { startRealmServer } = await import('../realm-server.js');
    const log = jsonLineLogger(ctx.env.serviceName);
    const s3 = isS3Url(trust);
    const source = s3
      ? new S3TrustSource(await trustBucketClient(), trust)
      : new FileTrustSource(trust);
    const refreshMs = s3 ? REFRESH_MS.s3 : REFRESH_MS.file;
    const cache = new TrustCache(source, { refreshMs, logger: log });
    await cache.load();

    let server: Awaited<ReturnType<typeof import('../realm-server.js').startRealmServer>>;
    try {
      server = await startRealmServer({
        ...listen,
        settings: { service, issuer },
        trust: cache,
        logger: log,
        refreshMs,
        ...(ctx.clock ? { clock: ctx.clock } : {}),
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError(
        `cannot listen on ${listen.host}:${listen.port}: ${code === 'EADDRINUSE' ? 'the address is in use' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`,
      );
    }
    log.info('token endpoint listening', {
      url: `${server.url}/token`,
      registryService: service,
      issuer,
      trust: source.name,
    });
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        log.info('token endpoint stopping', { signal });
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        void server.close().then(resolve);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    log.info('token endpoint stopped', {});
    return 0;
  },
};
