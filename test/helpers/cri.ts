import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The CRI definitions this client speaks (a field-exact subset of upstream api.proto). */
const PROTO = fileURLToPath(new URL('../proto/cri-runtime-v1.proto', import.meta.url));

/**
 * CRI API versions. containerd 1.6 serves both; the kubelet uses v1 since Kubernetes 1.26 and
 * fell back to v1alpha2 before. The messages used here are identical on the wire in both.
 */
export type CriApiVersion = 'v1' | 'v1alpha2';

/** `runtime.v1.AuthConfig`: what a kubelet passes from an image pull secret or a credential provider. */
export interface CriAuthConfig {
  username?: string;
  password?: string;
  /** base64(`username:password`), as in a Docker config's `auth`. */
  auth?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
}

/** `runtime.v1.Image`, with the names of the proto (uint64 size as a decimal string). */
export interface CriImage {
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: string;
}

/** `runtime.v1.VersionResponse`. */
export interface CriVersion {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

/** A failed CRI call: the gRPC status code (name and number) and the runtime's message. */
export class CriError extends Error {
  override readonly name = 'CriError';
  /** The gRPC status name, e.g. `UNKNOWN`, `UNIMPLEMENTED`, `NOT_FOUND`. */
  readonly status: string;
  constructor(
    readonly method: string,
    readonly code: number,
    readonly details: string,
  ) {
    const status = grpc.status[code] ?? String(code);
    super(`CRI ${method} failed: ${status}: ${details}`);
    this.status = status;
  }
}

/** A CRI image and runtime client over a unix socket, made by {@link connectCri}. */
export interface CriClient {
  readonly apiVersion: CriApiVersion;
  /** `RuntimeService/Version`; rejects with `UNIMPLEMENTED` if the runtime lacks this version. */
  version(): Promise<CriVersion>;
  /**
   * `ImageService/PullImage` with `AuthConfig`, exactly as a kubelet pulls: the runtime resolves,
   * authenticates (with its own token client) and unpacks. Resolves with `image_ref` (the image
   * id); rejects with a {@link CriError} whose `details` is the runtime's message.
   */
  pullImage(image: string, auth?: CriAuthConfig): Promise<string>;
  /** `ImageService/ImageStatus`; undefined when the runtime does not have the image. */
  imageStatus(image: string): Promise<CriImage | undefined>;
  /** `ImageService/ListImages` (no filter). */
  listImages(): Promise<CriImage[]>;
  /** `ImageService/RemoveImage`; removing an absent image succeeds, as in the CRI spec. */
  removeImage(image: string): Promise<void>;
  /** Closes the gRPC channel. */
  close(): void;
}

type Unary = (
  request: unknown,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => void;

let definitions: protoLoader.PackageDefinition | undefined;

/**
 * The service under `runtime.<apiVersion>`: v1's definition with the method paths renamed
 * (`/runtime.v1alpha2.ImageService/PullImage`), which is all that differs on the wire.
 */
function serviceFor(service: string, apiVersion: CriApiVersion): grpc.ServiceDefinition {
  definitions ??= protoLoader.loadSync(PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  const v1 = definitions[`runtime.v1.${service}`] as grpc.ServiceDefinition | undefined;
  if (v1 === undefined) throw new Error(`${PROTO} defines no runtime.v1.${service}`);
  return Object.fromEntries(
    Object.entries(v1).map(([method, def]) => [
      method,
      { ...def, path: `/runtime.${apiVersion}.${service}/${method}` },
    ]),
  );
}

/**
 * Connects to a CRI runtime's unix socket (containerd's `--address`, which serves CRI alongside
 * its own API) for `apiVersion` (default v1). Each call has a 60 s deadline. Call `close()` when
 * done.
 */
export function connectCri(socket: string, apiVersion: CriApiVersion = 'v1'): CriClient {
  const target = `unix://${socket}`;
  const credentials = grpc.credentials.createInsecure();
  const ImageService = grpc.makeGenericClientConstructor(
    serviceFor('ImageService', apiVersion),
    'ImageService',
  );
  const RuntimeService = grpc.makeGenericClientConstructor(
    serviceFor('RuntimeService', apiVersion),
    'RuntimeService',
  );
  const images = new ImageService(target, credentials);
  // Same target and options: grpc-js shares one subchannel (one connection) between the two.
  const runtime = new RuntimeService(target, credentials);

  const call = <T>(client: grpc.Client, method: string, request: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method];
      if (fn === undefined) throw new Error(`no CRI method ${method}`);
      fn.call(client, request, { deadline: Date.now() + 60_000 }, (err, response) => {
        if (err) reject(new CriError(method, err.code, err.details));
        else resolve(response as T);
      });
    });

  return {
    apiVersion,
    version: () => call<CriVersion>(runtime, 'Version', { version: apiVersion }),
    pullImage: async (image, auth) => {
      const res = await call<{ image_ref: string }>(images, 'PullImage', {
        image: { image },
        ...(auth === undefined ? {} : { auth }),
      });
      return res.image_ref;
    },
    imageStatus: async (image) => {
      const res = await call<{ image: CriImage | null }>(images, 'ImageStatus', {
        image: { image },
      });
      return res.image ?? undefined;
    },
    listImages: async () => (await call<{ images: CriImage[] }>(images, 'ListImages', {})).images,
    removeImage: async (image) => {
      await call(images, 'RemoveImage', { image: { image } });
    },
    close: () => {
      images.close();
      runtime.close();
    },
  };
}
