/**
 * The two credential protocols as pure functions: Docker's credential-helper protocol
 * (docker/docker-credential-helpers: the action, the answers, the exact "not found" text) and
 * the kubelet's credentialprovider.kubelet.k8s.io/v1 (request checks, image hosts, the
 * response's field names and Go duration format).
 */

import { describe, expect, it } from '@jest/globals';
import {
  CREDENTIALS_NOT_FOUND,
  getAnswer,
  goDuration,
  helperAction,
  imageHost,
  listAnswer,
  providerRequestImage,
  providerResponse,
  serverUrl,
} from '../../lambda/core/credential-protocols.js';
import { InputError, UsageError } from '../../lambda/errors.js';

const V1 = 'credentialprovider.kubelet.k8s.io/v1';

describe('Docker credential-helper protocol', () => {
  it('uses the exact text Docker and containers/image take as "no credentials"', () => {
    // docker-credential-helpers credentials/error.go: errCredentialsNotFoundMessage
    expect(CREDENTIALS_NOT_FOUND).toBe('credentials not found in native keychain');
  });

  it.each(['get', 'store', 'erase', 'list', 'version'])('accepts the action %s', (a) => {
    expect(helperAction(a)).toBe(a);
  });

  it.each([
    [undefined, 'docker-credential-regtoken needs an action: get, store, erase, list, version'],
    [
      'fetch',
      'unknown action "fetch": docker-credential-regtoken takes get, store, erase, list, version',
    ],
  ])('refuses the action %s as a usage error', (arg, message) => {
    expect(() => helperAction(arg)).toThrow(UsageError);
    expect(() => helperAction(arg)).toThrow(message);
  });

  it("reads the server URL from stdin, trimmed; an empty one is the helpers' own error", () => {
    expect(serverUrl('registry.example.com\n')).toBe('registry.example.com');
    expect(() => serverUrl(' \n')).toThrow(new InputError('no credentials server URL'));
  });

  it('answers get with the server URL as asked, username regtoken and the token', () => {
    expect(getAnswer('https://registry.example.com', 'a.b.c')).toBe(
      '{"ServerURL":"https://registry.example.com","Username":"regtoken","Secret":"a.b.c"}\n',
    );
  });

  it('lists the served hosts with their username', () => {
    expect(JSON.parse(listAnswer(['a.example.com', 'b.example.com:5000']))).toEqual({
      'a.example.com': 'regtoken',
      'b.example.com:5000': 'regtoken',
    });
    expect(listAnswer([])).toBe('{}\n');
  });
});

describe('kubelet credential provider v1: the request', () => {
  const request = (fields: Record<string, unknown>) =>
    JSON.stringify({ apiVersion: V1, kind: 'CredentialProviderRequest', ...fields });

  it('takes the image of a v1 request, ignoring fields it does not use', () => {
    expect(providerRequestImage(request({ image: 'registry.example.com/team-a/app:1' }))).toBe(
      'registry.example.com/team-a/app:1',
    );
    expect(
      providerRequestImage(
        request({ image: 'registry.example.com/x', serviceAccountToken: 'sa', extra: 1 }),
      ),
    ).toBe('registry.example.com/x');
  });

  it.each([
    [
      'another apiVersion (v1beta1)',
      request({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1', image: 'r.io/x' }),
      `unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1beta1": regtoken-credential-provider speaks ${V1}; set apiVersion: ${V1} for it in the kubelet's CredentialProviderConfig`,
    ],
    [
      'another apiVersion (v1alpha1)',
      request({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1alpha1', image: 'r.io/x' }),
      /^unsupported apiVersion "credentialprovider\.kubelet\.k8s\.io\/v1alpha1"/,
    ],
    ['no apiVersion', JSON.stringify({ image: 'r.io/x' }), /^unsupported apiVersion null:/],
    [
      'another kind',
      request({ kind: 'CredentialProviderResponse', image: 'r.io/x' }),
      'kind "CredentialProviderResponse" is not CredentialProviderRequest: regtoken-credential-provider answers only those',
    ],
    ['no image', request({}), 'the CredentialProviderRequest has no image'],
    ['an empty image', request({ image: ' ' }), 'the CredentialProviderRequest has no image'],
    [
      'an image that is not a string',
      request({ image: 3 }),
      'the CredentialProviderRequest has no image',
    ],
    ['not JSON', 'image: r.io/x', /^stdin is not a CredentialProviderRequest \(not JSON\)/],
    ['a JSON array', '[]', 'stdin is not a CredentialProviderRequest (not a JSON object)'],
  ])('refuses %s', (_what, stdin, message) => {
    expect(() => providerRequestImage(stdin)).toThrow(InputError);
    expect(() => providerRequestImage(stdin)).toThrow(message);
  });

  it.each([
    ['registry.example.com/team-a/app:1.2', 'registry.example.com'],
    ['registry.example.com:5000/app@sha256:abc', 'registry.example.com:5000'],
    ['127.0.0.1:5000/team-a/app', '127.0.0.1:5000'],
    ['localhost/app', 'localhost'],
    ['Registry.Example.com/app', 'registry.example.com'],
    ['nginx', 'docker.io'],
    ['library/nginx:1', 'docker.io'],
    ['team/app', 'docker.io'],
  ])('the image %s is on %s', (image, host) => {
    expect(imageHost(image)).toBe(host);
  });
});

describe('kubelet credential provider v1: the response', () => {
  it.each([
    [0, '0s'],
    [45, '45s'],
    [60, '1m0s'],
    [3599, '59m59s'],
    [3600, '1h0m0s'],
    [21_570, '5h59m30s'],
    [90_061.9, '25h1m1s'],
    [-5, '0s'],
  ])('%s s prints as Go prints a time.Duration: %s', (seconds, text) => {
    expect(goDuration(seconds)).toBe(text);
  });

  it('has exactly the v1 fields: Registry key, half the remaining lifetime, username and password', () => {
    const response = JSON.parse(providerResponse('registry.example.com:5000', 'a.b.c', 7200));
    expect(response).toEqual({
      apiVersion: V1,
      kind: 'CredentialProviderResponse',
      cacheKeyType: 'Registry',
      cacheDuration: '1h0m0s',
      auth: { 'registry.example.com:5000': { username: 'regtoken', password: 'a.b.c' } },
    });
    expect(Object.keys(response)).toEqual([
      'apiVersion',
      'kind',
      'cacheKeyType',
      'cacheDuration',
      'auth',
    ]);
  });
});
