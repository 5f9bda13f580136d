/**
 * The config repository workflow shipped in examples/config-repo: it parses, asks for the
 * right permissions in the right jobs, and every `regtoken` command it runs exists in the CLI
 * with the flags it passes. The sample grants file it deploys is valid.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { COMMANDS } from '../../lambda/cli/commands.js';
import { ROOT } from '../helpers/cdk.js';
import { cli } from '../helpers/cli.js';

const REPO = `${ROOT}examples/config-repo/`;
const WORKFLOW = `${REPO}.github/workflows/grants.yml`;

interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly with?: Record<string, string | number | boolean>;
}
interface Job {
  readonly if: string;
  readonly permissions: Record<string, string>;
  readonly steps: Step[];
}
const workflow = parse(readFileSync(WORKFLOW, 'utf8')) as {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  env: Record<string, string>;
  jobs: Record<string, Job>;
};

/** A `regtoken` invocation found in a run script: subcommand and its arguments. */
interface Invocation {
  readonly job: string;
  readonly command: string;
  readonly args: string[];
}

/**
 * Every `regtoken …` in command position in the run scripts (a line's start or after `;`, `&&`,
 * `||`, `|`, `(`; not inside an echo), up to the first shell operator. Words are split like the
 * shell would for these simple lines (quotes kept together).
 */
function invocations(): Invocation[] {
  const out: Invocation[] = [];
  for (const [job, { steps }] of Object.entries(workflow.jobs))
    for (const step of steps)
      for (const line of (step.run ?? '').split('\n')) {
        const m = /(?:^|[;&|(])\s*regtoken\s+(.*)$/.exec(line);
        if (!m?.[1]) continue;
        const words = m[1].match(/"[^"]*"|'[^']*'|[^\s]+/g) ?? [];
        const end = words.findIndex((w) => /^(\||\|\||&&|;|\d?>|>>|<)/.test(w));
        const [command, ...args] = end === -1 ? words : words.slice(0, end);
        if (command) out.push({ job, command, args });
      }
  return out;
}

describe('examples/config-repo/.github/workflows/grants.yml', () => {
  it('runs on pull requests and pushes to main, with no default permissions', () => {
    expect(Object.keys(workflow.on).sort()).toEqual(['pull_request', 'push', 'workflow_dispatch']);
    expect(workflow.on.push).toMatchObject({ branches: ['main'] });
    expect(workflow.permissions).toEqual({});
    expect(workflow.env.CONFIG_OBJECT).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression
      's3://${{ vars.REGTOKEN_CONFIG_BUCKET }}/grants.yaml',
    );
  });

  it('runs exactly validate + plan on pull requests and validate before the upload on main', () => {
    expect(invocations().map((i) => `${i.job}: ${i.command} ${i.args.join(' ')}`)).toEqual([
      'plan: validate "$GRANTS_FILE"',
      'plan: plan --from "$CONFIG_OBJECT" --to "$GRANTS_FILE"',
      'upload: validate "$GRANTS_FILE"',
    ]);
  });

  it('every regtoken command exists in the CLI and takes the flags passed to it', () => {
    const found = invocations();
    expect(found.length).toBeGreaterThan(0);
    for (const { command, args } of found) {
      const spec = COMMANDS.find((c) => c.name === command);
      expect(spec).toBeDefined();
      if (!spec) continue;
      for (let i = 0; i < args.length; i++) {
        const arg = args[i] as string;
        if (arg.startsWith('--')) {
          const option = spec.options[arg.slice(2)];
          expect({ command, flag: arg, known: option !== undefined }).toEqual({
            command,
            flag: arg,
            known: true,
          });
          if (option?.type === 'string') {
            expect(args[i + 1]).toMatch(/^[^-]/);
            i++;
          }
        } else {
          expect({ command, positional: arg, allowed: spec.positionals }).toEqual({
            command,
            positional: arg,
            allowed: true,
          });
        }
      }
    }
  });

  it('plans only on pull requests, with read-only OIDC credentials', () => {
    const plan = workflow.jobs.plan as Job;
    expect(plan.if).toBe("github.event_name == 'pull_request'");
    expect(plan.permissions).toEqual({
      contents: 'read',
      'id-token': 'write',
      'pull-requests': 'write',
    });
    const aws = plan.steps.filter((s) =>
      s.uses?.startsWith('aws-actions/configure-aws-credentials'),
    );
    expect(aws.map((s) => s.with?.['role-to-assume'])).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression
      '${{ vars.REGTOKEN_PLAN_ROLE_ARN }}',
    ]);
    expect(JSON.stringify(plan)).not.toMatch(/aws-access-key-id|AWS_SECRET_ACCESS_KEY/i);
  });

  it('publishes the plan as the job summary and as one updated PR comment', () => {
    const steps = (workflow.jobs.plan as Job).steps;
    const plan = steps.find((s) => s.name === 'Plan');
    expect(plan?.run).toContain('>> "$GITHUB_STEP_SUMMARY"');
    const comment = steps.find((s) => s.uses?.startsWith('actions/github-script'));
    expect(comment?.if).toContain('always()');
    expect(comment?.with?.script).toContain('<!-- regtoken-plan -->');
    expect(comment?.with?.script).toContain('updateComment');
  });

  it('uploads only from main, after validating, with the upload role', () => {
    const upload = workflow.jobs.upload as Job;
    expect(upload.if).toBe(
      "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'",
    );
    expect(upload.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    const names = upload.steps.map((s) => s.name ?? s.uses);
    expect(names.indexOf('Validate')).toBeLessThan(names.indexOf('Upload (mints at once)'));
    const aws = upload.steps.find((s) =>
      s.uses?.startsWith('aws-actions/configure-aws-credentials'),
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression
    expect(aws?.with?.['role-to-assume']).toBe('${{ vars.REGTOKEN_UPLOAD_ROLE_ARN }}');
    expect(upload.steps.at(-1)?.run).toBe(
      'aws s3 cp "$GRANTS_FILE" "$CONFIG_OBJECT" --content-type application/yaml --only-show-errors',
    );
  });

  it('installs regtoken from its repository at a pinned ref and puts bin/ on PATH', () => {
    for (const job of Object.values(workflow.jobs)) {
      const checkout = job.steps.find((s) => s.with?.path === '.regtoken');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression
      expect(checkout?.with?.ref).toBe('${{ vars.REGTOKEN_REF }}');
      const install = job.steps.find((s) => s.name === 'Install regtoken');
      expect(install?.run).toContain('(cd .regtoken && npm ci');
      expect(install?.run).toContain('echo "$GITHUB_WORKSPACE/.regtoken/bin" >> "$GITHUB_PATH"');
    }
  });
});

describe('examples/config-repo/grants.yaml', () => {
  it('is valid', async () => {
    const r = await cli(['validate', `${REPO}grants.yaml`]);
    expect(r).toEqual({
      code: 0,
      stdout: `${REPO}grants.yaml: valid (2 grants, 3 principals)\n`,
      stderr: '',
    });
  });

  it('plans as a first rollout when nothing is deployed', async () => {
    const r = await cli(['plan', '--to', `${REPO}grants.yaml`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Principals: 3 added, 0 changed, 0 removed, 0 unchanged');
  });
});
