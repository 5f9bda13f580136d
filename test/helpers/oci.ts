import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeTempDir } from './tmp.js';

const MEDIA_INDEX = 'application/vnd.oci.image.index.v1+json';
const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MEDIA_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MEDIA_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const EPOCH = '1970-01-01T00:00:00Z';

const sha256 = (data: Buffer): string =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Writes `value` as a NUL-terminated octal number of `width` bytes (ustar style). */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}

/** A minimal ustar archive holding one regular file (root-owned, mode 0644, mtime 0). */
function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 100, 'utf8');
  octal(header, 100, 8, 0o644); // mode
  octal(header, 108, 8, 0); // uid
  octal(header, 116, 8, 0); // gid
  octal(header, 124, 12, content.length); // size
  octal(header, 136, 12, 0); // mtime
  header.fill(0x20, 148, 156); // checksum placeholder: 8 spaces
  header.write('0', 156, 1, 'ascii'); // typeflag: regular file
  header.write('ustar\u000000', 257, 8, 'ascii'); // magic "ustar\0" + version "00"
  header.write('root', 265, 32, 'ascii'); // uname
  header.write('root', 297, 32, 'ascii'); // gname
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512, 0);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024, 0)]);
}

/** Options for {@link buildTestImage}. */
export interface TestImageOptions {
  /** Contents of the image's single file `/hello.txt`; vary it to get distinct digests. */
  content?: string;
  /** Tag recorded in index.json (`org.opencontainers.image.ref.name`); default `latest`. */
  tag?: string;
}

/**
 * Writes a tiny but valid OCI image layout into `dir` (created if needed; a fresh temp dir under
 * os.tmpdir() if omitted, which the caller must then remove): `oci-layout`, `index.json`, and
 * blobs for a gzipped single-file tar layer, its config and its manifest. Content is
 * deterministic for the same options, so digests are stable. Returns the layout dir, usable
 * by skopeo as `oci:DIR:latest` (or `oci:DIR:<tag>`).
 */
export async function buildTestImage(dir?: string, opts: TestImageOptions = {}): Promise<string> {
  const layoutDir = dir ?? (await makeTempDir('oci'));
  const blobsDir = path.join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const putBlob = async (data: Buffer): Promise<string> => {
    const digest = sha256(data);
    await writeFile(path.join(blobsDir, digest.slice('sha256:'.length)), data);
    return digest;
  };

  const layerTar = tarOneFile(
    'hello.txt',
    Buffer.from(opts.content ?? 'hello from the regtoken test image\n'),
  );
  const layer = gzipSync(layerTar);
  const layerDigest = await putBlob(layer);

  const config = Buffer.from(
    JSON.stringify({
      created: EPOCH,
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
      history: [{ created: EPOCH, created_by: 'regtoken test helper' }],
    }),
  );
  const configDigest = await putBlob(config);

  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_MANIFEST,
      config: { mediaType: MEDIA_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: MEDIA_LAYER, digest: layerDigest, size: layer.length }],
    }),
  );
  const manifestDigest = await putBlob(manifest);

  await writeFile(
    path.join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_INDEX,
      manifests: [
        {
          mediaType: MEDIA_MANIFEST,
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' },
        },
      ],
    }),
  );
  await writeFile(
    path.join(layoutDir, 'oci-layout'),
    JSON.stringify({ imageLayoutVersion: '1.0.0' }),
  );
  return layoutDir;
}

/** Digests of an image written by {@link buildTestImage}. */
export interface TestImageInfo {
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
}

/**
 * Reads back the digests of the (first) manifest in an OCI layout written by
 * {@link buildTestImage}, e.g. to fetch `/v2/REPO/manifests/<manifestDigest>` or to check which
 * blobs landed in the registry's storage after a push.
 */
export async function readTestImage(dir: string): Promise<TestImageInfo> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string }[];
  };
  const manifestDigest = index.manifests[0]?.digest;
  if (manifestDigest === undefined) throw new Error(`readTestImage: ${dir}/index.json is empty`);
  const manifest = JSON.parse(
    await readFile(path.join(dir, 'blobs', 'sha256', manifestDigest.slice(7)), 'utf8'),
  ) as { config: { digest: string }; layers: { digest: string }[] };
  return {
    manifestDigest,
    configDigest: manifest.config.digest,
    layerDigests: manifest.layers.map((l) => l.digest),
  };
}
