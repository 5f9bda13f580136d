/**
 * Finding the members of a set that make a whole write fail, by bisection: S3 refuses a bucket
 * policy naming a principal it cannot resolve (`MalformedPolicy: Invalid principal in policy`)
 * without saying which one, so the token store tries halves of the reader accounts until it
 * knows which ones S3 refuses (docs/aws.md, "Accounts S3 refuses").
 */

/** What {@link findRefused} found. */
export interface Bisection<T> {
  /** Members every successful attempt included; the last successful attempt was exactly these. */
  readonly accepted: readonly T[];
  /** Members that failed alone. */
  readonly refused: readonly T[];
  /** How many attempts were made. */
  readonly attempts: number;
}

/**
 * Given that `attempt(items)` failed, finds which items make it fail. Each attempt writes the
 * items accepted so far plus a candidate part: a part that succeeds joins the accepted ones,
 * one that fails is halved, and a single item that fails is refused. So the attempts that
 * succeed grow, and the last one (or a final attempt with the accepted items, when none
 * succeeded) is exactly `accepted`. With k refused items among n it takes about
 * 2·k·log2(n) attempts; returns undefined after `maxAttempts` (the caller reports the
 * original failure). `attempt` resolves false for the failure being searched for, and throws
 * for any other, which ends the search.
 */
export async function findRefused<T>(
  items: readonly T[],
  attempt: (items: readonly T[]) => Promise<boolean>,
  maxAttempts: number,
): Promise<Bisection<T> | undefined> {
  const accepted: T[] = [];
  const refused: T[] = [];
  let attempts = 0;
  let written = false;
  const tryWith = async (part: readonly T[]): Promise<boolean | undefined> => {
    if (attempts >= maxAttempts) return undefined;
    attempts++;
    const ok = await attempt([...accepted, ...part]);
    if (ok) {
      accepted.push(...part);
      written = true;
    }
    return ok;
  };
  /** False when the attempts ran out. */
  const search = async (part: readonly T[], knownToFail: boolean): Promise<boolean> => {
    if (part.length === 0) return true;
    if (!knownToFail) {
      const ok = await tryWith(part);
      if (ok === undefined) return false;
      if (ok) return true;
    }
    if (part.length === 1) {
      refused.push(part[0] as T);
      return true;
    }
    const half = Math.ceil(part.length / 2);
    const first = part.slice(0, half);
    const second = part.slice(half);
    const before = refused.length;
    if (!(await search(first, false))) return false;
    // The whole part failed and its first half holds no refused item: the second half does.
    return search(second, refused.length === before);
  };
  if (!(await search(items, true))) return undefined;
  if (!written) {
    if (attempts >= maxAttempts) return undefined;
    attempts++;
    if (!(await attempt(accepted))) return undefined;
  }
  return { accepted, refused, attempts };
}
