/**
 * The repository inventory from a Distribution registry's S3 storage.
 */

import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { RepositoryInventory } from '../../core/ports.js';
import { checkRepositoryName } from '../../core/repository.js';
import { InputError } from '../../errors.js';
import { describeAwsError } from '../aws.js';
import { joinKey, type S3Location } from './shared.js';

/** How many directories the inventory walk lists at once. */
const WALK_CONCURRENCY = 16;
/**
 * Where a repository's own directories begin: the registry keeps `_manifests`, `_layers` and
 * `_uploads` in each repository's directory, and no repository name has a component starting
 * with `_`. So the first `/_` after the root ends a repository name.
 */
const REPOSITORY_END = '/_';

/**
 * Repositories in a Distribution registry's S3 storage: the registry keeps each repository
 * under `PREFIX/docker/registry/v2/repositories/NAME/` with `_manifests`, `_layers` and
 * `_uploads` inside.
 *
 * One listing with the delimiter `/_` rolls every key of a repository up into one common prefix
 * `…/repositories/NAME/_`, whatever the depth of NAME: about one call per 1,000 repositories,
 * however many objects each holds. S3 documents the delimiter as a string grouping keys up to
 * its first occurrence after the prefix; moto implements it so (*unverified* on AWS itself). A
 * store that treats it otherwise (a common prefix not ending in `/_`, or a key containing `/_`
 * returned ungrouped) is walked instead, one directory level at a time with the delimiter `/`
 * ({@link WALK_CONCURRENCY} directories at once): one call per directory. See
 * docs/performance.md for the measurements.
 */
export class S3Inventory implements RepositoryInventory {
  readonly name: string;

  constructor(
    private readonly s3: S3Client,
    private readonly at: S3Location,
  ) {
    this.name = `s3://${at.bucket}${at.key ? `/${at.key}` : ''}`;
  }

  async list(): Promise<string[]> {
    const root = `${joinKey(this.at.key, 'docker/registry/v2/repositories')}/`;
    try {
      const names = (await this.listGrouped(root)) ?? (await this.walk(root));
      return names.filter((name) => checkRepositoryName(name) === undefined).sort();
    } catch (err) {
      throw new InputError(describeAwsError(err, this.name), { cause: err });
    }
  }

  /** Repository names from one `/_`-delimited listing; undefined if the store did not group by it. */
  private async listGrouped(root: string): Promise<string[] | undefined> {
    const { prefixes, keys } = await this.listing(root, REPOSITORY_END);
    const grouped =
      prefixes.every((p) => p.endsWith(REPOSITORY_END)) &&
      keys.every((k) => !k.slice(root.length).includes(REPOSITORY_END));
    return grouped ? prefixes.map((p) => p.slice(root.length, -REPOSITORY_END.length)) : undefined;
  }

  /** Repository names found by listing every directory with the delimiter `/`. */
  private async walk(root: string): Promise<string[]> {
    const names: string[] = [];
    await walk(
      root,
      async (prefix) => {
        const children = (await this.listing(prefix, '/')).prefixes.map((p) =>
          p.slice(prefix.length, -1),
        );
        if (children.some((c) => c.startsWith('_'))) names.push(prefix.slice(root.length, -1));
        return children.filter((c) => !c.startsWith('_')).map((c) => `${prefix}${c}/`);
      },
      WALK_CONCURRENCY,
    );
    return names;
  }

  /** Every page of a delimited listing: the common prefixes and the keys, both in full. */
  private async listing(
    prefix: string,
    delimiter: string,
  ): Promise<{ prefixes: string[]; keys: string[] }> {
    const prefixes: string[] = [];
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.at.bucket,
          Prefix: prefix,
          Delimiter: delimiter,
          ContinuationToken: token,
        }),
      );
      for (const p of r.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
      for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { prefixes, keys };
  }
}

/**
 * Visits a tree from `root` with at most `limit` visits in flight; `visit` returns the children
 * to visit next. Rejects with the first error (visits already started still finish, unobserved).
 */
function walk(
  root: string,
  visit: (node: string) => Promise<string[]>,
  limit: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const queue = [root];
    let active = 0;
    let failed = false;
    const pump = () => {
      if (failed) return;
      if (queue.length === 0 && active === 0) {
        resolve();
        return;
      }
      while (active < limit && queue.length > 0) {
        const node = queue.shift() as string;
        active += 1;
        visit(node).then(
          (children) => {
            active -= 1;
            queue.push(...children);
            pump();
          },
          (err: unknown) => {
            failed = true;
            reject(err);
          },
        );
      }
    };
    pump();
  });
}
