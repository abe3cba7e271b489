/**
 * Secrets at run time: reading what a secret reference points at, and keeping the values out of
 * every message that leaves the worker. Each resolve reads the file or variable again (no cache),
 * so a rotated secret is used by the next call without a restart. Every value read is remembered
 * (in this process only) so that redactSecrets can replace it, wherever it shows up in an error,
 * with the name of the reference it came from.
 */
import fs from 'node:fs';
import { LifeboatError } from '../domain/errors';
import type { SecretRef } from './fields';

/** Value -> the reference it was read from. Old values stay after a rotation: they are still secrets. */
const known = new Map<string, SecretRef>();
/**
 * References whose values only identify (S3 access key ids, which S3 shows in its own errors and
 * which may be an ordinary word such as the local stack's "lifeboat"), and the values read from
 * them: never redacted, whichever code path reads them. The config registers them when it loads.
 */
const identifierRefs = new Set<SecretRef>();
const identifierValues = new Set<string>();

export function markIdentifierReference(ref: SecretRef): void {
  identifierRefs.add(ref);
}
/** Bounds the registry should something resolve an endless stream of values. */
const MAX_REMEMBERED = 1000;
/** Shorter values would redact ordinary words and numbers; no real secret is this short. */
const MIN_REDACTED_LENGTH = 8;

function remember(value: string, ref: SecretRef): void {
  if (value.length < MIN_REDACTED_LENGTH || known.has(value) || identifierValues.has(value)) return;
  if (known.size >= MAX_REMEMBERED) known.delete(known.keys().next().value as string);
  known.set(value, ref);
}

/**
 * Reads the secret a reference points at, when it is needed (never at load, never into history).
 * `redact: false` is for values that only identify (an access key id, shown by S3 itself in its
 * errors and often an ordinary word such as the local stack's "lifeboat"): redacting them would
 * garble every message that mentions that word.
 */
export function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env, options: { redact?: boolean } = {}): string {
  let value: string;
  if (ref.startsWith('env:')) {
    const name = ref.slice('env:'.length);
    const raw = env[name];
    if (raw === undefined || raw === '') throw new LifeboatError(`The secret reference ${ref} points at an unset environment variable: set ${name} in the worker's environment.`, 'SECRET_MISSING');
    value = raw;
  } else {
    value = readSecretFile(ref, ref.slice('file:'.length));
  }
  if (options.redact !== false && !identifierRefs.has(ref)) remember(value, ref);
  else {
    // Once read as an identifier, the value stays readable even if another path remembered it first.
    identifierValues.add(value);
    known.delete(value);
  }
  return value;
}

function readSecretFile(ref: SecretRef, file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new LifeboatError(`The secret reference ${ref} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): create the file or fix the reference.`, 'SECRET_MISSING');
  }
  try {
    // Checked on the open file, so the mode judged is that of the bytes read.
    const mode = fs.fstatSync(fd).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new LifeboatError(
        `The secret file ${file} (${ref}) is open to other users (mode ${mode.toString(8).padStart(3, '0')}), so lifeboat refuses it: run chmod 600 ${file}.`,
        'SECRET_EXPOSED',
      );
    }
    return fs.readFileSync(fd, 'utf8').trim();
  } finally {
    fs.closeSync(fd);
  }
}

/** Every remembered secret value in `text` replaced by `[secret from <ref>]`. */
export function redactSecrets(text: string): string {
  if (known.size === 0 || !text) return text;
  let out = text;
  // Longest first, so a secret containing another is replaced whole.
  const values = [...known.keys()].sort((a, b) => b.length - a.length);
  for (const value of values) {
    const label = `[secret from ${known.get(value)}]`;
    for (const form of new Set([value, encodeURIComponent(value), encodeURI(value), JSON.stringify(value).slice(1, -1)])) {
      if (form.length >= MIN_REDACTED_LENGTH && out.includes(form)) out = out.split(form).join(label);
    }
    // A URL secret also shows up as the URL parser writes it back (a trailing slash added, case folded).
    const normalized = normalizedUrl(value);
    if (normalized && normalized !== value && out.includes(normalized)) out = out.split(normalized).join(label);
  }
  return out;
}

function normalizedUrl(value: string): string | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return undefined;
  try {
    return new URL(value).href;
  } catch {
    return undefined;
  }
}

/** Whether any remembered secret appears in `text` (for checks and tests). */
export function containsSecret(text: string): boolean {
  return redactSecrets(text) !== text;
}

/** `value` with every string in it redacted (objects and arrays walked, other values kept). */
export function redactDeep<T>(value: T): T {
  if (known.size === 0) return value;
  if (typeof value === 'string') return redactSecrets(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return value;
}

/** An error whose message and stack are redacted: the same object when nothing secret is in it. */
export function redactError(err: unknown): unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? redactSecrets(err) : err;
  const message = redactSecrets(err.message);
  const stack = err.stack === undefined ? undefined : redactSecrets(err.stack);
  if (message !== err.message || stack !== err.stack) {
    err.message = message;
    err.stack = stack;
  }
  // A cause (a fetch TypeError's cause, say) is serialized into the failure too.
  if (err.cause !== undefined) err.cause = redactError(err.cause);
  return err;
}

/**
 * Resolves a URL kept as a secret (a webhook carrying its token) and checks it: a valid URL,
 * https unless this endpoint is explicitly allowed plain http. The problem names the
 * reference, never the value.
 */
export function resolveSecretUrl(ref: SecretRef, what: string, options: { allowInsecure?: boolean; allowInsecureKey: string }, env: NodeJS.ProcessEnv = process.env): URL {
  const value = resolveSecret(ref, env);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new LifeboatError(`The ${what} read from ${ref} is not a valid URL: fix the secret (its value is not shown).`, 'SECRET_INVALID');
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && options.allowInsecure) return url;
  if (url.protocol === 'http:') {
    throw new LifeboatError(`The ${what} read from ${ref} uses plain http: make it https, or set ${options.allowInsecureKey}: true to allow this endpoint unencrypted.`, 'SECRET_INVALID');
  }
  throw new LifeboatError(`The ${what} read from ${ref} is not an http(s) URL: fix the secret (its value is not shown).`, 'SECRET_INVALID');
}
