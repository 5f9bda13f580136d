#!/usr/bin/env node
// The `regtoken-credential-provider` command (docs/client.md). It runs the compiled code, which `npm ci` builds.
try {
  const { main } = await import('../dist/lambda/cli/credential-provider.js');
  await main();
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/lambda')) {
    process.stderr.write('regtoken: not built yet: run "npm ci" or "npm run build" first\n');
    process.exitCode = 1;
  } else {
    throw err;
  }
}
