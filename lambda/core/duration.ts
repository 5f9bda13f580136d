/**
 * Durations in the grants file: one or more `<integer><unit>` parts, largest unit first, with
 * units d, h, m, s (e.g. `12h`, `1h30m`, `90m`, `1d`). Bounds for token lifetimes live here too
 * because the schema, the validator and the docs must agree on them.
 */

const UNITS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Shortest token lifetime accepted: shorter tokens would expire before clients can use them. */
export const MIN_TTL_SECONDS = 5 * 60;
/** Longest token lifetime accepted: tokens are bearer credentials, so they stay short-lived. */
export const MAX_TTL_SECONDS = 24 * 3_600;

/** Parses a duration into whole seconds, or returns undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text);
  if (!m || text === '') return undefined;
  const [, d, h, min, s] = m;
  return (
    Number(d ?? 0) * UNITS.d +
    Number(h ?? 0) * UNITS.h +
    Number(min ?? 0) * UNITS.m +
    Number(s ?? 0)
  );
}

/** Formats seconds the way the grants file writes them (`1h30m`, `12h`, `45s`). */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  let rest = seconds;
  let out = '';
  for (const [unit, size] of Object.entries(UNITS)) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
