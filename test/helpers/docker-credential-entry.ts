// Entry point for running docker-credential-regtoken from source in a child process, exactly as
// bin/docker-credential-regtoken.js runs the compiled one: see credentialBins in ./credential-bins.ts.
import { main } from '../../lambda/cli/docker-credential-helper.js';

await main();
