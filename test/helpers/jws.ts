/**
 * Compact JWS tokens with any header and claims, for verification tests: forged algorithms,
 * odd claim types, foreign keys. Written without regtoken's token code so that the verifier is
 * checked against an independent encoder.
 */

import { createHmac, type KeyObject, sign } from 'node:crypto';

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Signs `header.claims` with `key` as the header's `alg` says (ES256, RS256, HS256, none). */
export function signJws(
  header: Record<string, unknown>,
  claims: unknown,
  key: KeyObject | Buffer | undefined,
): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const data = Buffer.from(input);
  let signature: Buffer;
  switch (header.alg) {
    case 'ES256':
      signature = sign('sha256', data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
      break;
    case 'RS256':
      signature = sign('sha256', data, key as KeyObject);
      break;
    case 'HS256':
      signature = createHmac('sha256', key as Buffer)
        .update(data)
        .digest();
      break;
    default:
      signature = Buffer.from('not-a-signature');
  }
  return `${input}.${signature.toString('base64url')}`;
}

/** Registry claims valid from `now` for `ttl` seconds, with the given overrides. */
export function registryClaims(
  now: Date,
  overrides: Record<string, unknown> = {},
  ttl = 3600,
): Record<string, unknown> {
  const iat = Math.floor(now.getTime() / 1000);
  return {
    iss: 'regtoken',
    sub: 'arn:aws:iam::111122223333:role/ci-runner',
    aud: 'registry.test',
    exp: iat + ttl,
    nbf: iat,
    iat,
    jti: 'jti-1',
    access: [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }],
    ...overrides,
  };
}
