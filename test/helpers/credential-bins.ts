import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunResult, run } from './process.js';

/** The package's bin, by absolute path: the programs run with whatever working directory. */
const bin = (name: string) => fileURLToPath(new URL(`../../bin/${name}`, import.meta.url));

/** The two credential programs as commands on a PATH, as `npm install -g` puts them there. */
export interface CredentialBins {
  /** The directory to put first on PATH. */
  readonly dir: string;
  /** Its `docker-credential-regtoken`. */
  readonly helper: string;
  /** Its `regtoken-credential-provider` (the kubelet runs it from its provider bin dir). */
  readonly provider: string;
}

/** `#!/bin/sh` launcher running one of the package's bins with this Node.js. */
const launcher = (file: string) =>
  `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin(file))} "$@"\n`;

/**
 * Writes `docker-credential-regtoken` and `regtoken-credential-provider` into `dir` (created):
 * small launchers that run the package's bins (the built code in dist/bin/, which
 * scripts/test.sh builds from the source first), so Docker, skopeo and a kubelet find and run
 * them by name exactly as they would the installed package's.
 */
export async function credentialBins(dir: string): Promise<CredentialBins> {
  await mkdir(dir, { recursive: true });
  const helper = path.join(dir, 'docker-credential-regtoken');
  const provider = path.join(dir, 'regtoken-credential-provider');
  await writeFile(helper, launcher('docker-credential-regtoken.js'));
  await writeFile(provider, launcher('regtoken-credential-provider.js'));
  await chmod(helper, 0o755);
  await chmod(provider, 0o755);
  return { dir, helper, provider };
}

/**
 * Runs one of the programs with stdin `input` and exactly the environment `env` (plus PATH when
 * it has none), the way Docker or the kubelet does. Never throws on a non-zero exit.
 */
export function runProgram(
  program: string,
  args: string[],
  input: string,
  env: NodeJS.ProcessEnv,
): Promise<RunResult> {
  return run(program, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    input,
    timeoutMs: 60_000,
  });
}
