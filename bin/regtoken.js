#!/usr/bin/env node
// The `regtoken` command. It runs the compiled CLI, which `npm ci` builds (the "prepare" script).
try {
  const { main } = await import('../dist/lambda/cli/main.js');
  await main();
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/lambda')) {
    process.stderr.write('regtoken: not built yet: run "npm ci" or "npm run build" first\n');
    process.exitCode = 1;
  } else {
    throw err;
  }
}
