/**
 * The token endpoint as AWS runs it: the function bundle CDK synthesizes for the construct's
 * `realm` option (local esbuild, ESM), imported by Node in its own process and invoked with
 * function-URL events, reading the trust bundle from the token bucket in the AWS stand-in.
 */

import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Stack } from 'aws-cdk-lib';
import { RegistryTokenMinter } from '../../infra/minter.js';
import { newApp, ROOT } from '../helpers/cdk.js';
import { cli } from '../helpers/cli.js';
import { awsChildEnv, type Moto, startMoto } from '../helpers/moto.js';
import { run } from '../helpers/process.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const BUCKET = 'realm-tokens';
const SERVICE = 'registry.example.com';

let dir = '';
let moto: Moto | undefined;
let bundle = '';
let token = '';

/** Invokes the bundled handler once per event, in a fresh Node process; returns its answers. */
async function invoke(events: unknown[]): Promise<{ statusCode: number; body: string }[]> {
  const file = join(dir, 'events.json');
  await writeFile(file, JSON.stringify(events));
  const r = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { handler } = await import(process.argv[1]);
       const events = JSON.parse((await import('node:fs')).readFileSync(process.argv[2], 'utf8'));
       const out = [];
       for (const e of events) out.push(await handler(e));
       process.stdout.write('RESULT ' + JSON.stringify(out) + '\\n');`,
      bundle,
      file,
    ],
    {
      env: {
        ...awsChildEnv((moto as Moto).endpoint),
        REGTOKEN_TRUST: `s3://${BUCKET}`,
        REGTOKEN_SERVICE: SERVICE,
        REGTOKEN_ISSUER: 'regtoken',
      },
      timeoutMs: 60_000,
    },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`the bundled handler failed (${r.code}): ${r.stderr}`);
  return JSON.parse(line.slice(7));
}

function urlEvent(method: string, query: string, headers: Record<string, string>, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/token',
    rawQueryString: query,
    headers,
    requestContext: {
      http: {
        method,
        path: '/token',
        protocol: 'HTTP/1.1',
        sourceIp: '198.51.100.7',
        userAgent: 'test',
      },
    },
    ...(body === undefined
      ? { isBase64Encoded: false }
      : { body: Buffer.from(body).toString('base64'), isBase64Encoded: true }),
  };
}

beforeAll(async () => {
  dir = await makeTempDir('realm-lambda');
  // Synthesize the construct with the token endpoint, bundling for real.
  const app = newApp({ bundle: true });
  const stack = new Stack(app, 'RealmLambda');
  const minter = new RegistryTokenMinter(stack, 'Minter', {
    grantsFile: `${ROOT}examples/config-repo/grants.yaml`,
    realm: {},
  });
  const assembly = app.synth();
  const template = assembly.getStackByName('RealmLambda').template as {
    Resources: Record<string, { Properties: { Code?: { S3Key?: string } } }>;
  };
  const fnId = stack.getLogicalId(minter.realm?.function.node.defaultChild as never);
  const hash = template.Resources[fnId]?.Properties.Code?.S3Key?.replace(/\.zip$/, '');
  bundle = join(assembly.directory, `asset.${hash}`, 'index.mjs');

  // A local mint makes a token and its trust bundle; the bundle goes to the token bucket.
  const key = join(dir, 'key.pem');
  await writeFile(
    key,
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }),
    { mode: 0o600 },
  );
  const mint = await cli([
    'mint',
    '--config',
    `${ROOT}examples/grants.yaml`,
    '--out',
    join(dir, 'out'),
    '--signing-key',
    key,
  ]);
  if (mint.code !== 0) throw new Error(mint.stderr);
  token = (
    JSON.parse(readFileSync(join(dir, 'out/tokens/111122223333/role/ci-runner.json'), 'utf8')) as {
      token: string;
    }
  ).token;
  moto = await startMoto();
  const s3 = new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: 'trust/bundle.pem',
      Body: readFileSync(join(dir, 'out/trust-bundle.pem')),
    }),
  );
}, 240_000);

afterAll(async () => {
  await moto?.stop();
  await removeTempDir(dir);
});

describe('the synthesized token endpoint function', () => {
  it('is an ES module bundle of the realm handler', () => {
    expect(existsSync(bundle)).toBe(true);
  });

  it('answers GET and POST (base64 body) from the trust bundle in the token bucket', async () => {
    const basic = `Basic ${Buffer.from(`regtoken:${token}`).toString('base64')}`;
    const expired = token.replace(
      /\.[^.]*\./,
      `.${Buffer.from(JSON.stringify({ iss: 'regtoken', aud: SERVICE, exp: 1 })).toString('base64url')}.`,
    );
    const [get, post, forged, noService] = await invoke([
      urlEvent('GET', `service=${SERVICE}&scope=repository:team-a/app:pull`, {
        authorization: basic,
      }),
      urlEvent(
        'POST',
        '',
        { 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({
          grant_type: 'password',
          username: 'regtoken',
          password: token,
          service: SERVICE,
          scope: 'repository:team-a/app:pull',
        }).toString(),
      ),
      urlEvent('GET', `service=${SERVICE}`, {
        authorization: `Basic ${Buffer.from(`regtoken:${expired}`).toString('base64')}`,
      }),
      urlEvent('GET', '', { authorization: basic }),
    ]);
    expect(get?.statusCode).toBe(200);
    expect(JSON.parse(get?.body ?? '')).toMatchObject({ token, access_token: token });
    expect(post?.statusCode).toBe(200);
    expect(JSON.parse(post?.body ?? '')).toMatchObject({
      access_token: token,
      scope: 'repository:team-a/app:pull',
    });
    expect(forged?.statusCode).toBe(401);
    expect(noService?.statusCode).toBe(400);
  }, 60_000);
});
