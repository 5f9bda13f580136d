// What the package's commands share: each runs a `main` from the built code (dist/bin/, one
// bundle per command), which `npm ci` builds (the "prepare" script), and says so in one line, not
// a stack trace, before it is built.

/**
 * Imports `entry` (a module under dist/bin/, relative to this folder) and runs its `main`.
 * @param {string} entry
 */
export async function launch(entry) {
  try {
    const { main } = await import(entry);
    await main();
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/bin/')) {
      process.stderr.write('regtoken: not built yet: run "npm ci" or "npm run build" first\n');
      process.exitCode = 1;
    } else {
      throw err;
    }
  }
}
