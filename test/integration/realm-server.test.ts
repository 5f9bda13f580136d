import { generateKeyPairSync } from 'node:crypto';
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cli } from '../helpers/cli.js';
import { type RunningRealm, startRealm } from '../helpers/realm.js';
import { runRegtoken } from '../helpers/regtoken.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

/**
 * `regtoken realm` as a process: it answers the protocol over real HTTP, survives hundreds of
 * malformed requests, enforces its size limits, picks up a new trust bundle without a restart,
 * and stops cleanly on SIGTERM. Tokens and bundles come from `regtoken mint`.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const SERVICE = 'registry.example.com';

let dir: string;
let realm: RunningRealm;
let tokenA: string; // signed with key A, whose bundle the realm serves
let tokenB: string; // signed with key B

async function mint(out: string, key: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await writeFile(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const res = await runRegtoken(
    [
      'mint',
      '--config',
      path.join(ROOT, 'examples/grants.yaml'),
      '--out',
      out,
      '--signing-key',
      key,
    ],
    { HOME: dir },
  );
  if (res.code !== 0) throw new Error(`mint failed: ${res.stderr}`);
  const doc = JSON.parse(
    await readFile(path.join(out, 'tokens/111122223333/role/ci-runner.json'), 'utf8'),
  ) as { token: string };
  return doc.token;
}

const basic = (password: string, user = 'regtoken') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function ask(
  token: string,
  query = `service=${SERVICE}&scope=repository:team-a/app:pull`,
  user = 'regtoken',
): Promise<Response> {
  return fetch(`${realm.tokenUrl}?${query}`, { headers: { authorization: basic(token, user) } });
}

/** Sends raw bytes and returns the status line's code (0 when the server just closed). */
function raw(bytes: string | Buffer): Promise<number> {
  const { port } = new URL(realm.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString('latin1');
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'ECONNRESET' || err.code === 'EPIPE'
        ? resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0))
        : reject(err),
    );
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0)));
    socket.end(bytes);
  });
}

beforeAll(async () => {
  dir = await makeTempDir('realm-server');
  tokenA = await mint(path.join(dir, 'a'), path.join(dir, 'a.pem'));
  tokenB = await mint(path.join(dir, 'b'), path.join(dir, 'b.pem'));
  await copyFile(path.join(dir, 'a/trust-bundle.pem'), path.join(dir, 'bundle.pem'));
  realm = await startRealm({
    trust: path.join(dir, 'bundle.pem'),
    service: SERVICE,
    issuer: 'regtoken',
  });
}, 120_000);

afterAll(async () => {
  await realm?.stop();
  await removeTempDir(dir);
});

describe('regtoken realm', () => {
  it('answers a minted token with itself, and refuses one of another key', async () => {
    const ok = await ask(tokenA);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    expect(await ok.json()).toMatchObject({ token: tokenA, access_token: tokenA });
    const refused = await ask(tokenB);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Basic realm="regtoken", charset="UTF-8"');
  });

  it('refuses headers over 32 KiB with 431 and bodies over 32 KiB with 413, and keeps serving', async () => {
    const huge = await fetch(`${realm.tokenUrl}?service=${SERVICE}`, {
      headers: { authorization: basic('x'.repeat(33 * 1024)) },
    }).catch(() => undefined);
    expect(huge?.status).toBe(431);
    const body = await fetch(realm.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&password=${'x'.repeat(40 * 1024)}`,
    });
    expect(body.status).toBe(413);
    expect((await ask(tokenA)).status).toBe(200);
  });

  it('answers a few hundred malformed requests with a 4xx each and keeps serving', async () => {
    // A seeded generator: the same requests on every run.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const junk = (n: number) =>
      Buffer.from(Array.from({ length: n }, () => rand(256))).toString('latin1');
    const parts = tokenA.split('.');
    const passwords = [
      '',
      'hunter2',
      'a.b',
      'a.b.c.d',
      `${parts[0]}.${parts[1]}`,
      `${parts[0]}.${parts[1]}.`,
      `${parts[0]}..${parts[2]}`,
      `${tokenA}x`,
      // A changed signature (in its middle: the last character also holds padding bits).
      `${parts[0]}.${parts[1]}.${(parts[2] ?? '').replace(/^(.{20})./, (_m, head: string) => `${head}${parts[2]?.[20] === 'A' ? 'B' : 'A'}`)}`,
      Buffer.from(junk(64), 'latin1').toString('base64url'),
    ];
    const headers = [
      'Basic',
      'Basic ',
      'Basic !!!!',
      'Basic cmVndG9rZW4=', // no colon
      `Basic ${Buffer.from(junk(40), 'latin1').toString('base64')}`,
      `Bearer ${tokenA}`,
      'Digest username="regtoken"',
      `basic${Buffer.from(`regtoken:${tokenA}`).toString('base64')}`,
    ];
    const statuses: number[] = [];
    const expect4xx = async (p: Promise<Response | number>) => {
      const r = await p;
      statuses.push(typeof r === 'number' ? r : r.status);
      if (typeof r !== 'number') await r.arrayBuffer();
    };
    for (const password of passwords)
      for (const user of ['regtoken', '', 'x'.repeat(300)])
        await expect4xx(ask(password, `service=${SERVICE}`, user));
    for (const header of headers)
      await expect4xx(
        fetch(`${realm.tokenUrl}?service=${SERVICE}`, { headers: { authorization: header } }),
      );
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS'])
      await expect4xx(fetch(realm.tokenUrl, { method, headers: { authorization: basic(tokenA) } }));
    for (const grant of [
      '',
      'client_credentials',
      'authorization_code',
      'PASSWORD',
      'password ',
      junk(8),
    ])
      await expect4xx(
        fetch(realm.tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=${encodeURIComponent(grant)}&password=${tokenA}&service=${SERVICE}`,
        }),
      );
    for (const body of [
      '%',
      '%zz=1',
      'grant_type=password&password=%E0%A4%A',
      '&&&',
      '=',
      junk(100),
    ])
      await expect4xx(
        fetch(realm.tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
        }),
      );
    for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', ''])
      await expect4xx(
        fetch(realm.tokenUrl, {
          method: 'POST',
          headers: { 'content-type': type },
          body: `grant_type=password&password=${tokenA}&service=${SERVICE}`,
        }),
      );
    for (const query of [
      'service=other',
      'scope=%zz',
      'scope=repository',
      `service=${SERVICE}&scope=${encodeURIComponent('a b:c:d')}`,
      `service=${SERVICE}&service=x`,
      'x'.repeat(40 * 1024),
    ])
      await expect4xx(ask(tokenA, query));
    for (const p of ['/', '/v2/', '/token/', '/TOKEN', '/token/../token'])
      await expect4xx(fetch(`${realm.url}${p}`, { headers: { authorization: basic(tokenA) } }));
    for (let i = 0; i < 200; i++) {
      const choice = rand(4);
      if (choice === 0)
        await expect4xx(ask(junk(rand(300)).replace(/[\r\n]/g, ''), `service=${SERVICE}`));
      else if (choice === 1)
        await expect4xx(
          fetch(`${realm.tokenUrl}?service=${SERVICE}`, {
            headers: {
              authorization: `Basic ${Buffer.from(junk(rand(200)), 'latin1').toString('base64')}`,
            },
          }),
        );
      else if (choice === 2)
        await expect4xx(
          fetch(realm.tokenUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: junk(rand(500)),
          }),
        );
      else
        await expect4xx(
          raw(
            `GET /token?service=${SERVICE} HTTP/1.1\r\nHost: x\r\nAuthorization: ${junk(rand(100)).replace(/[\r\n]/g, '')}\r\nConnection: close\r\n\r\n`,
          ),
        );
    }
    for (const bytes of [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      `GET /token HTTP/1.1\r\nHost: x\r\n${'X-A: b\r\n'.repeat(5000)}\r\n`,
      Buffer.from([0, 1, 2, 3, 255, 13, 10, 13, 10]),
    ])
      await expect4xx(raw(bytes));

    expect(statuses.length).toBeGreaterThanOrEqual(250);
    const bad = statuses.filter((s) => s < 400 || s > 499);
    expect(bad).toEqual([]);
    // Still serving, and the process never died.
    expect((await ask(tokenA)).status).toBe(200);
    expect(realm.process.exitCode()).toBeUndefined();
    // Nothing of a password reached the log.
    const log = realm.process.output();
    expect(log).not.toContain(parts[2]);
    expect(log).not.toContain('hunter2');
  }, 120_000);

  it('logs one JSON line per request with the principal, jti, scopes, client and outcome', async () => {
    await ask(tokenA, `service=${SERVICE}&scope=repository:team-a/app:pull,push`);
    const find = () =>
      realm
        .logLines()
        .find(
          (l) =>
            l.message === 'token request' &&
            JSON.stringify(l.scopes) === '["repository:team-a/app:pull,push"]',
        );
    // The line reaches this process through a pipe: give it a moment.
    for (let i = 0; i < 50 && !find(); i++) await new Promise((r) => setTimeout(r, 100));
    const line = find();
    expect(line).toMatchObject({
      level: 'INFO',
      sub: 'arn:aws:iam::111122223333:role/ci-runner',
      jti: expect.any(String),
      scopes: ['repository:team-a/app:pull,push'],
      granted: ['repository:team-a/app:pull,push'],
      client: '127.0.0.1',
      status: 200,
    });
  });

  it('picks up a new trust bundle without a restart', async () => {
    const pid = realm.process.pid;
    await copyFile(path.join(dir, 'b/trust-bundle.pem'), path.join(dir, 'bundle.next'));
    await rename(path.join(dir, 'bundle.next'), path.join(dir, 'bundle.pem'));
    const deadline = Date.now() + 20_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await ask(tokenB)).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe(200);
    expect((await ask(tokenA)).status).toBe(401);
    expect(realm.process.pid).toBe(pid);
    expect(realm.logLines()).toContainEqual(
      expect.objectContaining({ message: 'trust bundle loaded', previous: expect.any(String) }),
    );
  }, 30_000);

  it('keeps the last good bundle when the file turns bad', async () => {
    await copyFile(path.join(dir, 'a.pem'), path.join(dir, 'bundle.next')); // a private key
    await rename(path.join(dir, 'bundle.next'), path.join(dir, 'bundle.pem'));
    const deadline = Date.now() + 20_000;
    while (
      Date.now() < deadline &&
      !realm
        .logLines()
        .some((l) => l.message === 'trust bundle not reloaded; keeping the last good one')
    )
      await new Promise((r) => setTimeout(r, 250));
    expect((await ask(tokenB)).status).toBe(200);
    expect(realm.process.output()).not.toContain('PRIVATE KEY');
  }, 30_000);

  it('stops cleanly on SIGTERM', async () => {
    process.kill(realm.process.pid, 'SIGTERM');
    expect(await realm.process.exited).toBe(0);
    expect(realm.logLines().at(-1)).toMatchObject({ message: 'token endpoint stopped' });
  });
});

/** Start-up errors, in-process: they happen before the server listens. */
describe('regtoken realm, starting', () => {
  it.each([
    [['--service', SERVICE, '--issuer', 'regtoken'], 2, 'realm needs --trust'],
    [['--trust', 'x.pem', '--issuer', 'regtoken'], 2, 'realm needs --service NAME'],
    [['--trust', 'x.pem', '--service', SERVICE], 2, 'realm needs --issuer NAME'],
    [
      ['--trust', 'x.pem', '--service', SERVICE, '--issuer', 'r', '--listen', 'nowhere'],
      2,
      '--listen: "nowhere" is not HOST:PORT',
    ],
    [
      ['--trust', '/nonexistent/bundle.pem', '--service', SERVICE, '--issuer', 'r'],
      1,
      '/nonexistent/bundle.pem: no such file',
    ],
  ])('%j → exit %d', async (args, code, message) => {
    const res = await cli(['realm', ...args]);
    expect(res.code).toBe(code);
    expect(res.stderr).toContain(message);
  });

  it('refuses a private key as the trust bundle without printing it', async () => {
    const res = await cli([
      'realm',
      '--trust',
      path.join(dir, 'a.pem'),
      '--service',
      SERVICE,
      '--issuer',
      'regtoken',
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('a.pem: block 1 is a private key, not a certificate');
    expect(res.stderr).not.toContain('PRIVATE KEY');
  });
});
