/**
 * AWS principals that can own a token: IAM users and IAM roles, named by ARN.
 *
 * The rules are stricter than IAM's own because the ARN is also the value of the S3 object tag
 * `owner` that binds a token object to its reader (see docs/aws.md): tag values hold at most 256
 * characters from letters, digits, spaces and `+ - = . _ : / @`. IAM allows `,` in names and
 * many more characters in paths; such principals are refused with a message that says why.
 */

import { excerpt, quote } from './text.js';

/** Partitions a token owner may live in. */
export const PARTITIONS = ['aws', 'aws-cn', 'aws-us-gov'] as const;
export type Partition = (typeof PARTITIONS)[number];

/** A validated IAM user or role. */
export interface Principal {
  /** The ARN exactly as configured, e.g. `arn:aws:iam::111122223333:role/web/ec2-web`. */
  readonly arn: string;
  readonly partition: Partition;
  readonly account: string;
  readonly type: 'role' | 'user';
  /** IAM path, `/` when none, otherwise `/a/b/`. */
  readonly path: string;
  readonly name: string;
}

/** Longest ARN that fits an S3 object tag value. */
export const MAX_PRINCIPAL_ARN_LENGTH = 256;
const NAME_RE = /^[A-Za-z0-9+=.@_-]{1,64}$/;
const PATH_SEGMENT_RE = /^[A-Za-z0-9+=.@_-]+$/;
/** Loose shape used to pick the most helpful message; the strict checks follow. */
const ARN_RE = /^arn:([^:]*):([^:]*):([^:]*):([^:]*):(.*)$/;

/**
 * The grammar of {@link PRINCIPAL_ARN_PATTERN} with its parts captured: a valid ARN (with the
 * length limit, checked apart) is read in one match; the step-by-step checks below only choose
 * the message for one that is not.
 */
const VALID_ARN_RE =
  /^arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):(role|user)\/((?:[A-Za-z0-9+=.@_-]+\/)*)([A-Za-z0-9+=.@_-]{1,64})$/;

/** The ARN grammar as a regular expression, shared with the JSON Schema (kept in sync by a test). */
export const PRINCIPAL_ARN_PATTERN =
  '^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:(role|user)/([A-Za-z0-9+=.@_-]+/)*[A-Za-z0-9+=.@_-]{1,64}$';

export type ParseResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

/** Parses and checks an IAM user or role ARN; on failure `reason` says what is wrong and how to fix it. */
export function parsePrincipal(arn: string): ParseResult<Principal> {
  const valid = arn.length <= MAX_PRINCIPAL_ARN_LENGTH ? VALID_ARN_RE.exec(arn) : null;
  if (!valid) return parsePrincipalStepwise(arn);
  const [, partition, account = '', type, path = '', name = ''] = valid;
  return {
    ok: true,
    value: {
      arn,
      partition: partition as Partition,
      account,
      type: type as Principal['type'],
      path: `/${path}`,
      name,
    },
  };
}

/**
 * {@link parsePrincipal} one check at a time, each failure with its own message: the reading of
 * an ARN the single match refuses. Exported for the test that holds the two to the same answer.
 */
export function parsePrincipalStepwise(arn: string): ParseResult<Principal> {
  const fail = (reason: string) => ({ ok: false, reason }) as const;
  if (arn.includes('*') || arn.includes('?'))
    return fail(`principal ${quote(arn)} contains a wildcard: name one IAM user or role exactly`);
  const m = ARN_RE.exec(arn);
  if (!m)
    return fail(
      `${quote(arn)} is not an IAM ARN: expected arn:aws:iam::ACCOUNT:role/NAME or arn:aws:iam::ACCOUNT:user/NAME`,
    );
  const [, partition = '', service = '', region = '', account = '', resource = ''] = m;
  if (service === 'sts' && resource.startsWith('assumed-role/')) {
    const role = resource.split('/')[1] ?? 'NAME';
    return fail(
      `${quote(arn)} is a role session; name the role instead: arn:${excerpt(partition)}:iam::${excerpt(account)}:role/${excerpt(role)}`,
    );
  }
  if (service !== 'iam')
    return fail(
      `${quote(arn)} is not an IAM ARN (service ${quote(service)}): only IAM users and roles own tokens`,
    );
  if (!(PARTITIONS as readonly string[]).includes(partition))
    return fail(
      `unknown partition ${quote(partition)} in ${quote(arn)} (allowed: ${PARTITIONS.join(', ')})`,
    );
  if (region !== '') return fail(`IAM ARNs have no region: ${quote(arn)} names ${quote(region)}`);
  if (!/^\d{12}$/.test(account))
    return fail(`account ${quote(account)} in ${quote(arn)} must be 12 digits`);
  const slash = resource.indexOf('/');
  const type = slash < 0 ? resource : resource.slice(0, slash);
  if (type !== 'role' && type !== 'user')
    return fail(
      `${quote(arn)} names a ${type ? excerpt(type) : 'resource'}: only IAM users and roles own tokens`,
    );
  if (slash < 0)
    return fail(`${quote(arn)} has no ${excerpt(type)} name: expected ${excerpt(type)}/NAME`);
  const rest = resource.slice(slash + 1);
  const segments = rest.split('/');
  const name = segments.pop() ?? '';
  if (arn.includes(','))
    return fail(
      `${quote(arn)} contains ",": the owner ARN is stored in an S3 object tag, which cannot hold commas`,
    );
  for (const seg of segments) {
    if (!PATH_SEGMENT_RE.test(seg))
      return fail(
        `path of ${quote(arn)} has ${seg === '' ? 'an empty segment' : `segment ${quote(seg)} with characters outside A-Z a-z 0-9 + = . @ _ -`}`,
      );
  }
  if (!NAME_RE.test(name))
    return fail(
      name === ''
        ? `${quote(arn)} has no ${type} name`
        : `${type} name ${quote(name)} must be 1-64 characters from A-Z a-z 0-9 + = . @ _ -`,
    );
  if (arn.length > MAX_PRINCIPAL_ARN_LENGTH)
    return fail(
      `${quote(arn, 40)} is too long: at most ${MAX_PRINCIPAL_ARN_LENGTH} characters fit the S3 object tag that binds a token to its owner`,
    );
  const path = segments.length ? `/${segments.join('/')}/` : '/';
  return {
    ok: true,
    value: { arn, partition: partition as Partition, account, type, path, name },
  };
}

/**
 * Where a principal's token lives, relative to the token store: `tokens/ACCOUNT/TYPE/NAME.json`.
 * It leaves out the IAM path on purpose: a role session's identity (`assumed-role/NAME/SESSION`)
 * carries no path, yet a client must find its own token from that identity alone. Names are
 * unique per account and type, so the key is too.
 */
export function tokenKey(p: Pick<Principal, 'account' | 'type' | 'name'>): string {
  return `tokens/${p.account}/${p.type}/${p.name}.json`;
}

/** The shape of a {@link tokenKey}: what a store lists as tokens (other names are not its own). */
const TOKEN_KEY_RE = /^tokens\/[0-9]{12}\/(role|user)\/[A-Za-z0-9+=.@_-]{1,64}\.json$/;

/** True when `key` has the shape of a token's key (`tokens/ACCOUNT/role|user/NAME.json`). */
export function isTokenKey(key: string): boolean {
  return TOKEN_KEY_RE.test(key);
}

/** Case-insensitive identity of a principal: IAM refuses two users or roles whose names differ only in case. */
export function principalIdentity(p: Pick<Principal, 'account' | 'type' | 'name'>): string {
  return `${p.account}/${p.type}/${p.name.toLowerCase()}`;
}
