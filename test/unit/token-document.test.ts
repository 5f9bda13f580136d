import { describe, expect, it } from '@jest/globals';
import type { ResourceAccess } from '../../lambda/core/grants.js';
import type { TokenDocument } from '../../lambda/core/ports.js';
import { tokenDocumentText } from '../../lambda/core/token-document.js';

const pull: ResourceAccess[] = [
  { type: 'repository', name: 'team/app', actions: ['pull'] },
  { type: 'repository', name: 'team/ünïcode-"quoted"\\path', actions: ['pull', 'push'] },
  { type: 'registry', name: 'catalog', actions: ['*'] },
];

function doc(over: Partial<TokenDocument> = {}): TokenDocument {
  return {
    principal: 'arn:aws:iam::123456789012:role/ci',
    registry: 'registry.example.com',
    token: 'aaa.bbb.ccc',
    issuedAt: '2026-11-30T10:00:00.000Z',
    expiresAt: '2026-11-30T12:00:00.000Z',
    access: pull,
    ...over,
  };
}

const plain = (d: unknown) => `${JSON.stringify(d, null, 2)}\n`;

describe('tokenDocumentText', () => {
  it.each([
    ['a document as the mint step writes it', doc()],
    ['an empty access list', doc({ access: [] })],
    [
      'one entry with no actions',
      doc({ access: [{ type: 'repository', name: 'x', actions: [] }] }),
    ],
    [
      'control characters and non-ASCII in the fields',
      doc({ principal: 'a\n"b"\u2028', registry: 'ö' }),
    ],
  ])('is JSON.stringify(doc, null, 2) and a newline, byte for byte: %s', (_, d) => {
    expect(tokenDocumentText(d)).toBe(plain(d));
    // Again, from the list's cached text.
    expect(tokenDocumentText({ ...d, token: 'x.y.z' })).toBe(plain({ ...d, token: 'x.y.z' }));
  });

  it('serializes whole a document whose access is not its last key, or that has no other key', () => {
    const { access, ...noAccess } = doc();
    const reordered = { access, ...noAccess } as TokenDocument;
    const accessLast = { ...noAccess, access };
    expect(tokenDocumentText(reordered)).toBe(plain(reordered));
    expect(tokenDocumentText(accessLast)).toBe(plain(accessLast));
    const only = { access: pull } as unknown as TokenDocument;
    expect(tokenDocumentText(only)).toBe(plain(only));
    const undefinedRest = { principal: undefined, access: pull } as unknown as TokenDocument;
    expect(tokenDocumentText(undefinedRest)).toBe(plain(undefinedRest));
  });

  it.each([
    ['a number', 42],
    ['a nested object', { a: [1, { b: 'c' }] }],
    ['an empty array', []],
    ['null', null],
    ['a boolean', true],
    ['undefined', undefined],
  ])('serializes whole a document with %s before its access list', (_, value) => {
    const d = { ...doc(), extra: value, access: pull } as unknown as TokenDocument;
    expect(tokenDocumentText(d)).toBe(plain(d));
    const first = { extra: value, ...doc() } as unknown as TokenDocument;
    expect(tokenDocumentText(first)).toBe(plain(first));
  });

  it('shares one text between documents of the same list, and keeps lists apart', () => {
    const other: ResourceAccess[] = [{ type: 'repository', name: 'other', actions: ['pull'] }];
    expect(tokenDocumentText(doc({ access: other }))).toBe(plain(doc({ access: other })));
    expect(tokenDocumentText(doc())).toBe(plain(doc()));
  });
});
