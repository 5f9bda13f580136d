/**
 * GitHub Actions expressions (`${{ … }}`), enough of them to replay a workflow faithfully:
 * literals, context properties (`github.event_name`, `vars.X`, `steps.id.outputs.y`,
 * `inputs['name']`), `!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, parentheses and the
 * functions `always()`, `success()`, `failure()`, `cancelled()`, `contains()`, `startsWith()`,
 * `endsWith()`, `format()`, `hashFiles()`. Semantics follow GitHub's documentation: a missing
 * property is null, `&&`/`||` return one of their operands, string comparison ignores case.
 * Anything else is an error, so a workflow never silently means something the replay did not
 * evaluate.
 */

/** The contexts an expression can read, and the job status the status functions report. */
export interface ExpressionContext {
  readonly contexts: Readonly<Record<string, unknown>>;
  /** The job's state so far: false once a step (or a needed job) has failed. */
  readonly succeeded: boolean;
  /** hashFiles() of the given patterns; '' when no file matches. */
  readonly hashFiles?: (patterns: string[]) => string;
}

type Token =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'word'; value: string }
  | { kind: 'op'; value: string };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= source.length) throw new Error(`unterminated string in: ${source}`);
        if (source[i] === "'" && source[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (source[i] === "'") {
          i++;
          break;
        } else {
          value += source[i++];
        }
      }
      tokens.push({ kind: 'string', value });
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ kind: 'number', value: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ kind: 'word', value: m[0] });
      i += m[0].length;
    } else {
      const two = source.slice(i, i + 2);
      if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
        tokens.push({ kind: 'op', value: two });
        i += 2;
      } else if ('!<>().[],*'.includes(c)) {
        tokens.push({ kind: 'op', value: c });
        i++;
      } else {
        throw new Error(`unexpected "${c}" in expression: ${source}`);
      }
    }
  }
  return tokens;
}

/** GitHub's truthiness: false, 0, -0, '', null and NaN are falsy. */
export function truthy(v: unknown): boolean {
  return !(v === false || v === 0 || v === '' || v === null || v === undefined || Number.isNaN(v));
}

function toNumber(v: unknown): number {
  if (v === null || v === undefined || v === false) return 0;
  if (v === true) return 1;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v.trim() === '' ? 0 : Number(v);
  return Number.NaN;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'string' && typeof b === 'string') {
    const x = a.toUpperCase();
    const y = b.toUpperCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = toNumber(a);
  const y = toNumber(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.NaN;
  return x < y ? -1 : x > y ? 1 : 0;
}

function equal(a: unknown, b: unknown): boolean {
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  if (typeof a === 'object' || typeof b === 'object') return a === b;
  return compare(a, b) === 0;
}

/** The text an expression's value becomes inside a string. */
export function asString(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

class Parser {
  private i = 0;
  /** Whether a status function (always, success, failure, cancelled) was called. */
  usedStatus = false;

  constructor(
    private readonly tokens: Token[],
    private readonly ctx: ExpressionContext,
    private readonly source: string,
  ) {}

  parse(): unknown {
    const v = this.or();
    if (this.i < this.tokens.length) this.fail('unexpected trailing input');
    return v;
  }

  private fail(why: string): never {
    throw new Error(`expression "${this.source}": ${why}`);
  }

  private peek(value: string): boolean {
    const t = this.tokens[this.i];
    return t?.kind === 'op' && t.value === value;
  }

  private expect(value: string): void {
    if (!this.peek(value)) this.fail(`expected "${value}"`);
    this.i++;
  }

  private or(): unknown {
    let left = this.and();
    while (this.peek('||')) {
      this.i++;
      const right = this.and();
      left = truthy(left) ? left : right;
    }
    return left;
  }

  private and(): unknown {
    let left = this.comparison();
    while (this.peek('&&')) {
      this.i++;
      const right = this.comparison();
      left = truthy(left) ? right : left;
    }
    return left;
  }

  private comparison(): unknown {
    let left = this.unary();
    for (;;) {
      const t = this.tokens[this.i];
      if (t?.kind !== 'op' || !['==', '!=', '<', '<=', '>', '>='].includes(t.value)) return left;
      this.i++;
      const right = this.unary();
      const c = compare(left, right);
      switch (t.value) {
        case '==':
          left = equal(left, right);
          break;
        case '!=':
          left = !equal(left, right);
          break;
        case '<':
          left = c < 0;
          break;
        case '<=':
          left = c <= 0;
          break;
        case '>':
          left = c > 0;
          break;
        default:
          left = c >= 0;
      }
    }
  }

  private unary(): unknown {
    if (this.peek('!')) {
      this.i++;
      return !truthy(this.unary());
    }
    return this.postfix(this.primary());
  }

  private postfix(value: unknown): unknown {
    let v = value;
    for (;;) {
      if (this.peek('.')) {
        this.i++;
        const t = this.tokens[this.i++];
        if (t?.kind !== 'word') this.fail('expected a property name after "."');
        v = property(v, t.value);
      } else if (this.peek('[')) {
        this.i++;
        const key = this.or();
        this.expect(']');
        v = property(v, asString(key));
      } else {
        return v;
      }
    }
  }

  private primary(): unknown {
    const t = this.tokens[this.i++];
    if (!t) this.fail('unexpected end');
    if (t.kind === 'string' || t.kind === 'number') return t.value;
    if (t.kind === 'op') {
      if (t.value !== '(') this.fail(`unexpected "${t.value}"`);
      const v = this.or();
      this.expect(')');
      return v;
    }
    if (t.value === 'true') return true;
    if (t.value === 'false') return false;
    if (t.value === 'null') return null;
    if (this.peek('(')) {
      this.i++;
      const args: unknown[] = [];
      while (!this.peek(')')) {
        args.push(this.or());
        if (!this.peek(')')) this.expect(',');
      }
      this.i++;
      return this.call(t.value, args);
    }
    if (!(t.value in this.ctx.contexts)) this.fail(`unknown context "${t.value}"`);
    return this.ctx.contexts[t.value] ?? null;
  }

  private call(name: string, args: unknown[]): unknown {
    switch (name) {
      case 'always':
        this.usedStatus = true;
        return true;
      case 'success':
        this.usedStatus = true;
        return this.ctx.succeeded;
      case 'failure':
        this.usedStatus = true;
        return !this.ctx.succeeded;
      case 'cancelled':
        this.usedStatus = true;
        return false;
      case 'contains': {
        const [hay, needle] = args;
        if (Array.isArray(hay)) return hay.some((x) => equal(x, needle));
        return asString(hay).toUpperCase().includes(asString(needle).toUpperCase());
      }
      case 'startsWith':
        return asString(args[0]).toUpperCase().startsWith(asString(args[1]).toUpperCase());
      case 'endsWith':
        return asString(args[0]).toUpperCase().endsWith(asString(args[1]).toUpperCase());
      case 'format':
        return asString(args[0]).replace(/\{(\d+)\}/g, (_, n: string) =>
          asString(args[Number(n) + 1]),
        );
      case 'hashFiles':
        if (!this.ctx.hashFiles) this.fail('hashFiles() is not available here');
        return this.ctx.hashFiles(args.map(asString));
      default:
        this.fail(`unsupported function ${name}()`);
    }
  }
}

function property(v: unknown, key: string): unknown {
  if (v === null || typeof v !== 'object') return null;
  const record = v as Record<string, unknown>;
  if (key in record) return record[key] ?? null;
  // Context property names are case-insensitive.
  const found = Object.keys(record).find((k) => k.toLowerCase() === key.toLowerCase());
  return found === undefined ? null : (record[found] ?? null);
}

/** Evaluates one expression (the text between `${{` and `}}`, or a bare `if:`). */
export function evaluate(source: string, ctx: ExpressionContext): unknown {
  return new Parser(tokenize(source), ctx, source).parse();
}

/** Replaces every `${{ … }}` in `text` with its value as a string. */
export function interpolate(text: string, ctx: ExpressionContext): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, expr: string) => asString(evaluate(expr, ctx)));
}

/**
 * Whether a job or step with condition `condition` runs. Without a status function the
 * condition is `success() && (condition)`, as on GitHub; no condition means `success()`.
 */
export function conditionHolds(condition: unknown, ctx: ExpressionContext): boolean {
  if (condition === undefined || condition === null || condition === '') return ctx.succeeded;
  if (typeof condition === 'boolean') return condition && ctx.succeeded;
  const text = String(condition)
    .trim()
    .replace(/^\$\{\{([\s\S]*)\}\}$/, '$1');
  const parser = new Parser(tokenize(text), ctx, text);
  const value = truthy(parser.parse());
  return parser.usedStatus ? value : ctx.succeeded && value;
}
