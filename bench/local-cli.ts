// The entry point bench/local.ts bundles: the CLI as bin/regtoken.js runs it.
import { main } from '../lambda/cli/main.js';

await main();
