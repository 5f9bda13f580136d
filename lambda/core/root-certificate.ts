/**
 * Keeping a signing root's self-signed certificate valid. The certificate in the published
 * bundle is reused run after run (a new one would change the bundle, and registries read it
 * only at start-up), so each run checks it: a certificate whose signature does not verify with
 * the key, that is not a CA, or that is outside its validity is not reused. A root nearing its
 * end is re-issued under the same key while the old certificate still serves, and both stay in
 * the bundle until the old one expires: tokens verify against either (same key, same name), so
 * registries pick up the new one whenever they next load the bundle. See docs/tokens.md,
 * "Root certificate renewal".
 */

import { createPublicKey, X509Certificate } from 'node:crypto';
import { parsePemCertificates, spkiOfCertificate } from './certificate-pem.js';

const DAY_MS = 86_400_000;
/** Within this many days of the newest certificate's end, each run warns (and the stack alarms). */
export const ROOT_WARN_DAYS = 365;
/** Within this many days of the newest certificate's end, a new one is issued under the same key. */
export const ROOT_RENEW_DAYS = 182;
/** How long a newly issued root certificate is valid. */
export const ROOT_VALID_YEARS = 10;

/** What a run does about one key's root certificates. */
export interface RootPlan {
  /** Certificates (DER) for the key that are fit to stay in the bundle, newest first. */
  readonly keep: readonly Uint8Array[];
  /** True when a new certificate must be issued (none is fit, or the newest is near its end). */
  readonly issue: boolean;
  /** Why certificates for the key were left out of the bundle, for the log. */
  readonly dropped: readonly string[];
}

/** Why `der` is not fit to be `spki`'s root certificate at `now`, or undefined when it is. */
export function rootCertificateProblem(
  der: Uint8Array,
  spki: Uint8Array,
  now: Date,
): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der));
  } catch {
    return 'it is not a certificate';
  }
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  if (!cert.verify(key)) return 'its signature does not verify with the key';
  if (!cert.ca) return 'it is not a CA certificate';
  if (Date.parse(cert.validFrom) > now.getTime()) return `it is valid only from ${cert.validFrom}`;
  if (Date.parse(cert.validTo) <= now.getTime()) return `it expired on ${cert.validTo}`;
  return undefined;
}

/** The end of a certificate's validity. */
export function notAfterOf(der: Uint8Array): Date {
  return new Date(new X509Certificate(Buffer.from(der)).validTo);
}

/** Whole days from `now` to `end` (rounded down; negative once past). */
export function daysUntil(end: Date, now: Date): number {
  return Math.floor((end.getTime() - now.getTime()) / DAY_MS);
}

/**
 * Decides which of a key's certificates found in the bundle stay, and whether to issue a new
 * one: every fit certificate stays (the old one serves registries that have not reloaded the
 * bundle yet), and a new one is issued when none is fit or the newest has fewer than
 * {@link ROOT_RENEW_DAYS} days left.
 */
export function planRootCertificates(
  found: readonly Uint8Array[],
  spki: Uint8Array,
  now: Date,
): RootPlan {
  const keep: { der: Uint8Array; end: number }[] = [];
  const dropped: string[] = [];
  for (const der of found) {
    const problem = rootCertificateProblem(der, spki, now);
    if (problem) dropped.push(problem);
    else keep.push({ der, end: notAfterOf(der).getTime() });
  }
  keep.sort((a, b) => b.end - a.end);
  const newest = keep[0];
  const issue = !newest || daysUntil(new Date(newest.end), now) < ROOT_RENEW_DAYS;
  return { keep: keep.map((k) => k.der), issue, dropped };
}

/** The end of a new root certificate issued at `now`. */
export function rootNotAfter(now: Date): Date {
  const end = new Date(now);
  end.setUTCFullYear(end.getUTCFullYear() + ROOT_VALID_YEARS);
  return end;
}

/** A key's root certificates for a run, and what the operators must hear about them. */
export interface RootCertificates {
  /** The certificates to publish for the key, newest first. */
  readonly certs: readonly Uint8Array[];
  /** Whole days until the newest one expires. */
  readonly daysLeft: number;
  /** Warnings for the log (a certificate left out, one issued, one expiring within a year). */
  readonly notes: readonly string[];
}

const day = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The root certificates of the key `spki` for a run at `now`: the fit ones found in `bundle`,
 * plus a new one from `issue` when {@link planRootCertificates} says so. `name` names the key in
 * the notes (`KMS key …`, `signing key …`).
 */
export async function rootCertificates(options: {
  readonly bundle: string | undefined;
  readonly spki: Uint8Array;
  readonly now: Date;
  readonly name: string;
  readonly issue: (notAfter: Date) => Promise<Uint8Array>;
}): Promise<RootCertificates> {
  const { spki, now, name } = options;
  const plan = planRootCertificates(certificatesFor(options.bundle, spki), spki, now);
  const notes = plan.dropped.map(
    (reason) => `${name}: its root certificate in the published bundle is not reused: ${reason}`,
  );
  let certs = plan.keep;
  if (plan.issue) {
    const issued = await options.issue(rootNotAfter(now));
    const previous = plan.keep[0];
    if (previous)
      notes.push(
        `${name}: issued a new root certificate under the same key, valid until ${day(notAfterOf(issued))}; the one ending ${day(notAfterOf(previous))} stays in the bundle until then, and registries must load the new bundle before that day (they read it at start-up; the unit in examples/registry restarts them when it changes)`,
      );
    certs = [issued, ...plan.keep];
  }
  const newest = certs[0] as Uint8Array;
  const daysLeft = daysUntil(notAfterOf(newest), now);
  if (daysLeft < ROOT_WARN_DAYS)
    notes.push(
      `${name}: its root certificate expires on ${day(notAfterOf(newest))}, in ${daysLeft} days; a new one is issued under the same key ${ROOT_RENEW_DAYS} days before`,
    );
  return { certs, daysLeft, notes };
}

/** The certificates in a PEM bundle whose public key is `spki` (none when it is unreadable). */
export function certificatesFor(bundle: string | undefined, spki: Uint8Array): Uint8Array[] {
  if (!bundle) return [];
  try {
    return parsePemCertificates(bundle).filter((der) =>
      Buffer.from(spkiOfCertificate(der)).equals(Buffer.from(spki)),
    );
  } catch {
    return []; // an unreadable bundle is simply replaced
  }
}
