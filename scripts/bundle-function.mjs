// Bundles one Lambda entry split at its dynamic imports (esbuild code splitting), replacing the
// single-file bundle NodejsFunction made. Run by the function's afterBundling hook
// (infra/minter/function.ts), which passes the same esbuild options NodejsFunction used:
//
//   node scripts/bundle-function.mjs ENTRY OUTDIR OPTIONS_JSON
//
// What a run never loads stays out of the function's cold start: the position-keeping YAML
// reader (only for a grants file the fast pass refuses or finds a problem in) and the AWS SDK's
// credential providers other than the environment's (docs/performance.md, "Bundle and cold
// load"). The entry is still `index.mjs`; its chunks sit beside it.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const [entry, outdir, options] = process.argv.slice(2);
if (!entry || !outdir || !options) {
  process.stderr.write('usage: node scripts/bundle-function.mjs ENTRY OUTDIR OPTIONS_JSON\n');
  process.exit(2);
}
for (const file of ['index.mjs', 'index.mjs.map']) rmSync(join(outdir, file), { force: true });
await build({
  ...JSON.parse(options),
  entryPoints: { index: entry },
  outdir,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
});
