/**
 * How values from files, flags and buckets appear in messages and terminal output.
 *
 * Anything regtoken did not write itself may be hostile or secret: a grants file with terminal
 * escapes in a role name, a 50 MB value, a private key passed where a grants file was expected.
 * Messages therefore quote such values only through {@link quote} (a short excerpt, control
 * characters escaped), and the CLI passes everything it prints through {@link escapeControl}.
 */

/** The most characters of a value that a message quotes. */
export const EXCERPT_CHARS = 80;

/**
 * Characters that can change what a terminal shows or does: C0 controls (escape sequences,
 * bell, carriage return), DEL, C1 controls, the Unicode line and paragraph separators, and the
 * bidirectional overrides and isolates that reorder text on screen.
 */
const CONTROL =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this pattern's purpose.
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
}

/** Colour codes the CLI itself writes (SGR: `ESC [ digits m`), kept when colour is on. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: an SGR sequence starts with ESC by definition.
const SGR = /^\u001b\[[0-9;]{1,8}m/;

/**
 * Replaces every control character in `text` with a visible escape (`\x1b`, `\r`, `\u202e`).
 * `keepNewlines` keeps line feeds (output made of lines); `keepColour` keeps SGR colour codes
 * (`ESC [ n m`, which only colour text and cannot move the cursor, clear the screen or set a
 * window title), for output the CLI colours itself.
 */
export function escapeControl(
  text: string,
  options: { readonly keepNewlines?: boolean; readonly keepColour?: boolean } = {},
): string {
  return text.replace(CONTROL, (c, offset: number) => {
    if (c === '\n' && options.keepNewlines) return c;
    if (c === '\u001b' && options.keepColour && SGR.test(text.slice(offset, offset + 12))) return c;
    return escapeChar(c);
  });
}

/**
 * A value as a message shows it unquoted: control characters escaped, and cut to `max`
 * characters with "…" and the full length when longer. The cost is bounded by `max`, whatever
 * the size of the value.
 */
export function excerpt(value: string, max = EXCERPT_CHARS): string {
  return cutAndEscape(value, max, false);
}

/** A value as a message quotes it: {@link excerpt} in double quotes, with `"` and `\` escaped. */
export function quote(value: string, max = EXCERPT_CHARS): string {
  return cutAndEscape(value, max, true);
}

function cutAndEscape(value: string, max: number, quoted: boolean): string {
  const cut = value.length > max;
  let head = cut ? value.slice(0, max) : value;
  // Never end on half a surrogate pair.
  if (cut && /[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  const escaped = escapeControl(quoted ? head.replace(/[\\"]/g, '\\$&') : head);
  const shown = quoted ? `"${escaped}${cut ? '…' : ''}"` : `${escaped}${cut ? '…' : ''}`;
  return cut ? `${shown} (${value.length} characters)` : shown;
}

/** Cuts a free-form message (an SDK's, a library's) to one line of at most `max` characters, escaped. */
export function oneLine(message: string, max = 300): string {
  const first = message.split('\n')[0] ?? '';
  return escapeControl(first.length > max ? `${first.slice(0, max)}…` : first);
}

/**
 * Orders text by its UTF-16 code units, not by locale, so a sorted list (ARNs, account IDs) is
 * the same on every machine: `list.sort(compareCodeUnits)`.
 */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
