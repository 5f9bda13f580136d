/**
 * The real clients against the real registry, whose `auth.token.realm` is a STAND-IN token
 * endpoint defined in this file (regtoken's own realm endpoint is not part of this file). The
 * stand-in records every request and answers with a token minted by test/helpers/tokens.ts for
 * exactly the access requested. What this file proves: each helper drives its client end to
 * end, and each client asks the realm as recorded below.
 *
 * Request shapes observed (Debian bookworm: docker.io 20.10.24, containerd and ctr 1.6.20,
 * skopeo 1.9.3), all asserted below. SERVICE is the registry's `auth.token.service`, USER and
 * PASSWORD what the client was given (PASSWORD is a pre-minted token here), NAME the repository.
 * Every token request goes to the realm's path (`/token`); form bodies are urlencoded.
 *
 * Docker engine (the daemon asks the realm, not the CLI; User-Agent `docker/20.10.24…`):
 * - `docker login -u USER --password-stdin HOST`: GET ?account=USER&client_id=docker&
 *   offline_token=true&service=SERVICE, NO scope, `Authorization: Basic base64(USER:PASSWORD)`.
 *   Then GET /v2/ on the registry with the answer, which must accept it with an empty `access`.
 *   Stores `auths[HOST].auth = base64(USER:PASSWORD)`. If the realm answers 401, login fails with
 *   `Error response from daemon: Get "http://HOST/v2/": unauthorized: <errors[0].message>`. An
 *   answer carrying a `refresh_token` is stored as `identitytoken` and the password dropped, so
 *   the endpoint must never send one.
 * - `docker push` / `docker pull` after login: GET ?account=USER&scope=repository:NAME:push,pull
 *   (push, in that order) or scope=repository:NAME:pull, &service=SERVICE, with Basic; no
 *   client_id, no offline_token.
 * - `identitytoken` in config.json: POST (content type `application/x-www-form-urlencoded`)
 *   client_id=docker&grant_type=refresh_token&refresh_token=TOKEN&scope=…&service=SERVICE, no
 *   Authorization header.
 *
 * containerd's docker authorizer: `ctr images pull --user USER:PASSWORD` and the CRI PullImage
 * with `AuthConfig{username, password}` (User-Agent `containerd/1.6.20~ds1`):
 * - POST (`application/x-www-form-urlencoded; charset=utf-8`) client_id=containerd-client&
 *   grant_type=password&password=PASSWORD&scope=repository:NAME:pull&service=SERVICE&
 *   username=USER, no Authorization header.
 * - If that POST answers 400, 401, 404 or 405 it asks once more with GET ?scope=…&service=SERVICE
 *   (no account, no client_id) and Basic; any other status (403 tried) fails the pull at once.
 *   So a wrong password costs two requests (POST 401, GET 401), and the user sees only
 *   `failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized`,
 *   not the endpoint's message.
 * - `ctr --refresh TOKEN` and `AuthConfig{identity_token}`: POST grant_type=refresh_token&
 *   refresh_token=TOKEN (client_id=containerd-client, scope, service).
 * - `AuthConfig{registry_token}` is ignored by the CRI: it asks anonymously (GET, no
 *   Authorization) and the pull fails.
 * - containerd 1.6.20 serves the CRI as runtime.v1 and runtime.v1alpha2 (same behaviour), and
 *   its CRI talks plain HTTP to a registry on 127.0.0.1 without any registry configuration.
 *
 * skopeo (containers/image; User-Agent `skopeo/1.9.3`):
 * - `--creds USER:PASSWORD`: GET ?account=USER&scope=repository:NAME:pull (`pull,push` for a
 *   push, in that order) &service=SERVICE with Basic. A 401 shows the endpoint's message:
 *   `unable to retrieve auth token: invalid username/password: unauthorized: <message>`.
 * - auth file entry `{auth: base64(USER + ':'), identitytoken: TOKEN}`: POST
 *   (`application/x-www-form-urlencoded`) client_id=containers/image&grant_type=refresh_token&
 *   refresh_token=TOKEN&scope=…&service=SERVICE. Without the `auth` field the identity token is
 *   ignored and skopeo asks anonymously.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CRI_NAMESPACE, type RunningContainerd, startContainerd } from '../helpers/containerd.js';
import { type CriClient, connectCri } from '../helpers/cri.js';
import { type DockerEngine, startDockerEngine } from '../helpers/docker.js';
import { livingProcessesInGroups, run, startedProcessGroups } from '../helpers/process.js';
import { type RunningRegistry, startRegistry } from '../helpers/registry.js';
import { pullImage, pushImage, skopeo } from '../helpers/skopeo.js';
import { makeTempDir, removeMountedTempDir, removeTempDir } from '../helpers/tmp.js';
import {
  type AccessEntry,
  createSigningKey,
  signTestToken,
  type TestSigningKey,
} from '../helpers/tokens.js';

const SERVICE = 'registry.test';
const ISSUER = 'regtoken-clients';
const USER = 'regtoken';
/** Pushed in beforeAll with a bearer token; every client pulls it. */
const SEEDED = 'team-a/app';
const FORM = 'application/x-www-form-urlencoded';

// ---------------------------------------------------------------------------------------------
// STAND-IN for regtoken's token endpoint (the registry's realm). Not the product: it accepts
// one fixed secret and mints a fresh token for whatever access is asked, so that the clients
// complete their flows and the requests they make can be recorded.
// ---------------------------------------------------------------------------------------------

/** One request the stand-in received. */
interface TokenRequest {
  method: string;
  path: string;
  /** Query parameters in order; a repeated name appears more than once. */
  query: [string, string][];
  contentType: string | undefined;
  /** The urlencoded body of a POST. */
  form: Record<string, string> | undefined;
  /** `Authorization` scheme (`Basic`, `Bearer`), undefined without the header. */
  authScheme: string | undefined;
  basic: { username: string; password: string } | undefined;
  userAgent: string | undefined;
  /** What the stand-in answered. */
  status: number;
}

interface StandIn {
  url: string;
  requests: TokenRequest[];
  /** Answer every POST with this status (to see who falls back to GET). */
  postStatus: number | undefined;
  /** Add this `refresh_token` to successful answers. */
  refreshToken: string | undefined;
  reset(): void;
  close(): Promise<void>;
}

/** `repository:team-a/app:pull,push` → an access entry (the name may not contain ':'). */
function accessOf(scope: string): AccessEntry | undefined {
  const m = /^([^:]+):([^:]+):(.*)$/.exec(scope);
  return m ? { type: m[1] ?? '', name: m[2] ?? '', actions: (m[3] ?? '').split(',') } : undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function basicOf(header: string | undefined): TokenRequest['basic'] {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function startStandIn(signer: TestSigningKey, secret: string): Promise<StandIn> {
  const state: StandIn = {
    url: '',
    requests: [],
    postStatus: undefined,
    refreshToken: undefined,
    reset: () => {
      state.requests = [];
      state.postStatus = undefined;
      state.refreshToken = undefined;
    },
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const body = await readBody(req);
      const params = req.method === 'POST' ? new URLSearchParams(body) : undefined;
      const record: TokenRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: [...url.searchParams],
        contentType: req.headers['content-type'],
        form: params && Object.fromEntries(params),
        authScheme: req.headers.authorization?.split(' ')[0],
        basic: basicOf(req.headers.authorization),
        userAgent: req.headers['user-agent'],
        status: 0,
      };
      state.requests.push(record);
      const answer = (status: number, json: unknown): void => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (params !== undefined && state.postStatus !== undefined) {
        answer(state.postStatus, {
          errors: [{ code: 'UNSUPPORTED', message: 'stand-in: no POST' }],
        });
        return;
      }
      const grant = params?.get('grant_type');
      const [presented, subject, scopes] =
        params === undefined
          ? [record.basic?.password, record.basic?.username, url.searchParams.getAll('scope')]
          : [
              grant === 'password' ? params.get('password') : params.get('refresh_token'),
              grant === 'password' ? params.get('username') : 'identity-token',
              (params.get('scope') ?? '').split(' ').filter((s) => s !== ''),
            ];
      if (presented !== secret) {
        answer(401, { errors: [{ code: 'UNAUTHORIZED', message: 'stand-in: bad credentials' }] });
        return;
      }
      const access = scopes.map(accessOf).filter((a): a is AccessEntry => a !== undefined);
      const token = signTestToken(signer.privateKey, {
        issuer: ISSUER,
        service: SERVICE,
        subject: subject ?? '',
        access,
      });
      const common = {
        expires_in: 300,
        issued_at: new Date().toISOString(),
        ...(state.refreshToken === undefined ? {} : { refresh_token: state.refreshToken }),
      };
      answer(
        200,
        params === undefined
          ? { token, access_token: token, ...common }
          : { access_token: token, scope: scopes.join(' '), ...common },
      );
    })().catch((err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

// ---------------------------------------------------------------------------------------------

/** Query parameters as an object; a repeated name becomes an array. */
function queryOf(r: TokenRequest): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of r.query) {
    const prev = out[key];
    out[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('real clients against the registry and a stand-in token endpoint', () => {
  let workDir = '';
  let signer: TestSigningKey;
  /** The secret every client presents: a pre-minted token, as regtoken's endpoint will take. */
  let password = '';
  let standIn: StandIn | undefined;
  let registry: RunningRegistry | undefined;
  let engine: DockerEngine | undefined;
  let containerd: RunningContainerd | undefined;
  const stand = (): StandIn => standIn ?? fail('stand-in not started');
  const reg = (): RunningRegistry => registry ?? fail('registry not started');
  const dockerd = (): DockerEngine => engine ?? fail('dockerd not started');
  const ctrd = (): RunningContainerd => containerd ?? fail('containerd not started');
  const ref = (repo: string): string => `${reg().host}/${repo}:latest`;
  /** Requests the stand-in saw since the last reset (each test starts with none). */
  const seen = () => stand().requests;

  beforeAll(async () => {
    workDir = await makeTempDir('clients');
    signer = await createSigningKey(workDir, 'signer');
    password = signTestToken(signer.privateKey, {
      issuer: ISSUER,
      service: SERVICE,
      subject: 'client',
      access: [],
    });
    standIn = await startStandIn(signer, password);
    [registry, engine, containerd] = await Promise.all([
      startRegistry({
        service: SERVICE,
        issuer: ISSUER,
        rootCertBundlePath: signer.certPath,
        realm: standIn.url,
      }),
      startDockerEngine(),
      startContainerd(),
    ]);
    const bearer = signTestToken(signer.privateKey, {
      issuer: ISSUER,
      service: SERVICE,
      access: [{ type: 'repository', name: SEEDED, actions: ['pull', 'push'] }],
    });
    const seeded = await pushImage(registry.host, SEEDED, bearer);
    if (!seeded.ok) throw new Error(`seeding ${SEEDED} failed: ${seeded.stderr}`);
    await engine.loadTestImage(`${registry.host}/team-a/pushed:latest`, {
      content: 'pushed by docker\n',
    });
  }, 120_000);

  beforeEach(() => stand().reset());

  afterAll(async () => {
    const dirs = [engine?.dir, containerd?.dir].filter((d): d is string => d !== undefined);
    await Promise.all([engine?.stop(), containerd?.stop(), registry?.stop(), standIn?.close()]);
    await removeTempDir(workDir);
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
  }, 60_000);

  describe('Docker engine', () => {
    it('docker login: GET with Basic and no scope, then GET /v2/ with the answer; logout', async () => {
      const config = await dockerd().clientConfig();
      const logBefore = reg().logs().length;
      const login = await dockerd().login(config, reg().host, USER, password);
      expect(login.code).toBe(0);
      expect(login.stdout).toContain('Login Succeeded');
      expect(seen()).toHaveLength(1);
      const [request] = seen();
      expect(request).toMatchObject({ method: 'GET', path: '/token', status: 200 });
      expect(request?.basic).toEqual({ username: USER, password });
      expect(queryOf(request as TokenRequest)).toEqual({
        account: USER,
        client_id: 'docker',
        offline_token: 'true',
        service: SERVICE,
      });
      expect(request?.userAgent).toMatch(/^docker\/20\.10\./);
      // The daemon checks the answer on the registry: GET /v2/ with it, accepted.
      expect(reg().logs().slice(logBefore)).toMatch(/"GET \/v2\/ HTTP\/1\.1" 200 .*"docker\//);
      const stored = JSON.parse(await readFile(`${config}/config.json`, 'utf8'));
      expect(stored.auths).toEqual({ [reg().host]: { auth: b64(`${USER}:${password}`) } });

      const logout = await dockerd().logout(config, reg().host);
      expect(logout.code).toBe(0);
      expect(JSON.parse(await readFile(`${config}/config.json`, 'utf8')).auths).toEqual({});
    }, 30_000);

    it("docker login with a wrong password fails with the endpoint's message", async () => {
      const config = await dockerd().clientConfig();
      const login = await dockerd().login(config, reg().host, USER, 'not-the-token');
      expect(login.code).toBe(1);
      expect(login.stderr.trim()).toBe(
        `Error response from daemon: Get "http://${reg().host}/v2/": unauthorized: stand-in: bad credentials`,
      );
      expect(seen().map((r) => [r.method, r.status, r.basic?.password])).toEqual([
        ['GET', 401, 'not-the-token'],
      ]);
      expect(JSON.parse(await readFile(`${config}/config.json`, 'utf8')).auths).toEqual({});
    }, 30_000);

    it('docker login keeps a refresh_token answer as identitytoken and drops the password', async () => {
      stand().refreshToken = 'refresh-from-the-endpoint';
      const config = await dockerd().clientConfig();
      const login = await dockerd().login(config, reg().host, USER, password);
      expect(login.code).toBe(0);
      const stored = JSON.parse(await readFile(`${config}/config.json`, 'utf8'));
      expect(stored.auths).toEqual({
        [reg().host]: { auth: b64(`${USER}:`), identitytoken: 'refresh-from-the-endpoint' },
      });
    }, 30_000);

    it('docker push asks for push,pull and docker pull for pull, each with GET and Basic', async () => {
      const config = await dockerd().clientConfig();
      expect((await dockerd().login(config, reg().host, USER, password)).code).toBe(0);
      stand().reset();
      const image = ref('team-a/pushed');
      const push = await dockerd().push(config, image);
      expect(push.stderr).toBe('');
      expect(push.code).toBe(0);
      const digest = /latest: digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
      expect(digest).toBeDefined();
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'GET', status: 200, basic: { username: USER } });
        expect(request.basic?.password).toBe(password);
        expect(queryOf(request)).toEqual({
          account: USER,
          scope: 'repository:team-a/pushed:push,pull',
          service: SERVICE,
        });
      }

      expect((await dockerd().removeImage(image)).code).toBe(0);
      stand().reset();
      const pull = await dockerd().pull(config, image);
      expect(pull.code).toBe(0);
      expect(pull.stdout).toContain(`Digest: ${digest}`);
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'GET', status: 200, authScheme: 'Basic' });
        expect(queryOf(request)).toEqual({
          account: USER,
          scope: 'repository:team-a/pushed:pull',
          service: SERVICE,
        });
      }
    }, 60_000);

    it('docker pull with an identitytoken in config.json: POST grant_type=refresh_token', async () => {
      const config = await dockerd().clientConfig({
        auths: { [reg().host]: { auth: b64(`${USER}:`), identitytoken: password } },
      });
      const pull = await dockerd().pull(config, ref(SEEDED));
      expect(pull.code).toBe(0);
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'POST', contentType: FORM, status: 200 });
        expect(request.authScheme).toBeUndefined();
        expect(request.form).toEqual({
          client_id: 'docker',
          grant_type: 'refresh_token',
          refresh_token: password,
          scope: `repository:${SEEDED}:pull`,
          service: SERVICE,
        });
      }
      expect((await dockerd().removeImage(ref(SEEDED))).code).toBe(0);
    }, 60_000);
  });

  describe('containerd', () => {
    const passwordForm = (): Record<string, string> => ({
      client_id: 'containerd-client',
      grant_type: 'password',
      password,
      scope: `repository:${SEEDED}:pull`,
      service: SERVICE,
      username: USER,
    });

    it('ctr images pull --user: POST grant_type=password first, no GET when it succeeds', async () => {
      const pull = await ctrd().pull(ref(SEEDED), { user: USER, password });
      expect(pull.code).toBe(0);
      expect(await ctrd().images()).toContain(ref(SEEDED));
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({
          method: 'POST',
          path: '/token',
          contentType: `${FORM}; charset=utf-8`,
          status: 200,
          query: [],
        });
        expect(request.authScheme).toBeUndefined();
        expect(request.form).toEqual(passwordForm());
        expect(request.userAgent).toMatch(/^containerd\/1\.6\./);
      }
    }, 30_000);

    it.each([400, 401, 404, 405])(
      'ctr falls back to GET with Basic when the POST answers %i',
      async (status) => {
        stand().postStatus = status;
        // A fresh namespace has no image yet, so ctr resolves (and authenticates) again.
        const pull = await ctrd().pull(
          ref(SEEDED),
          { user: USER, password },
          { namespace: `fallback-${status}` },
        );
        expect(pull.code).toBe(0);
        const [post, get, ...rest] = seen();
        expect(post).toMatchObject({ method: 'POST', status, form: passwordForm() });
        expect(get).toMatchObject({ method: 'GET', status: 200, authScheme: 'Basic' });
        expect(get?.basic).toEqual({ username: USER, password });
        expect(queryOf(get as TokenRequest)).toEqual({
          scope: `repository:${SEEDED}:pull`,
          service: SERVICE,
        });
        // Any further token request repeats the same pair.
        expect(rest.map((r) => r.method)).toEqual(rest.map((_, i) => (i % 2 ? 'GET' : 'POST')));
      },
      30_000,
    );

    it('ctr does not fall back when the POST answers 403: the pull fails', async () => {
      stand().postStatus = 403;
      const pull = await ctrd().pull(
        ref(SEEDED),
        { user: USER, password },
        { namespace: 'no-fallback' },
      );
      expect(pull.code).not.toBe(0);
      expect(pull.stderr).toContain('failed to fetch oauth token: unexpected status: 403');
      expect(seen().map((r) => [r.method, r.status])).toEqual([['POST', 403]]);
    }, 30_000);

    it('ctr images pull --refresh: POST grant_type=refresh_token', async () => {
      const pull = await ctrd().pull(
        ref(SEEDED),
        { refreshToken: password },
        { namespace: 'refresh' },
      );
      expect(pull.code).toBe(0);
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'POST', status: 200 });
        expect(request.authScheme).toBeUndefined();
        expect(request.form).toEqual({
          client_id: 'containerd-client',
          grant_type: 'refresh_token',
          refresh_token: password,
          scope: `repository:${SEEDED}:pull`,
          service: SERVICE,
        });
      }
    }, 30_000);
  });

  describe('CRI image service (what a kubelet calls)', () => {
    it('containerd 1.6 serves CRI runtime.v1 and runtime.v1alpha2', async () => {
      for (const apiVersion of ['v1', 'v1alpha2'] as const) {
        const cri = connectCri(ctrd().socket, apiVersion);
        try {
          expect(await cri.version()).toMatchObject({
            runtime_name: 'containerd',
            runtime_version: expect.stringMatching(/^1\.6\./),
            runtime_api_version: apiVersion,
          });
        } finally {
          cri.close();
        }
      }
    });

    it.each(['v1', 'v1alpha2'] as const)(
      'PullImage (%s) with AuthConfig{username, password}: POST grant_type=password',
      async (apiVersion) => {
        const cri: CriClient = connectCri(ctrd().socket, apiVersion);
        try {
          const image = ref(SEEDED);
          await cri.removeImage(image);
          expect(await cri.imageStatus(image)).toBeUndefined();
          stand().reset();
          const imageRef = await cri.pullImage(image, { username: USER, password });
          expect(imageRef).toMatch(/^sha256:[0-9a-f]{64}$/);
          const status = await cri.imageStatus(image);
          expect(status).toMatchObject({ id: imageRef, repo_tags: [image] });
          expect(await ctrd().images(CRI_NAMESPACE)).toContain(image);
          expect(seen().length).toBeGreaterThanOrEqual(1);
          for (const request of seen()) {
            expect(request).toMatchObject({ method: 'POST', status: 200 });
            expect(request.authScheme).toBeUndefined();
            expect(request.form).toEqual({
              client_id: 'containerd-client',
              grant_type: 'password',
              password,
              scope: `repository:${SEEDED}:pull`,
              service: SERVICE,
              username: USER,
            });
          }
        } finally {
          cri.close();
        }
      },
      30_000,
    );

    it('PullImage with AuthConfig{identity_token}: POST grant_type=refresh_token', async () => {
      const cri = connectCri(ctrd().socket);
      try {
        await cri.removeImage(ref(SEEDED));
        stand().reset();
        await cri.pullImage(ref(SEEDED), { identity_token: password });
        expect(seen().length).toBeGreaterThanOrEqual(1);
        for (const request of seen()) {
          expect(request).toMatchObject({ method: 'POST', status: 200 });
          expect(request.form).toMatchObject({
            grant_type: 'refresh_token',
            refresh_token: password,
            client_id: 'containerd-client',
          });
        }
      } finally {
        cri.close();
      }
    }, 30_000);

    it('PullImage ignores AuthConfig{registry_token}: it asks anonymously and fails', async () => {
      const cri = connectCri(ctrd().socket);
      try {
        await cri.removeImage(ref(SEEDED));
        stand().reset();
        await expect(cri.pullImage(ref(SEEDED), { registry_token: password })).rejects.toThrow(
          'failed to fetch anonymous token: unexpected status: 401',
        );
        expect(seen().map((r) => [r.method, r.authScheme, r.status])).toEqual([
          ['GET', undefined, 401],
        ]);
      } finally {
        cri.close();
      }
    }, 30_000);
  });

  describe('skopeo (containers/image)', () => {
    it('--creds: GET with Basic for a pull and for a push', async () => {
      const pull = await pullImage(reg().host, SEEDED, { username: USER, password });
      expect({ ok: pull.ok, stderr: pull.stderr }).toEqual({ ok: true, stderr: '' });
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'GET', status: 200 });
        expect(request.basic).toEqual({ username: USER, password });
        expect(request.userAgent).toMatch(/^skopeo\//);
        expect(queryOf(request)).toEqual({
          account: USER,
          scope: `repository:${SEEDED}:pull`,
          service: SERVICE,
        });
      }

      stand().reset();
      const push = await pushImage(reg().host, 'team-a/skopeo', { username: USER, password });
      expect({ ok: push.ok, stderr: push.stderr }).toEqual({ ok: true, stderr: '' });
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'GET', status: 200 });
        expect(request.basic).toEqual({ username: USER, password });
        expect(queryOf(request)).toEqual({
          account: USER,
          scope: 'repository:team-a/skopeo:pull,push',
          service: SERVICE,
        });
      }
    }, 60_000);

    it('identitytoken in the auth file: POST grant_type=refresh_token', async () => {
      const pull = await pullImage(reg().host, SEEDED, { identityToken: password });
      expect({ ok: pull.ok, stderr: pull.stderr }).toEqual({ ok: true, stderr: '' });
      expect(seen().length).toBeGreaterThanOrEqual(1);
      for (const request of seen()) {
        expect(request).toMatchObject({ method: 'POST', contentType: FORM, status: 200 });
        expect(request.authScheme).toBeUndefined();
        expect(request.form).toEqual({
          client_id: 'containers/image',
          grant_type: 'refresh_token',
          refresh_token: password,
          scope: `repository:${SEEDED}:pull`,
          service: SERVICE,
        });
      }
    }, 30_000);
    it('an identitytoken entry without `auth` is ignored: skopeo asks anonymously', async () => {
      const res = await skopeo((sandbox) => {
        writeFileSync(
          sandbox.authFile,
          JSON.stringify({ auths: { [reg().host]: { identitytoken: password } } }),
        );
        return [
          'inspect',
          '--tls-verify=false',
          '--authfile',
          sandbox.authFile,
          `docker://${ref(SEEDED)}`,
        ];
      });
      expect(res.ok).toBe(false);
      expect(seen().map((r) => [r.method, r.authScheme, r.status])).toEqual([
        ['GET', undefined, 401],
      ]);
    }, 30_000);
  });

  describe('refused credentials', () => {
    const ctrMessage =
      'failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized';
    it.each([
      [
        'ctr',
        async () =>
          (
            await ctrd().pull(
              ref(SEEDED),
              { user: USER, password: 'wrong' },
              { namespace: 'refused' },
            )
          ).stderr,
        ctrMessage,
        [
          ['POST', 401],
          ['GET', 401],
        ],
      ],
      [
        'CRI PullImage',
        async () => {
          const cri = connectCri(ctrd().socket);
          try {
            await cri.removeImage(ref(SEEDED));
            await cri.pullImage(ref(SEEDED), { username: USER, password: 'wrong' });
            return 'pulled';
          } catch (err) {
            return (err as Error).message;
          } finally {
            cri.close();
          }
        },
        ctrMessage,
        [
          ['POST', 401],
          ['GET', 401],
        ],
      ],
      [
        'skopeo --creds',
        async () =>
          (await pullImage(reg().host, SEEDED, { username: USER, password: 'wrong' })).stderr,
        // containers/image, like Docker, shows the endpoint's own message.
        'unable to retrieve auth token: invalid username/password: unauthorized: stand-in: bad credentials',
        [['GET', 401]],
      ],
    ] as const)(
      '%s fails and says so',
      async (_client, attempt, message, requests) => {
        expect(await attempt()).toContain(message);
        expect(seen().map((r) => [r.method, r.status])).toEqual(requests);
      },
      30_000,
    );
  });
});

function fail(message: string): never {
  throw new Error(message);
}

describe('missing binaries', () => {
  it.each([
    ['dockerd', 'apt-get install -y docker.io', startDockerEngine],
    ['containerd', 'apt-get install -y containerd', () => startContainerd()],
  ] as const)(
    'fails loudly with an install hint when %s is not on PATH',
    async (name, hint, start) => {
      const savedPath = process.env.PATH;
      process.env.PATH = '/nonexistent-regtoken-bin';
      try {
        await expect(start()).rejects.toThrow(
          `required binary '${name}' not found on PATH; install it with: ${hint}`,
        );
      } finally {
        process.env.PATH = savedPath;
      }
    },
  );
});

describe('daemon state directories', () => {
  it('are removed even with something still mounted below them, which is unmounted first', async () => {
    const dir = await makeTempDir('mounted');
    const mountPoint = path.join(dir, 'state', 'layer');
    await mkdir(mountPoint, { recursive: true });
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    expect(mounted.stderr).toBe('');
    try {
      await writeFile(path.join(mountPoint, 'file'), 'on the tmpfs');
      expect(await readFile('/proc/self/mountinfo', 'utf8')).toContain(` ${mountPoint} `);
      await removeMountedTempDir(dir);
      expect(existsSync(dir)).toBe(false);
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(` ${mountPoint} `);
    } finally {
      // Only if the helper failed: leave nothing mounted or on disk.
      if ((await readFile('/proc/self/mountinfo', 'utf8')).includes(` ${mountPoint} `)) {
        await run('umount', ['-l', mountPoint]);
      }
      await removeTempDir(dir);
    }
  });
});

describe('process hygiene', () => {
  it('leaves no dockerd, containerd, ctr, docker or skopeo process behind', async () => {
    const groups = startedProcessGroups();
    expect(groups.length).toBeGreaterThan(10);
    const leftovers = await livingProcessesInGroups(groups);
    expect(leftovers.filter((p) => !p.args.startsWith('ps '))).toEqual([]);
    const ps = await run('ps', ['-eo', 'pid=,pgid=,args='], { timeoutMs: 10_000 });
    const ours = new Set(groups);
    expect(
      ps.stdout
        .split('\n')
        .filter((line) => /dockerd|containerd|ctr |docker |skopeo/.test(line))
        .filter((line) => ours.has(Number(line.trim().split(/\s+/)[1]))),
    ).toEqual([]);
  });
});
