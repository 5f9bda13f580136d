/**
 * The Lambda bundle as the stack deploys it, and how long a fresh Node process takes to load it.
 *
 * The bundle is made by the stack itself: a CDK app with the real `RegtokenStack` (settings from
 * cdk.json's context, as `npx cdk synth` runs it) is synthesized with bundling on, so
 * NodejsFunction runs local esbuild with exactly the options in infra/minter/function.ts; the function's
 * asset is the directory holding `index.mjs`. When the stack cannot be synthesized (infra/ is
 * missing or broken), the bench bundles lambda/handler.ts itself with the options the stack
 * documents and says so in the report.
 *
 * Cold load: a new `node` process imports the bundle and reports how long `import()` took; the
 * median of several processes. Importing creates the handler (logger, metrics, lazy SDK
 * clients) and opens no connection, so it runs without network. It is measured with and without
 * `--enable-source-maps`, which the stack sets in NODE_OPTIONS.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { median } from './stats.js';

export interface BundleResult {
  /** How the bundle was made: `synth` (the stack's own NodejsFunction) or `esbuild` (fallback). */
  readonly method: 'synth' | 'esbuild';
  readonly note: string;
  readonly file: string;
  /** Code files: `index.mjs` and the chunks it loads (the bundle is split at dynamic imports). */
  readonly files: number;
  /** Bytes of every code file, the whole function's code. */
  readonly bytes: number;
  readonly gzipBytes: number;
  /** The source maps next to them (not loaded unless --enable-source-maps). */
  readonly mapBytes: number;
  /** Median cold import time (ms) with the stack's NODE_OPTIONS, and without source maps. */
  readonly coldLoadMs: number;
  readonly coldLoadNoSourceMapsMs: number;
  readonly samples: readonly number[];
  readonly samplesNoSourceMaps: readonly number[];
}

/** Options the stack documents (infra/minter/function.ts), for the fallback only. */
const FALLBACK_BANNER =
  "import { createRequire as __regtokenCreateRequire } from 'node:module'; const require = __regtokenCreateRequire(import.meta.url);";

async function synthBundle(root: string, outdir: string): Promise<string> {
  const { App } = await import('aws-cdk-lib');
  const { propsFromContext, RegtokenStack } = await import('../infra/stack.js');
  const cdkJson = JSON.parse(readFileSync(join(root, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const app = new App({ outdir, context: cdkJson.context ?? {} });
  new RegtokenStack(app, 'RegtokenBench', propsFromContext(app.node));
  app.synth();
  const assets = readdirSync(outdir).filter(
    (d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'index.mjs')),
  );
  if (assets.length !== 1)
    throw new Error(`expected one function asset with index.mjs, found ${assets.length}`);
  return join(outdir, assets[0] as string, 'index.mjs');
}

async function esbuildBundle(root: string, outdir: string): Promise<string> {
  // The stack's second pass (scripts/bundle-function.mjs) with the options it documents.
  execFileSync(
    process.execPath,
    [
      join(root, 'scripts/bundle-function.mjs'),
      join(root, 'lambda/handler.ts'),
      outdir,
      JSON.stringify({
        target: 'node22',
        mainFields: ['module', 'main'],
        minify: true,
        sourcemap: true,
        sourcesContent: false,
        banner: { js: FALLBACK_BANNER },
      }),
    ],
    { stdio: 'ignore' },
  );
  return join(outdir, 'index.mjs');
}

/** One new `node` process importing `file`: how long the import took, ms. */
function coldLoad(file: string, nodeOptions: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    // No AWS settings and no proxy: loading must not need them (nor the network).
    env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: nodeOptions },
    encoding: 'utf8',
  });
  return Number(out);
}

/**
 * `runs` cold loads of `file` with source maps (as deployed) and as many without, alternating,
 * so that a change in the machine's load (the stack was just synthesized) weighs on both alike.
 * One untimed load of each first: every timed one finds the bundle and its map in the page cache.
 */
export function coldLoads(file: string, runs: number): { withMaps: number[]; without: number[] } {
  coldLoad(file, '--enable-source-maps');
  coldLoad(file, '');
  const withMaps: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < runs; i++) {
    withMaps.push(coldLoad(file, '--enable-source-maps'));
    without.push(coldLoad(file, ''));
  }
  return { withMaps, without };
}

/** Builds the bundle (synth, or the esbuild fallback) into `outdir` and measures it. */
export async function measureBundle(
  root: string,
  outdir: string,
  options: { runs: number },
): Promise<BundleResult> {
  rmSync(outdir, { recursive: true, force: true });
  let method: BundleResult['method'] = 'synth';
  let note = 'RegtokenStack synthesized with cdk.json context; the function asset as deployed';
  let file: string;
  try {
    file = await synthBundle(root, outdir);
  } catch (err) {
    method = 'esbuild';
    note = `fallback: the stack did not synthesize (${(err as Error).message.split('\n')[0]}); bundled lambda/handler.ts with the stack's documented esbuild options`;
    rmSync(outdir, { recursive: true, force: true });
    file = await esbuildBundle(root, outdir);
  }
  const dir = dirname(file);
  const names = readdirSync(dir);
  const code = names.filter((n) => n.endsWith('.mjs')).map((n) => readFileSync(join(dir, n)));
  const mapBytes = names
    .filter((n) => n.endsWith('.mjs.map'))
    .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
  const { withMaps: samples, without: samplesNoSourceMaps } = coldLoads(file, options.runs);
  return {
    method,
    note,
    file,
    files: code.length,
    bytes: code.reduce((sum, c) => sum + c.length, 0),
    gzipBytes: code.reduce((sum, c) => sum + gzipSync(c).length, 0),
    mapBytes,
    coldLoadMs: median(samples),
    coldLoadNoSourceMapsMs: median(samplesNoSourceMaps),
    samples,
    samplesNoSourceMaps,
  };
}
