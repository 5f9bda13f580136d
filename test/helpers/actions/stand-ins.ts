/**
 * Stand-ins for the actions a regtoken workflow uses, for test/helpers/actions/runner.ts. Each
 * does what the real action does, with local parts, and fails where the real one would fail
 * for a reason the workflow controls (a missing input, a job without `id-token: write`, a lock
 * file that is not there):
 *
 * - actions/checkout: copies a local folder (the repository being checked out) into the
 *   workspace, or into `path`;
 * - actions/setup-node: puts this machine's node, npm and npx on PATH (from a tool folder, as
 *   setup-node does from its tool cache; npm and npx there log every call);
 * - aws-actions/configure-aws-credentials: assumes `role-to-assume` with a web identity at the
 *   AWS stand-in (moto) and exports the credentials, the region and the endpoint;
 * - actions/upload-artifact, actions/download-artifact: a folder per artifact;
 * - actions/github-script: runs the script in node with a GitHub API whose issue comments live
 *   in a JSON file.
 */

import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { run } from '../process.js';
import type { StandIn } from './runner.js';

function need(inputs: Readonly<Record<string, string>>, name: string): string {
  const v = inputs[name];
  if (v === undefined || v === '') throw new Error(`Input required and not supplied: ${name}`);
  return v;
}

/**
 * actions/checkout: `repositories` maps `OWNER/NAME` to the folder that stands for it; without
 * `repository`, the workflow's own repository (`own`) is checked out.
 */
export function checkout(own: string, repositories: Readonly<Record<string, string>>): StandIn {
  return async (inputs, io) => {
    const repository = inputs.repository || io.env.GITHUB_REPOSITORY || '';
    const source = repository === io.env.GITHUB_REPOSITORY ? own : repositories[repository];
    if (!source) throw new Error(`no local copy stands for repository ${repository}`);
    const target = join(io.workspace, inputs.path ?? '');
    cpSync(source, target, { recursive: true, filter: (src) => !src.endsWith('/.git') });
    io.log(`checked out ${repository} into ${target}\n`);
  };
}

/**
 * actions/setup-node: `node-version` is required by this workflow's use; with `cache: npm` the
 * lock file named by `cache-dependency-path` must exist (the real action fails without it).
 * npm and npx log each call (job, whether the job can mint an OIDC token, arguments) to
 * `npmLog`, then run the real ones.
 */
export function setupNode(toolDir: string, npmLog: string): StandIn {
  return async (inputs, io) => {
    need(inputs, 'node-version');
    if (inputs.cache === 'npm') {
      const lock = join(io.workspace, inputs['cache-dependency-path'] || 'package-lock.json');
      if (!existsSync(lock))
        throw new Error(
          `Dependencies lock file is not found in ${lock}. Supported file patterns: package-lock.json,npm-shrinkwrap.json,yarn.lock`,
        );
    }
    const bin = join(toolDir, 'node', 'bin');
    if (!existsSync(bin)) {
      mkdirSync(bin, { recursive: true });
      const realBin = dirname(process.execPath);
      writeFileSync(join(bin, 'node'), `#!/bin/sh\nexec '${process.execPath}' "$@"\n`, {
        mode: 0o755,
      });
      for (const tool of ['npm', 'npx'])
        writeFileSync(
          join(bin, tool),
          `#!/bin/sh\nprintf '%s\\t%s\\t%s %s\\n' "$GITHUB_JOB" "\${ACTIONS_ID_TOKEN_REQUEST_TOKEN:+id-token}" '${tool}' "$*" >> '${npmLog}'\nexec '${join(realBin, tool)}' "$@"\n`,
          { mode: 0o755 },
        );
    }
    io.addPath(bin);
    io.log(`node ${process.version} (stands for ${inputs['node-version']}) on PATH\n`);
  };
}

/**
 * aws-actions/configure-aws-credentials with OIDC: the job must be allowed to mint an ID token
 * (`permissions: id-token: write`), as on GitHub; the role is assumed at `endpoint`.
 */
export function configureAwsCredentials(endpoint: string): StandIn {
  return async (inputs, io) => {
    const role = need(inputs, 'role-to-assume');
    const region = need(inputs, 'aws-region');
    if (io.permissions['id-token'] !== 'write' || !io.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN)
      throw new Error(
        'Could not assume role with OIDC: no ACTIONS_ID_TOKEN_REQUEST_TOKEN (the job needs permissions: id-token: write)',
      );
    const sts = new STSClient({
      endpoint,
      region,
      credentials: { accessKeyId: 'anonymous', secretAccessKey: 'anonymous' },
    });
    const r = await sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: role,
        RoleSessionName: inputs['role-session-name'] || 'GitHubActions',
        WebIdentityToken: `replay-oidc-token-for-${io.job}`,
      }),
    );
    const c = r.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken)
      throw new Error('AssumeRoleWithWebIdentity returned no credentials');
    io.exportVariable('AWS_ACCESS_KEY_ID', c.AccessKeyId);
    io.exportVariable('AWS_SECRET_ACCESS_KEY', c.SecretAccessKey);
    io.exportVariable('AWS_SESSION_TOKEN', c.SessionToken);
    io.exportVariable('AWS_REGION', region);
    io.exportVariable('AWS_DEFAULT_REGION', region);
    // The stand-in's AWS is moto: every SDK and the AWS CLI honour AWS_ENDPOINT_URL.
    io.exportVariable('AWS_ENDPOINT_URL', endpoint);
    io.log(`assumed ${role}\n`);
  };
}

/**
 * actions/upload-artifact: `path` (one file or folder per line) into `store/NAME/`. As with the
 * real action, a folder's contents (not the folder) are the artifact's root.
 */
export function uploadArtifact(store: string): StandIn {
  return async (inputs, io) => {
    const name = inputs.name || 'artifact';
    const target = join(store, name);
    if (existsSync(target) && inputs.overwrite !== 'true')
      throw new Error(`an artifact named ${name} already exists in this run`);
    mkdirSync(target, { recursive: true });
    const paths = need(inputs, 'path')
      .split('\n')
      .map((p) => p.trim())
      .filter(Boolean);
    for (const p of paths) {
      const from = p.startsWith('/') ? p : join(io.workspace, p);
      if (!existsSync(from)) {
        if (inputs['if-no-files-found'] === 'error') throw new Error(`no files found at ${p}`);
        continue;
      }
      const isFolder = statSync(from).isDirectory();
      cpSync(from, isFolder ? target : join(target, from.split('/').at(-1) as string), {
        recursive: true,
      });
    }
  };
}

/** actions/download-artifact: `store/NAME/` into `path` (default: the workspace). */
export function downloadArtifact(store: string): StandIn {
  return async (inputs, io) => {
    const name = need(inputs, 'name');
    const from = join(store, name);
    if (!existsSync(from)) throw new Error(`Artifact not found for name: ${name}`);
    const path = inputs.path || '';
    cpSync(from, path.startsWith('/') ? path : join(io.workspace, path), { recursive: true });
  };
}

/** One issue comment of the fake GitHub API. */
export interface Comment {
  id: number;
  user: { type: 'Bot' | 'User'; login: string };
  body: string;
}

/**
 * actions/github-script: runs `script` in node (its working directory is the workspace) with
 * `github.rest.issues.{listComments,createComment,updateComment}`, `github.paginate` and
 * `context`, whose comments live in the JSON file `state`. Other API calls fail.
 */
export function githubScript(state: string, issueNumber: number): StandIn {
  return async (inputs, io) => {
    if (io.permissions['pull-requests'] !== 'write')
      throw new Error('Resource not accessible by integration (pull-requests: write is missing)');
    if (!existsSync(state)) writeFileSync(state, '[]');
    const [owner, repo] = (io.env.GITHUB_REPOSITORY ?? '/').split('/');
    const harness = `
const fs = require('node:fs');
const state = ${JSON.stringify(state)};
const load = () => JSON.parse(fs.readFileSync(state, 'utf8'));
const save = (c) => fs.writeFileSync(state, JSON.stringify(c, null, 2));
const check = (p) => { if (p.owner !== ${JSON.stringify(owner)} || p.repo !== ${JSON.stringify(repo)} || p.issue_number !== undefined && p.issue_number !== ${issueNumber}) throw new Error('wrong repository or issue: ' + JSON.stringify(p)); };
const issues = {
  listComments: async (p) => { check(p); return { data: load() }; },
  createComment: async (p) => { check(p); const c = load(); const made = { id: 1000 + c.length, user: { type: 'Bot', login: 'github-actions[bot]' }, body: p.body }; c.push(made); save(c); return { data: made }; },
  updateComment: async (p) => { check(p); const c = load(); const one = c.find((x) => x.id === p.comment_id); if (!one) throw new Error('no comment ' + p.comment_id); one.body = p.body; save(c); return { data: one }; },
};
const github = { rest: { issues }, paginate: async (fn, p) => (await fn(p)).data };
const context = { repo: { owner: ${JSON.stringify(owner)}, repo: ${JSON.stringify(repo)} }, issue: { number: ${issueNumber} }, eventName: process.env.GITHUB_EVENT_NAME };
const AsyncFunction = (async () => {}).constructor;
new AsyncFunction('github', 'context', 'require', 'core', process.env.SCRIPT)(github, context, require, {})
  .catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
`;
    const r = await run(process.execPath, ['-e', harness], {
      cwd: io.workspace,
      env: { ...io.env, SCRIPT: need(inputs, 'script') },
    });
    io.log(r.stdout + r.stderr);
    if (r.code !== 0) throw new Error(`script failed (exit ${r.code})`);
  };
}

/** The comments the fake GitHub API holds. */
export function comments(state: string): Comment[] {
  return existsSync(state) ? (JSON.parse(readFileSync(state, 'utf8')) as Comment[]) : [];
}
