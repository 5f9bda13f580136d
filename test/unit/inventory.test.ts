/**
 * The registry inventory (S3Inventory): one `/_`-delimited listing finds every repository at any
 * depth; a store that does not group keys by a multi-character delimiter is detected and walked
 * directory by directory instead, with the same result. The store here is an in-memory fake:
 * moto groups by the whole delimiter (the integration tests use it), and a store that groups
 * differently cannot be made from moto.
 */

import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from '@jest/globals';
import { S3Inventory } from '../../lambda/adapters/s3/inventory.js';

const ROOT = 'reg/docker/registry/v2/repositories/';
const KEYS = [
  'base/alpine/_manifests/tags/latest/current/link',
  'base/alpine/_layers/sha256/aa/link',
  'base/node/20/_manifests/tags/20/current/link',
  'team-a/app/_manifests/tags/v1/current/link',
  'team-a/app/_uploads/x/startedat',
  'team-a/app/cache/_layers/sha256/bb/link', // a repository inside a repository
  'team-b/api/_layers/sha256/cc/link',
  'Bad_Name/_manifests/tags/x/current/link', // not a valid repository name: left out
  'stray-object',
].map((k) => `${ROOT}${k}`);
const REPOSITORIES = [
  'base/alpine',
  'base/node/20',
  'team-a/app',
  'team-a/app/cache',
  'team-b/api',
];

/**
 * ListObjectsV2 over KEYS, two entries per page. `delimiterChars` limits how much of the
 * delimiter the store honours (1: a store that groups by its first character only).
 */
function fakeS3(delimiterChars = Number.POSITIVE_INFINITY) {
  const calls: { Prefix?: string; Delimiter?: string }[] = [];
  const client = {
    send: async (command: unknown) => {
      if (!(command instanceof ListObjectsV2Command)) throw new Error('unexpected command');
      const { Prefix = '', Delimiter, ContinuationToken } = command.input;
      calls.push({ Prefix, Delimiter });
      const delimiter = Delimiter?.slice(0, delimiterChars) ?? '';
      const entries: { key?: string; prefix?: string }[] = [];
      const seen = new Set<string>();
      for (const key of [...KEYS].sort()) {
        if (!key.startsWith(Prefix)) continue;
        const at = delimiter ? key.indexOf(delimiter, Prefix.length) : -1;
        if (at < 0) entries.push({ key });
        else {
          const prefix = key.slice(0, at + delimiter.length);
          if (!seen.has(prefix)) entries.push({ prefix });
          seen.add(prefix);
        }
      }
      const start = Number(ContinuationToken ?? 0);
      const page = entries.slice(start, start + 2);
      const more = start + 2 < entries.length;
      return {
        Contents: page.filter((e) => e.key).map((e) => ({ Key: e.key })),
        CommonPrefixes: page.filter((e) => e.prefix).map((e) => ({ Prefix: e.prefix })),
        IsTruncated: more,
        NextContinuationToken: more ? String(start + 2) : undefined,
      };
    },
  };
  return { client: client as unknown as S3Client, calls };
}

describe('S3Inventory', () => {
  it('finds every repository, at any depth, with one /_-delimited listing (paged)', async () => {
    const { client, calls } = fakeS3();
    const inventory = new S3Inventory(client, { bucket: 'registry', key: 'reg' });
    expect(await inventory.list()).toEqual(REPOSITORIES);
    // 5 valid + 1 invalid repository + 1 stray key = 7 entries, 2 per page.
    expect(calls).toHaveLength(4);
    expect(new Set(calls.map((c) => c.Delimiter))).toEqual(new Set(['/_']));
  });

  it('walks directory by directory when the store does not group by the whole delimiter', async () => {
    const { client, calls } = fakeS3(1);
    const inventory = new S3Inventory(client, { bucket: 'registry', key: 'reg' });
    expect(await inventory.list()).toEqual(REPOSITORIES);
    expect(calls.filter((c) => c.Delimiter === '/').length).toBeGreaterThan(0);
  });

  it('reports a listing failure as an input error naming the inventory', async () => {
    const client = {
      send: async () => {
        throw Object.assign(new Error('Access Denied'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 },
        });
      },
    } as unknown as S3Client;
    await expect(new S3Inventory(client, { bucket: 'registry', key: '' }).list()).rejects.toThrow(
      's3://registry: access denied',
    );
  });
});
