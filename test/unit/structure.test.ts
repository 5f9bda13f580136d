/**
 * The shape of the code base (docs/architecture.md, "Code shape"): no file
 * under lambda/ or infra/ over 500 lines, no function over 120 lines, and no import circle
 * among the project's modules. Read with the TypeScript compiler, so a function is what the
 * language calls one (declarations, methods, constructors, accessors, arrow functions and
 * function expressions), measured from its first line to its last, nested functions included.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';
import { ROOT } from '../helpers/cdk.js';

const MAX_FILE_LINES = 500;
const MAX_FUNCTION_LINES = 120;

/** Every .ts file under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .sort();
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(
    file,
    readFileSync(join(ROOT, file), 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
}

function lineCount(file: string): number {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** `file:line name (N lines)` for each function longer than `limit`. */
function longFunctions(source: ts.SourceFile, limit: number): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > limit) {
        const named =
          node.name ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name : undefined);
        const name = named && ts.isIdentifier(named) ? named.text : '(anonymous)';
        found.push(`${source.fileName}:${start + 1} ${name} (${lines} lines)`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The project files `file` imports or re-exports from (relative specifiers only). */
function imports(source: ts.SourceFile): string[] {
  const out: string[] = [];
  for (const statement of source.statements) {
    const spec =
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      statement.moduleSpecifier &&
      ts.isStringLiteral(statement.moduleSpecifier)
        ? statement.moduleSpecifier.text
        : undefined;
    if (spec?.startsWith('.'))
      out.push(
        relative(ROOT, resolve(ROOT, dirname(source.fileName), spec)).replace(/\.js$/, '.ts'),
      );
  }
  return out;
}

/**
 * What `source` loads when it is loaded: its static imports and re-exports (dynamic `import()`
 * is left out, and so is `import type`, which compiles to nothing), relative ones as project
 * files, packages as written.
 */
function loads(source: ts.SourceFile): { files: string[]; packages: string[] } {
  const files: string[] = [];
  const packages: string[] = [];
  for (const statement of source.statements) {
    const typeOnly =
      (ts.isImportDeclaration(statement) && statement.importClause?.isTypeOnly) ||
      (ts.isExportDeclaration(statement) && statement.isTypeOnly);
    const spec =
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      !typeOnly &&
      statement.moduleSpecifier &&
      ts.isStringLiteral(statement.moduleSpecifier)
        ? statement.moduleSpecifier.text
        : undefined;
    if (spec === undefined) continue;
    if (spec.startsWith('.'))
      files.push(
        relative(ROOT, resolve(ROOT, dirname(source.fileName), spec)).replace(/\.js$/, '.ts'),
      );
    else packages.push(spec);
  }
  return { files, packages };
}

/** `file → … → module: package` for each package matching `unwanted` that loading `entry` loads. */
function loadedPackages(entry: string, unwanted: RegExp): string[] {
  const found: string[] = [];
  const seen = new Set<string>([entry]);
  const queue: string[][] = [[entry]];
  for (let chain = queue.shift(); chain; chain = queue.shift()) {
    const file = chain.at(-1) as string;
    if (!file.endsWith('.ts')) continue; // package.json and the like
    const { files, packages } = loads(parse(file));
    for (const p of packages) if (unwanted.test(p)) found.push(`${chain.join(' → ')}: ${p}`);
    for (const next of files)
      if (!seen.has(next)) {
        seen.add(next);
        queue.push([...chain, next]);
      }
  }
  return found;
}

/** Each import circle once, as `a → b → … → a`, found by depth-first search. */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open')
        found.push([...path.slice(path.indexOf(next)), next].join(' → '));
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

const checked = [...sources('lambda'), ...sources('infra')];

/**
 * Functions over the limit that are known and about to be split, each with its reason. The
 * test fails when one of them is split and still listed, so the list only shrinks.
 */
const PENDING: Record<string, string> = {};

describe('code shape', () => {
  it('finds the files it checks', () => {
    expect(checked).toContain('lambda/mint.ts');
    expect(checked).toContain('infra/minter.ts');
  });

  it(`keeps every file under lambda/ and infra/ at ${MAX_FILE_LINES} lines or fewer`, () => {
    const long = checked
      .map((file) => ({ file, lines: lineCount(file) }))
      .filter((f) => f.lines > MAX_FILE_LINES)
      .map((f) => `${f.file} (${f.lines} lines)`);
    expect(long).toEqual([]);
  });

  it(`keeps every function under lambda/ and infra/ at ${MAX_FUNCTION_LINES} lines or fewer`, () => {
    const long = checked.flatMap((file) => longFunctions(parse(file), MAX_FUNCTION_LINES));
    const key = (finding: string) => finding.replace(/:\d+ (\S+) .*$/, ' $1');
    expect(long.filter((f) => !(key(f) in PENDING))).toEqual([]);
    expect(Object.keys(PENDING).filter((k) => !long.some((f) => key(f) === k))).toEqual([]);
  });

  it('has no import circle among the modules of lambda/, infra/, bench/ and bin/', () => {
    const files = [...checked, ...sources('bench'), ...sources('bin')];
    const graph = new Map(files.map((file) => [file, imports(parse(file))]));
    expect(circles(graph)).toEqual([]);
  });

  it('loads no AWS SDK and no Lambda library when the CLI starts (a local mint never needs them)', () => {
    // The AWS side (lambda/run-aws.ts) is imported when a location is s3:// or kms: (awsFor in
    // lambda/cli/commands.ts), the client code when a client command runs.
    expect(loadedPackages('lambda/cli/main.ts', /^@aws-(sdk|lambda-powertools)\//)).toEqual([]);
    // The check itself: the Lambda handler does load them.
    expect(loadedPackages('lambda/handler.ts', /^@aws-sdk\//)).not.toEqual([]);
  });

  it('loads neither the position-keeping YAML reader nor the ASN.1 libraries when the CLI starts', () => {
    // `yaml` reads only a grants file with a problem (parseGrants in lambda/core/config.ts loads
    // it then); the ASN.1 libraries only make a certificate (lambda/adapters/pem-signer.ts).
    expect(loadedPackages('lambda/cli/main.ts', /^(yaml|@peculiar\/.*|asn1js)$/)).toEqual([]);
    // The check itself: the CDK app reads grants at once, with the position-keeping reader.
    expect(loadedPackages('infra/minter/checks.ts', /^yaml$/)).not.toEqual([]);
  });

  it('measures functions and finds circles (the checks themselves)', () => {
    const body = Array.from({ length: 5 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const source = ts.createSourceFile(
      'x.ts',
      `class C {\n  m() {\n${body}\n  }\n}\nconst f = () => {\n${body}\n};\n`,
      ts.ScriptTarget.Latest,
      true,
    );
    expect(longFunctions(source, 6)).toEqual(['x.ts:2 m (7 lines)', 'x.ts:10 f (7 lines)']);
    expect(longFunctions(source, 7)).toEqual([]);
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
    ]);
    expect(circles(graph)).toEqual(['a → b → c → a']);
    expect(
      circles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });
});
