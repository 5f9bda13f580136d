/**
 * The position-keeping reader of grants files: the `yaml` library's document of nodes keeps
 * where every value is written, so every problem is reported at its `file:line:col`. It reads
 * the files the fast first pass refuses or finds a problem in (config.ts loads it only then),
 * and {@link parseGrantsSync} reads a file at once, for callers that cannot wait (the CDK app
 * checks the grants while it builds the stack).
 */

import { isMap, isScalar, isSeq, type Pair, type Node as YamlNode } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { capIssues, checkMeaning, parseFast, sortIssues } from './config.js';
import type { GrantsConfig, Location } from './grants.js';
import { describeSchemaError, type Path, schemaValidator } from './schema-errors.js';
import { readYaml, yamlData } from './yaml.js';

/** {@link parseGrants} (config.ts) without waiting: the same model, the same errors. */
export function parseGrantsSync(text: string, file: string): GrantsConfig {
  return parseFast(text, file) ?? parseWithPositions(text, file);
}

/**
 * What a file that is not YAML-shaped looks like, to say so without quoting it: a key or an AWS
 * credentials file passed by mistake must not end up in an error message.
 */
function secretLook(text: string): string | undefined {
  if (/-----BEGIN [A-Z0-9 ]{1,40}-----/.test(text))
    return 'this looks like a PEM key or certificate';
  // [ \t]*, not \s*: \s also matches line ends, and a file of blank lines would cost the square.
  if (
    /^[ \t]*\[[^\]\n]{1,100}\][ \t]*$/m.test(text) &&
    /^[ \t]*[A-Za-z0-9_.-]{1,100}[ \t]*=/m.test(text)
  )
    return 'this looks like an INI file, such as AWS credentials';
  return undefined;
}

function notGrantsFile(what: string): string {
  return `not a grants file: ${what} (a grants file is a YAML mapping with version, registry and grants)`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') {
    const lines = value.split('\n').length;
    return lines === 1 ? 'a single line of text' : `${lines} lines of text`;
  }
  return `a ${typeof value}`;
}

/**
 * Parses with the `yaml` library's document of nodes, which keeps every position: the reader
 * of files that are wrong (or that the fast pass does not read). Exported for the
 * differential test.
 */
export function parseWithPositions(text: string, file: string): GrantsConfig {
  const { doc, lineCounter, problems } = readYaml(text);
  const issues: ConfigIssue[] = [];
  const at = (offset: number | undefined): Location => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { file, line: pos.line, col: pos.col };
  };
  const report = (loc: Location, message: string) => issues.push({ ...loc, message });
  const fail = (): never => {
    throw new ConfigError(capIssues(sortIssues(issues)));
  };

  for (const problem of problems) {
    const loc = at(problem.offset);
    // One syntax slip often yields several parser errors at the same spot: report the first.
    if (issues.some((i) => i.line === loc.line && i.col === loc.col)) continue;
    report(loc, problem.message);
  }
  if (issues.length || !doc) {
    // A file that does not parse may be anything: if it looks like a secret, say only that.
    const look = doc ? secretLook(text) : undefined;
    if (look) throw new ConfigError([{ file, line: 1, col: 1, message: notGrantsFile(look) }]);
    fail();
  }
  const parsed = doc as NonNullable<typeof doc>;
  if (parsed.contents === null) {
    report(at(0), 'the file is empty: expected a grants file (see docs/config.md)');
    fail();
  }
  const converted = yamlData(parsed);
  if ('problem' in converted) {
    report(at(converted.problem.offset), converted.problem.message);
    fail();
  }
  const data = 'data' in converted ? converted.data : undefined;
  if (!isMap(parsed.contents)) {
    report(at(0), notGrantsFile(secretLook(text) ?? `its content is ${kindOf(data)}`));
    fail();
  }

  const locate = (path: Path, key = false): Location =>
    at(nodeAt(parsed.contents, path, key)?.range?.[0]);
  const validate = schemaValidator();
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      const issue = describeSchemaError(e, data);
      if (issue) report(locate(issue.path, issue.atKey), issue.message);
    }
  }

  const config = checkMeaning(data, file, locate, report);
  if (issues.length || !config) fail();
  return config as GrantsConfig;
}

/** Finds the YAML node at a data path; with `key`, the key node of the last step instead. */
function nodeAt(root: unknown, path: Path, key = false): YamlNode | undefined {
  let node = root as YamlNode | undefined;
  let keyNode: YamlNode | undefined;
  for (const step of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p: Pair) => isScalar(p.key) && String(p.key.value) === String(step),
      );
      if (!pair) return node;
      keyNode = pair.key as YamlNode;
      node = (pair.value ?? pair.key) as YamlNode;
    } else if (isSeq(node) && typeof step === 'number') {
      const item = node.items[step] as YamlNode | undefined;
      if (!item) return node;
      keyNode = item;
      node = item;
    } else {
      return node;
    }
  }
  return key ? (keyNode ?? node) : node;
}
