/**
 * The limits on a grants file's YAML (docs/config.md, "Limits"), apart from the readers that
 * enforce them: the fast first pass (yaml-fast.ts) and the sources that stop reading at the size
 * limit need them without loading the position-keeping reader (yaml.ts) and its library.
 */

/** Largest grants file read, in bytes (10 MiB: about 100,000 principals, docs/performance.md). */
export const MAX_GRANTS_BYTES = 10 * 1024 * 1024;
/** Deepest nesting of mappings and lists (a grants file needs 6). */
export const MAX_NESTING = 16;
/** Most keys in one mapping (a grants file's largest mapping has 4). */
export const MAX_MAPPING_KEYS = 100;
/** Most alias expansions in one file (YAML anchors and `*aliases`). */
export const MAX_ALIAS_EXPANSIONS = 100;

/** A problem at a character offset of the text. */
export interface YamlProblem {
  readonly offset: number;
  readonly message: string;
}

/** `n` with thousands separators, for limits in messages. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * The problem with a text of `bytes` bytes, if it is over the size limit. `bytes` undefined:
 * a source that stopped reading at the limit, so it knows only that there is more.
 */
export function sizeProblem(bytes: number | undefined): YamlProblem | undefined {
  if (bytes !== undefined && bytes <= MAX_GRANTS_BYTES) return undefined;
  const size = bytes === undefined ? 'larger than' : `${formatCount(bytes)} bytes, over`;
  return {
    offset: 0,
    message: `the file is ${size} the limit of ${formatCount(MAX_GRANTS_BYTES)} bytes (10 MiB) for a grants file`,
  };
}
