/**
 * Reads YAML text that may be hostile: a grants file comes from a pull request, and a mistyped
 * flag can hand regtoken a private key instead. Every limit is checked before the part of the
 * work it protects, and every problem comes back as a position and a message that quotes no
 * content (docs/config.md, "Limits").
 *
 * - Size: at most {@link MAX_GRANTS_BYTES}, checked before anything is parsed.
 * - Nesting: at most {@link MAX_NESTING} collections deep, and at most
 *   {@link MAX_MAPPING_KEYS} keys in one mapping, checked on the parser's token tree before the
 *   document is built (building it recurses once per level, and checking keys for duplicates
 *   costs the square of their number).
 * - Aliases: at most {@link MAX_ALIAS_EXPANSIONS} expansions, so a few lines of anchors cannot
 *   expand to gigabytes (an "alias bomb").
 */

import {
  Composer,
  type CST,
  type Document,
  LineCounter,
  Parser,
  visit,
  YAMLParseError,
} from 'yaml';
import { oneLine } from './text.js';
import {
  formatCount,
  MAX_ALIAS_EXPANSIONS,
  MAX_MAPPING_KEYS,
  MAX_NESTING,
  sizeProblem,
  type YamlProblem,
} from './yaml-limits.js';

/** The outcome of reading: the document (when it could be built) and the problems found. */
export interface YamlRead {
  readonly doc: Document.Parsed | undefined;
  readonly lineCounter: LineCounter;
  readonly problems: readonly YamlProblem[];
}

/**
 * Messages of the YAML library that carry text from the file, with what to say instead: a file
 * that does not even parse as YAML may be anything, a key or credentials included.
 */
const QUOTING_MESSAGES: readonly [RegExp, string][] = [
  [
    /^(Unresolved tag|Could not resolve tag|Not a valid tag|Block scalar header includes extra characters|Ordered maps must not include duplicate keys|Expected a flow scalar value, but found): .*/s,
    '$1',
  ],
  [/^Unresolved alias .*/s, 'Unresolved alias (the anchor must be set before the alias)'],
  [/^Unresolved plain scalar .*/s, 'Unresolved plain scalar'],
  [/^Invalid escape sequence .*/s, 'Invalid escape sequence'],
  [/^Unknown directive .*/s, 'Unknown directive'],
  [/^Unsupported YAML version .*/s, 'Unsupported YAML version'],
  [/^The .* tag has no suffix$/s, 'A tag has no suffix'],
  [/^Verbatim tags aren't resolved, so .* is invalid\.$/s, "Verbatim tags aren't resolved"],
  [/^Plain value cannot start with .*/s, 'Plain value cannot start with a reserved character'],
];

/** A parser message without any text from the file, on one line. */
export function yamlMessage(err: YAMLParseError): string {
  let message = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  for (const [re, instead] of QUOTING_MESSAGES)
    if (re.test(message)) {
      message = message.replace(re, instead);
      break;
    }
  return `YAML: ${oneLine(message, 120)}`;
}

/**
 * The first place where a document token nests deeper than {@link MAX_NESTING} or a mapping has
 * more than {@link MAX_MAPPING_KEYS} keys, in document order. Iterative: the tree it walks may be
 * thousands of levels deep.
 */
function structureProblem(doc: CST.Document): YamlProblem | undefined {
  const stack: { token: CST.Token; depth: number }[] = [];
  if (doc.value) stack.push({ token: doc.value, depth: 0 });
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { token, depth } = next;
    if (
      token.type !== 'block-map' &&
      token.type !== 'block-seq' &&
      token.type !== 'flow-collection'
    )
      continue;
    const level = depth + 1;
    if (level > MAX_NESTING)
      return {
        offset: token.offset,
        message: `nested more than ${MAX_NESTING} levels deep (a grants file needs 6)`,
      };
    const isMapping =
      token.type === 'block-map' ||
      (token.type === 'flow-collection' && token.start.type === 'flow-map-start');
    if (isMapping && token.items.length > MAX_MAPPING_KEYS)
      return {
        offset: token.offset,
        message: `a mapping with ${formatCount(token.items.length)} keys, over the limit of ${MAX_MAPPING_KEYS}`,
      };
    // Pushed in reverse, so the first problem in the file is the one found.
    for (let i = token.items.length - 1; i >= 0; i--) {
      const item = token.items[i] as CST.CollectionItem;
      if (item.value) stack.push({ token: item.value, depth: level });
      if (item.key) stack.push({ token: item.key, depth: level });
    }
  }
  return undefined;
}

/**
 * Parses one YAML document within the limits. Returns no document when a limit stops the read
 * before it is built; syntax errors come back as problems with the document they spoil.
 */
export function readYaml(text: string): YamlRead {
  const lineCounter = new LineCounter();
  const size = sizeProblem(Buffer.byteLength(text, 'utf8'));
  if (size) {
    lineCounter.addNewLine(0); // what the parser does first, so that offset 0 is line 1
    return { doc: undefined, lineCounter, problems: [size] };
  }

  const problems: YamlProblem[] = [];
  let stopped = false;
  // The parser's tokens pass through a check on their way to the composer, so each document
  // is checked before it is built and the text is tokenised only once.
  const checked = function* (tokens: Iterable<CST.Token>): Generator<CST.Token> {
    for (const token of tokens) {
      const problem = token.type === 'document' ? structureProblem(token) : undefined;
      if (problem) {
        problems.push(problem);
        stopped = true;
        return;
      }
      yield token;
    }
  };
  const composer = new Composer({ uniqueKeys: true, prettyErrors: false });
  let doc: Document.Parsed | undefined;
  for (const next of composer.compose(
    checked(new Parser(lineCounter.addNewLine).parse(text)),
    true,
    text.length,
  )) {
    if (!doc) {
      doc = next;
      continue;
    }
    doc.errors.push(
      new YAMLParseError(
        [next.range[0], next.range[1]],
        'MULTIPLE_DOCS',
        'Source contains multiple documents; a grants file is one document',
      ),
    );
    break;
  }
  if (stopped) return { doc: undefined, lineCounter, problems };
  for (const err of doc?.errors ?? [])
    problems.push({ offset: err.pos[0], message: yamlMessage(err) });
  return { doc, lineCounter, problems };
}

/**
 * The document's data, with aliases expanded up to {@link MAX_ALIAS_EXPANSIONS}; past that, a
 * problem at the first alias instead.
 */
export function yamlData(doc: Document.Parsed): { data: unknown } | { problem: YamlProblem } {
  try {
    return { data: doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS }) };
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    let offset = 0;
    visit(doc, {
      Alias(_key, node) {
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    return {
      problem: {
        offset,
        message: `YAML: aliases here expand to too much data (at most ${MAX_ALIAS_EXPANSIONS} alias expansions): write the values out`,
      },
    };
  }
}
