/**
 * Every stable error code is documented in docs/cli.md, and the table there lists no code that
 * does not exist: scripts rely on both.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { ERROR_CODES } from '../../lambda/errors.js';

const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('## Error codes'), doc.indexOf('## Environment'));
const documented = [...section.matchAll(/^\| `([A-Z_]+)` /gm)].map((m) => m[1]);

describe('error codes', () => {
  it('docs/cli.md has an error-code table', () => {
    expect(section.startsWith('## Error codes')).toBe(true);
  });
  it('are each documented once, in the order of lambda/errors.ts, and no other is', () => {
    expect(documented).toEqual([...ERROR_CODES]);
  });
});
