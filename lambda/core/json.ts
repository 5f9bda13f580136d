/**
 * Where a JSON text is broken, without quoting it: V8's own messages may quote part of the
 * input ("Unexpected token 's', "secret…" is not valid JSON"), and the files read here — a
 * Docker config with stored passwords — must never leak into an error message.
 */

/** `line L, column C` of a JSON.parse failure, or `unexpected end` / `syntax error`. */
export function jsonErrorLocation(err: unknown, text: string): string {
  const message = err instanceof Error ? err.message : '';
  const at = /position (\d+)/.exec(message);
  if (at) {
    const before = text.slice(0, Number(at[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    return `line ${line}, column ${column}`;
  }
  return /end of JSON input/.test(message) ? 'unexpected end' : 'syntax error';
}
