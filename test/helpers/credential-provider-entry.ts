// Entry point for running regtoken-credential-provider from source in a child process, exactly
// as bin/regtoken-credential-provider.js runs the compiled one: see ./credential-bins.ts.
import { main } from '../../lambda/cli/credential-provider.js';

await main();
