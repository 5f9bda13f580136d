// Entry point for running the regtoken CLI from source in a child process
// (`node --import tsx test/helpers/regtoken-entry.ts ARGS`), exactly as bin/regtoken.js runs the
// compiled one: see runRegtoken in ./regtoken.ts.
import { main } from '../../lambda/cli/main.js';

await main();
