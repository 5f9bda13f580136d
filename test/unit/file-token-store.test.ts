import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { FileTokenStore } from '../../lambda/adapters/filesystem.js';

describe('FileTokenStore.locate', () => {
  // A token's key is located without path.join (a run locates thousands); the answer must be
  // join's, whatever form the folder is given in.
  const dirs = ['out', 'out/', './out', '.', '', '/', '/srv/tokens/../regtoken', '..', 'a//b'];
  const keys = [
    'tokens/123456789012/role/ci-runner.json',
    'tokens/210000001111/user/dev.47+x=y@z_w-v.json',
    'trust-bundle.pem',
    'tokens/123456789012/role/not-a-token.txt',
    'tokens/../escape.json',
  ];
  it.each(dirs.flatMap((dir) => keys.map((key) => [dir, key])))('%j + %s', (dir, key) => {
    expect(new FileTokenStore(dir).locate(key)).toBe(join(dir, ...key.split('/')));
  });
});
