/**
 * The grants schema's validator is compiled ahead of time (scripts/schema-validator.ts into
 * lambda/core/grants-schema-validator.ts). The module must be what the script makes from the
 * schema as it is now, and it must answer exactly as a validator that Ajv compiles at run time
 * from the same schema and options: over every fixture and example, and over a few thousand
 * mutations of a valid file.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse, parseDocument } from 'yaml';
import validateGrantsSchema from '../../lambda/core/grants-schema-validator.js';
import {
  AJV_OPTIONS,
  generateValidator,
  grantsSchema,
  VALIDATOR_MODULE,
} from '../../scripts/schema-validator.js';
import { ROOT } from '../helpers/cdk.js';

const compiled = new Ajv2020({ ...AJV_OPTIONS }).compile(grantsSchema());

/** What a validator says about `data`: valid, or its errors. */
function answer(validate: typeof compiled, data: unknown) {
  const valid = validate(data);
  return { valid, errors: validate.errors ?? null };
}

/** Every fixture and example whose YAML reads to data (the rest fail before the schema). */
function yamlFiles(): { name: string; data: unknown }[] {
  const dirs = ['test/fixtures/invalid', 'examples', 'examples/config-repo'];
  const files = dirs.flatMap((dir) =>
    readdirSync(`${ROOT}${dir}`)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `${dir}/${f}`),
  );
  return files.flatMap((name) => {
    // Duplicate keys are a YAML-level error config.ts reports itself; the data still exists.
    const doc = parseDocument(readFileSync(`${ROOT}${name}`, 'utf8'), { uniqueKeys: false });
    return doc.errors.length ? [] : [{ name, data: doc.toJS() as unknown }];
  });
}

/** A deterministic pseudo-random sequence (xorshift32), so every run tries the same mutations. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const ODD_VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  '',
  'x',
  'a'.repeat(300),
  true,
  [],
  {},
  ['pull'],
  { repository: 'a/b', actions: ['pull'] },
  'arn:aws:iam::111122223333:role/x',
  '12h',
  '0s',
  'registry.example.com:5000',
  '*',
];

/** One mutation of `data`: a value replaced, a key removed or added, an element duplicated. */
function mutate(data: unknown, next: () => number): unknown {
  const copy = structuredClone(data);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  // Walk down a random path, then change what is there.
  let node: unknown = copy;
  for (let depth = 0; depth < 6 && node !== null && typeof node === 'object'; depth++) {
    const keys = Object.keys(node as object);
    if (keys.length === 0 || next() < 0.25) break;
    const key = pick(keys);
    const child = (node as Record<string, unknown>)[key];
    if (child === null || typeof child !== 'object' || next() < 0.3) {
      const r = next();
      const target = node as Record<string, unknown>;
      if (r < 0.4) target[key] = pick(ODD_VALUES);
      else if (r < 0.6 && !Array.isArray(node)) delete target[key];
      else if (r < 0.8 && !Array.isArray(node))
        target[`extra${Math.floor(next() * 3)}`] = pick(ODD_VALUES);
      else if (Array.isArray(node)) node.push(structuredClone(child));
      else target[key] = [child];
      return copy;
    }
    node = child;
  }
  return copy;
}

describe('the schema validator compiled ahead of time', () => {
  it(`is what scripts/schema-validator.ts makes from the schema (else: npm run generate)`, () => {
    expect(readFileSync(`${ROOT}${VALIDATOR_MODULE}`, 'utf8')).toBe(generateValidator());
  });

  it('answers as a validator compiled at run time, for every fixture and example', () => {
    const files = yamlFiles();
    expect(files.length).toBeGreaterThan(30);
    for (const { name, data } of files)
      expect({ name, ...answer(validateGrantsSchema, data) }).toEqual({
        name,
        ...answer(compiled, data),
      });
  });

  it('answers as a validator compiled at run time, for 3,000 mutated files', () => {
    const base = parse(readFileSync(`${ROOT}examples/grants.yaml`, 'utf8')) as unknown;
    const next = random(12);
    let invalid = 0;
    for (let i = 0; i < 3000; i++) {
      let data = base;
      const rounds = 1 + Math.floor(next() * 3);
      for (let j = 0; j < rounds; j++) data = mutate(data, next);
      const expected = answer(compiled, data);
      if (!expected.valid) invalid += 1;
      expect(answer(validateGrantsSchema, data)).toEqual(expected);
    }
    // The mutations reach both outcomes, many times.
    expect(invalid).toBeGreaterThan(1000);
    expect(invalid).toBeLessThan(3000);
  });
});
