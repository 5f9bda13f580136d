/**
 * The fast first pass over a grants file: js-yaml's event parser and constructor, which build
 * plain data without the `yaml` library's document of nodes with source positions (about ten
 * times the work on a large file, docs/performance.md). It reads a deliberately small part of
 * YAML and refuses everything else, so that a file it reads, the full reader (yaml.ts) reads to
 * the same data: test/unit/yaml-fast.test.ts checks that over every fixture and thousands of
 * generated and mutated files.
 *
 * What it reads: one document of block and flow collections and plain or quoted scalars,
 * resolved by the YAML 1.2 core schema (no merge keys, no timestamps). What it refuses (the
 * full reader then decides, and reports any problem with its position): directives, tags,
 * document markers other than one `---` before and one `...` after the content,
 * anchors and aliases, block scalars (`|`, `>`), complex keys, duplicate keys, a lone carriage
 * return, a number too large for a double, and anything over the limits of yaml.ts (size,
 * nesting, keys per mapping). It keeps where each node starts (no ranges, no comments), so
 * that a valid file's model still carries its `file:line:col` (each grant's, each `ttl`'s).
 */

import {
  CORE_SCHEMA,
  constructFromEvents,
  defineScalarTag,
  EVENT_ID,
  type Event,
  floatCoreTag,
  getScalarValue,
  NOT_RESOLVED,
  parseEvents,
  SCALAR_STYLE,
  type ScalarEvent,
} from 'js-yaml';
import type { Path } from './schema-errors.js';
import { MAX_GRANTS_BYTES, MAX_MAPPING_KEYS, MAX_NESTING } from './yaml-limits.js';

/**
 * Where a collection starts, and its children: a scalar child is only the offset where it
 * starts, as the full reader counts it (a quoted scalar at its opening quote). A mapping's keys
 * are in `keys`, its values at the same index in `items`; mappings are small, so a list is
 * faster to build than a Map.
 */
interface Collection {
  readonly offset: number;
  readonly keys: string[] | undefined;
  readonly items: (Collection | number)[];
}

/** What the fast pass read: the data, and the offsets of its collections. */
export interface FastRead {
  readonly data: unknown;
  /** Offset in the text of the node at `path`; undefined for a missing path. */
  offsetOf(path: Path): number | undefined;
  /** 1-based line and column of an offset, as the full reader counts them. */
  linePos(offset: number): { line: number; col: number };
}

const NUMBER_LIKE =
  /^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+)$/;

/**
 * The core schema, except that a plain scalar written as a number too large for a double is
 * refused: js-yaml reads it as a string, the `yaml` library as Infinity. Core int and float
 * are tried in that order, so by the time the float tag gives up, so has the int tag.
 */
const SCHEMA = CORE_SCHEMA.withTags(
  defineScalarTag('tag:yaml.org,2002:float', {
    ...floatCoreTag,
    resolve: (source, explicit, tag) => {
      const value = floatCoreTag.resolve(source, explicit, tag);
      if (value === NOT_RESOLVED && NUMBER_LIKE.test(source))
        throw new RangeError('a number out of range');
      return value;
    },
  }),
);

class Refused extends Error {}

function refuse(): never {
  throw new Refused();
}

/**
 * The collections of a one-document event stream, checked against what the fast pass reads
 * and the limits of yaml.ts. Throws {@link Refused} at the first thing it does not read.
 */
function collections(text: string, events: readonly Event[]): Collection | undefined {
  const stack: { node: Collection; isValue: boolean }[] = [];
  let root: Collection | undefined;
  let documents = 0;
  // A scalar is passed as its event: only a key's text is needed, and only then decoded.
  const add = (node: Collection | undefined, scalar?: ScalarEvent) => {
    const parent = stack.at(-1);
    if (!parent) {
      root = node;
      return;
    }
    const item = node ?? scalarStart(scalar as ScalarEvent);
    const { keys, items } = parent.node;
    if (!keys) items.push(item);
    else if (!parent.isValue) {
      // A key: only a scalar, and one the mapping has not had yet.
      if (!scalar) refuse();
      const key = getScalarValue(text, scalar);
      if (keys.length >= MAX_MAPPING_KEYS || keys.includes(key)) refuse();
      keys.push(key);
      parent.isValue = true;
    } else {
      items.push(item);
      parent.isValue = false;
    }
  };
  for (const e of events) {
    switch (e.type) {
      case EVENT_ID.DOCUMENT:
        if (++documents > 1 || e.directives.length > 0) refuse();
        // Every marker in the text must be this document's own: the readers disagree on a
        // stray one (`...` before the content is nothing to js-yaml, an empty document to yaml).
        if (markers(text) !== Number(e.explicitStart) + Number(e.explicitEnd)) refuse();
        break;
      case EVENT_ID.SCALAR:
        if (e.tagStart !== -1 || e.anchorStart !== -1) refuse();
        if (e.style === SCALAR_STYLE.LITERAL_BLOCK || e.style === SCALAR_STYLE.FOLDED_BLOCK)
          refuse();
        add(undefined, e);
        break;
      case EVENT_ID.SEQUENCE:
      case EVENT_ID.MAPPING:
        if (e.tagStart !== -1 || e.anchorStart !== -1 || stack.length >= MAX_NESTING) refuse();
        stack.push({
          node: { offset: e.start, keys: e.type === EVENT_ID.MAPPING ? [] : undefined, items: [] },
          isValue: false,
        });
        break;
      case EVENT_ID.POP: {
        const done = stack.pop();
        if (done) add(done.node);
        break;
      }
      default:
        refuse(); // an alias
    }
  }
  if (documents !== 1) refuse();
  return root;
}

/** How many lines start with a document marker (`---` or `...`). */
function markers(text: string): number {
  return text.match(/^(?:---|\.\.\.)(?=[ \t\n]|$)/gm)?.length ?? 0;
}

/** Where a scalar starts as the `yaml` library counts it: a quoted one at its quote. */
function scalarStart(e: ScalarEvent): number {
  const quoted = e.style === SCALAR_STYLE.SINGLE_QUOTED || e.style === SCALAR_STYLE.DOUBLE_QUOTED;
  return quoted ? e.valueStart - 1 : e.valueStart;
}

/** The offsets where lines start, for 1-based line and column numbers. */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/**
 * Reads `text` the fast way, or returns undefined when it is anything the fast pass does not
 * read (the caller then uses the full reader, which also reports what is wrong).
 */
export function readYamlFast(text: string): FastRead | undefined {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most texts need no count.
  if (text.length * 3 > MAX_GRANTS_BYTES && Buffer.byteLength(text, 'utf8') > MAX_GRANTS_BYTES)
    return undefined;
  // A carriage return not followed by a line feed ends a line for js-yaml, not for yaml's
  // line counter: positions would differ.
  if (text.includes('\r') && /\r(?!\n)/.test(text)) return undefined;
  let root: Collection | undefined;
  let data: unknown;
  try {
    const events = parseEvents(text, { maxDepth: MAX_NESTING });
    root = collections(text, events);
    [data] = constructFromEvents(events, { source: text, schema: SCHEMA, maxAliases: 0 });
  } catch {
    // A syntax error, a refusal, a number out of range, or a stack exhausted by nesting.
    return undefined;
  }
  let starts: number[] | undefined;
  return {
    data,
    offsetOf(path) {
      let node: Collection | number | undefined = root;
      for (const step of path) {
        if (node === undefined || typeof node === 'number') return undefined;
        const index: string | number = node.keys ? node.keys.indexOf(String(step)) : step;
        node = typeof index === 'number' ? node.items[index] : undefined;
      }
      return typeof node === 'number' ? node : node?.offset;
    },
    linePos(offset) {
      starts ??= lineStarts(text);
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((starts[mid] as number) <= offset) lo = mid;
        else hi = mid - 1;
      }
      return { line: lo + 1, col: offset - (starts[lo] as number) + 1 };
    },
  };
}
