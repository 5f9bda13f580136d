/**
 * The fast first pass over grants files (lambda/core/yaml-fast.ts, js-yaml) against the full
 * reader (the `yaml` library with positions): whenever the fast pass returns a model, the full
 * reader must accept the same text and return the same model, positions included. Checked over
 * every fixture and example, generated workloads in several styles, and thousands of mutated
 * files (some restyled only, most of them broken); and the fast pass must refuse what it does not read (aliases, tags, block scalars,
 * directives, the limits of yaml.ts), leaving the full reader to report it.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { generateWorkload } from '../../bench/generate.js';
import { parseFast, parseGrants } from '../../lambda/core/config.js';
import { parseGrantsSync, parseWithPositions } from '../../lambda/core/config-positions.js';
import type { GrantsConfig } from '../../lambda/core/grants.js';
import { readYamlFast } from '../../lambda/core/yaml-fast.js';
import { MAX_MAPPING_KEYS, MAX_NESTING } from '../../lambda/core/yaml-limits.js';
import { ConfigError, formatIssue } from '../../lambda/errors.js';
import { ROOT } from '../helpers/cdk.js';

/** A model as plain data (a repository pattern's matcher is a function: left out). */
function plain(config: GrantsConfig): unknown {
  return JSON.parse(JSON.stringify(config));
}

/** The full reader's answer: the model, or every issue it reports. */
function full(text: string): { model: unknown } | { issues: string[] } {
  try {
    return { model: plain(parseWithPositions(text, 'g.yaml')) };
  } catch (err) {
    if (err instanceof ConfigError) return { issues: err.issues.map(formatIssue) };
    throw err;
  }
}

/** What parseGrantsSync answers, in the same form. */
function answer(text: string): { model: unknown } | { issues: string[] } {
  try {
    return { model: plain(parseGrantsSync(text, 'g.yaml')) };
  } catch (err) {
    if (err instanceof ConfigError) return { issues: err.issues.map(formatIssue) };
    throw err;
  }
}

/**
 * Checks one text: a model from the fast pass is the full reader's model, and parseGrantsSync
 * answers exactly as the full reader does. Returns whether the fast pass read it.
 */
function agree(text: string, name: string): boolean {
  const fast = parseFast(text, 'g.yaml');
  const expected = full(text);
  if (fast !== undefined) expect({ name, model: plain(fast) }).toEqual({ name, ...expected });
  expect({ name, ...answer(text) }).toEqual({ name, ...expected });
  return fast !== undefined;
}

/** A deterministic pseudo-random sequence (xorshift32), so every run tries the same files. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function fixtures(): { name: string; text: string }[] {
  const dirs = ['test/fixtures/invalid', 'examples', 'examples/config-repo'];
  return dirs.flatMap((dir) =>
    readdirSync(`${ROOT}${dir}`)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => ({ name: `${dir}/${f}`, text: readFileSync(`${ROOT}${dir}/${f}`, 'utf8') })),
  );
}

/** The same workload written in other styles: flow collections, quoting, comments, CRLF. */
function restyled(text: string): string[] {
  return [
    text,
    text.replace(/^( *)- (arn:[^\n]*)$/gm, '$1- "$2"'),
    text.replace(/^( *)- (arn:[^\n]*)$/gm, "$1- '$2'"),
    text.replace(/"/g, "'"),
    text.replace(/\n/g, '\r\n'),
    text.replace(/^( *)(access|principals):$/gm, '$1$2: # a comment\n$1  # another'),
    `\uFEFF${text}`,
    `---\n${text}...\n`,
  ];
}

/** Scalars each reader might resolve its own way. */
const ODD_SCALARS = [
  '1e400',
  '-1e400',
  `0x${'f'.repeat(300)}`,
  '9'.repeat(400),
  '0o17',
  '0x1F',
  '017',
  '+12',
  '1_000',
  '.inf',
  '-.Inf',
  '.NaN',
  '~',
  'null',
  'Null',
  'NULL',
  'true',
  'True',
  'yes',
  'on',
  '1.0',
  '1.',
  '.5',
  '2026-11-30',
  '2026-11-30T12:00:00Z',
  '"\\x41\\u0042\\U00000043"',
  '"a\\\nb"',
  "'it''s'",
  '"tab\\there"',
  '!!str 1',
  '!!int "5"',
  '&a x',
  '*a',
  '<<',
  '|\n  block',
  '>-\n  folded',
  '[]',
  '{}',
  '"\\0"',
  '"\\N\\_\\L\\P"',
  'a: b',
  '- x',
  '#',
  '"#x"',
  '@x',
  '`x',
  '%x',
  'x #y',
  'x#y',
  '"\u00e9"',
  'é',
  'a\tb',
];

const SPECIAL = [
  ' ',
  '\t',
  '\n',
  '\r',
  ':',
  '-',
  '#',
  '"',
  "'",
  '&',
  '*',
  '!',
  '|',
  '>',
  '{',
  '}',
  '[',
  ']',
  ',',
  '?',
  '%',
  '@',
  '\\',
  '0',
  'x',
  '\u0085',
  '\u2028',
  '\uFEFF',
  '\u0000',
];

/**
 * A change that keeps the file meaning the same, written another way: a scalar quoted, a
 * comment after a value or on a line of its own, a flow collection spaced out.
 */
function restyle(line: string, next: () => number): string {
  const r = next();
  // A value after "key: " or "- " (not a key of its own: `registry:` quoted is another thing).
  const m = /^(\s*(?:- )?(?:[A-Za-z]+: )?)([^\s"'#[{][^#]*?)\s*$/.exec(line);
  if (m && /:(?: |$)/.test(m[2] as string)) return `${line} # note`;
  if (r < 0.3 && m) return `${m[1]}"${(m[2] as string).replace(/["\\]/g, '\\$&')}"`;
  if (r < 0.55 && m) return `${m[1]}'${(m[2] as string).replace(/'/g, "''")}'`;
  if (r < 0.7) return `${line} # note`;
  if (r < 0.85) return `${/^\s*/.exec(line)?.[0] ?? ''}# a comment line\n${line}`;
  return line.replace(/\[/g, '[ ').replace(/, /g, ' ,  ').replace(/\]/g, ' ]');
}

/** One mutation of `text`: a character, a line, an indentation or a scalar changed. */
function mutate(text: string, next: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const lines = text.split('\n');
  const at = Math.floor(next() * lines.length);
  const line = lines[at] ?? '';
  const r = next();
  if (r < 0.15) {
    const i = Math.floor(next() * (text.length + 1));
    return text.slice(0, i) + pick(SPECIAL) + text.slice(i);
  }
  if (r < 0.22) {
    const i = Math.floor(next() * text.length);
    return text.slice(0, i) + text.slice(i + 1);
  }
  if (r < 0.3) lines.splice(at, 0, line);
  else if (r < 0.36) lines.splice(at, 1);
  else if (r < 0.44) lines[at] = pick(['', ' ', '  ', '\t', '   ']) + line;
  else if (r < 0.48) lines[at] = line.replace(/^ {1,2}/, '');
  else if (r < 0.66) {
    // A scalar after "key: " or "- " replaced by an odd one.
    const m = /^(\s*(?:- )?(?:[A-Za-z]+: )?)(.*)$/.exec(line);
    lines[at] = `${m?.[1] ?? ''}${pick(ODD_SCALARS)}`;
  } else if (r < 0.72)
    lines.splice(at, 0, pick(['---', '...', '%YAML 1.1', '%TAG ! tag:x,2026:', '? x', '#']));
  else lines[at] = restyle(line, next);
  return lines.join('\n');
}

describe('the fast first pass over grants files', () => {
  it('reads every fixture and example as the full reader does, or leaves it to it', () => {
    const files = fixtures();
    expect(files.length).toBeGreaterThan(30);
    let read = 0;
    for (const { name, text } of files) if (agree(text, name)) read += 1;
    // The valid examples are read by the fast pass (the invalid fixtures fall back).
    expect(read).toBeGreaterThanOrEqual(2);
  });

  it('parseGrants, which loads the full reader only when it is needed, answers as parseGrantsSync', async () => {
    const all = fixtures();
    let full = 0;
    for (const { name, text } of all) {
      const expected = answer(text);
      let got: { model: unknown } | { issues: string[] };
      try {
        got = { model: plain(await parseGrants(text, 'g.yaml')) };
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        got = { issues: err.issues.map(formatIssue) };
      }
      expect({ name, ...got }).toEqual({ name, ...expected });
      if (parseFast(text, 'g.yaml') === undefined) full += 1;
    }
    // Both ways were taken: valid files by the fast pass alone, the others by the full reader.
    expect(full).toBeGreaterThan(10);
    expect(all.length - full).toBeGreaterThanOrEqual(2);
  });

  it('reads generated workloads in many styles as the full reader does', () => {
    let read = 0;
    let texts = 0;
    for (const n of [20, 57, 130]) {
      for (const text of restyled(generateWorkload(n).configText)) {
        texts += 1;
        if (agree(text, `generated ${n}`)) read += 1;
      }
    }
    expect(read).toBe(texts);
  });

  it('agrees with the full reader on 3,000 mutated files', () => {
    const seeds = [
      readFileSync(`${ROOT}examples/grants.yaml`, 'utf8'),
      generateWorkload(20).configText,
      generateWorkload(20).configText.replace(/^( *)- (arn:[^\n]*)$/gm, '$1- "$2"'),
    ];
    const next = random(7);
    let read = 0;
    for (let i = 0; i < 3000; i++) {
      let text = seeds[i % seeds.length] as string;
      const rounds = 1 + Math.floor(next() * 3);
      for (let j = 0; j < rounds; j++) text = mutate(text, next);
      if (agree(text, `mutation ${i}`)) read += 1;
    }
    // Both outcomes occur, many times: mutations often leave a file valid (a comment, a
    // reindented line), and often break it.
    expect(read).toBeGreaterThan(300);
    expect(read).toBeLessThan(2700);
  });

  it('agrees with the full reader on 1,000 files restyled without changing their meaning', () => {
    const seed = generateWorkload(20).configText;
    const next = random(11);
    let read = 0;
    for (let i = 0; i < 1000; i++) {
      const lines = seed.split('\n');
      for (let j = 0; j < 1 + Math.floor(next() * 6); j++) {
        const at = Math.floor(next() * lines.length);
        lines[at] = restyle(lines[at] ?? '', next);
      }
      if (agree(lines.join('\n'), `restyled ${i}`)) read += 1;
    }
    // Most are read by the fast pass; a quoted number (`version: "1"`) is refused by both.
    expect(read).toBeGreaterThan(500);
  });

  it('refuses what it does not read, so the full reader decides', () => {
    const head = 'version: 1\nregistry: {host: r, service: s, issuer: i}\n';
    const grant =
      '  - principal: arn:aws:iam::111122223333:role/a\n    access: [{repository: x, actions: [pull]}]\n';
    const valid = `${head}grants:\n${grant}`;
    expect(readYamlFast(valid)).toBeDefined();
    const refused = {
      alias: `${head}x: &a [1]\ngrants:\n${grant}y: *a\n`,
      tag: `${head}grants: !!seq\n${grant}`,
      'block scalar': `${head}grants:\n  - principal: >-\n      arn:aws:iam::111122223333:role/a\n    access: [{repository: x, actions: [pull]}]\n`,
      directive: `%YAML 1.2\n---\n${valid}`,
      'two documents': `${valid}---\n${valid}`,
      'a stray document end': `...\n${valid}`,
      'duplicate key': `${valid}version: 1\n`,
      'number out of range': `${valid}tokenTtl: 1e400\n`,
      'lone carriage return': valid.replace('\n', '\r'),
      'too deep': `${valid}x: ${'['.repeat(MAX_NESTING)}${']'.repeat(MAX_NESTING)}\n`,
      'too many keys': `${valid}x: {${Array.from({ length: MAX_MAPPING_KEYS + 1 }, (_, i) => `k${i}: 1`).join(', ')}}\n`,
    };
    for (const [what, text] of Object.entries(refused))
      expect({ what, read: readYamlFast(text) }).toEqual({ what, read: undefined });
    // One less than each limit is read.
    expect(
      readYamlFast(`${valid}x: ${'['.repeat(MAX_NESTING - 1)}${']'.repeat(MAX_NESTING - 1)}\n`),
    ).toBeDefined();
  });

  it('places each grant where the full reader does', () => {
    const text = generateWorkload(57).configText.replace(/^( *)- (arn:[^\n]*)$/gm, '$1- "$2"');
    const fast = parseFast(text, 'g.yaml');
    expect(fast?.grants.map((g) => g.at)).toEqual(
      parseWithPositions(text, 'g.yaml').grants.map((g) => g.at),
    );
  });
});
