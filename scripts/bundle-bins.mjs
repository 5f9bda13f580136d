// Builds the package's commands into dist/bin/ (`npm run build`, which `npm ci` runs): one ES
// module per command, with regtoken's code and its dependencies, split at the dynamic imports
// so a command loads only what it uses (no AWS SDK for local folders and keys, no YAML reader
// for a valid grants file, no ASN.1 library unless it makes a certificate). A command starts
// about 60 ms sooner than it did from tsc's output, one module per source file resolved and
// loaded one by one, dependencies from node_modules (docs/performance.md). esbuild only strips
// the types; `npm run lint` checks them. Not minified: a stack trace stays readable.
//
//   node scripts/bundle-bins.mjs [OUTDIR]      (default dist/bin)

import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = process.argv[2] ?? join(root, 'dist/bin');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: {
    regtoken: join(root, 'lambda/cli/main.ts'),
    'docker-credential-regtoken': join(root, 'lambda/cli/docker-credential-helper.ts'),
    'regtoken-credential-provider': join(root, 'lambda/cli/credential-provider.ts'),
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  // Some bundled CommonJS dependencies call require() for Node built-ins, which an ES module
  // does not have.
  banner: {
    js: "import { createRequire as __regtokenCreateRequire } from 'node:module'; const require = __regtokenCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
