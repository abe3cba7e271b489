/**
 * A small declarative schema language for the config file. A field is declared once, with its
 * type, default, constraints and description; from that one declaration come
 *   - the TypeScript type of the loaded value (`Infer<typeof field>`),
 *   - validation that reports every problem with its path instead of stopping at the first,
 *   - default filling (defaults are written as the user would write them, and decoded the same way),
 *   - the rows of docs/config.md (see docs.ts).
 * Cross-field checks are declared in the schema too: names that others refer to (`defines`),
 * references to them (`t.ref`) and object-level rules that say, in a sentence for the docs,
 * what they guarantee.
 */
import { formatConfigDuration, parseDuration } from './duration';

export type PathSegment = string | number;

export interface Issue {
  path: PathSegment[];
  message: string;
}

/** `targets.databases[1].engine`, `people["alice@example.com"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || '(top level)';
}

/** How a value the user wrote is shown back in a message. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The known word closest to a misspelt one, if any is close enough to be a likely typo. */
export function closest(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function startsWith(path: readonly PathSegment[], prefix: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => path[i] === seg);
}

// ----- decoding -------------------------------------------------------------------------------

export interface DecodeOptions {
  /** Values for `{name}` placeholders in path fields, e.g. `{ dataDir: '/var/lib/lifeboat' }`. */
  placeholders?: Record<string, string>;
}

/** A check across fields, declared on an object and listed in the docs by what it `says`. */
export interface Rule<T> {
  /** One sentence for docs/config.md: what the check guarantees. */
  says: string;
  /** Fields of this object the check reads (`targets.buckets` reaches deeper): it runs only once they are all valid (default: all). */
  uses?: readonly string[];
  check(value: T, report: (path: PathSegment | readonly PathSegment[], message: string) => void): void;
}

interface Definition {
  path: PathSegment[];
}

class DecodeContext {
  readonly issues: Issue[] = [];
  private readonly names = new Map<string, Map<string, Definition>>();
  private readonly refs: Array<{ path: PathSegment[]; ref: RefField; name: string }> = [];
  private readonly rules: Array<{ path: PathSegment[]; rule: Rule<never>; value: unknown }> = [];

  constructor(readonly options: DecodeOptions) {}

  report(path: readonly PathSegment[], message: string): void {
    this.issues.push({ path: [...path], message });
  }

  define(collection: string, name: string, path: PathSegment[], unique: boolean): void {
    let names = this.names.get(collection);
    if (!names) this.names.set(collection, (names = new Map()));
    const earlier = names.get(name);
    if (earlier && unique) this.report(path, `${JSON.stringify(name)} is already the name of ${formatPath(earlier.path.slice(0, -1))}: names must be unique`);
    else if (!earlier) names.set(name, { path });
  }

  refer(path: PathSegment[], ref: RefField, name: string): void {
    this.refs.push({ path, ref, name });
  }

  defer(path: PathSegment[], rules: readonly Rule<never>[], value: unknown): void {
    for (const rule of rules) this.rules.push({ path, rule, value });
  }

  /** After every field is decoded: resolve references, then run the rules whose inputs are valid. */
  finish(): void {
    for (const { path, ref, name } of this.refs) {
      const known = [...(this.names.get(ref.to)?.keys() ?? [])];
      if (known.includes(name)) continue;
      const guess = closest(name, known);
      const list = known.length ? `known: ${known.join(', ')}` : `none is declared`;
      this.report(path, `${ref.noun} ${JSON.stringify(name)} is not ${ref.where} (${list}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ''})`);
    }
    const before = [...this.issues];
    for (const { path, rule, value } of this.rules) {
      const inputs = rule.uses ? rule.uses.map((field) => [...path, ...field.split('.')]) : [path];
      if (before.some((issue) => inputs.some((input) => startsWith(issue.path, input)))) continue;
      rule.check(value as never, (rel, message) => this.report([...path, ...(Array.isArray(rel) ? rel : [rel])], message));
    }
  }
}

/** Decodes `input` against `field`: the filled-in value, and every problem found (empty when valid). */
export function decode<F extends AnyField>(field: F, input: unknown, options: DecodeOptions = {}): { value: Infer<F> | undefined; issues: Issue[] } {
  const ctx = new DecodeContext(options);
  const value = field.decode(input, [], ctx) as Infer<F> | undefined;
  ctx.finish();
  return { value, issues: ctx.issues };
}

// ----- fields ---------------------------------------------------------------------------------

/** A child a docs walk descends into: `.name`, `[]` or `.<environment>`, maybe for one variant. */
export interface DocChild {
  segment: string;
  field: AnyField;
  /** `engine: rds` when the child exists only for one variant of a union. */
  when?: string;
}

/**
 * The base of every field. `T` is the loaded value's type; `Opt` is true when the field may be
 * left out and has no default (then the loaded value may be undefined).
 */
export abstract class Field<T, Opt extends boolean = boolean> {
  declare readonly __type: T;
  declare readonly __optional: Opt;
  isOptional = false;
  hasDefault = false;
  defaultInput: unknown = undefined;
  rules: readonly Rule<never>[] = [];

  constructor(readonly description: string) {}

  /** May be left out; the loaded value is then undefined. */
  optional(): Field<T, true> {
    return this.copy({ isOptional: true }) as unknown as Field<T, true>;
  }

  /** Used when left out. Written as in the file ("15m", not 900) and checked now, at declaration. */
  default(input: unknown): Field<T, false> {
    // Only the value's own constraints: references and rules depend on the rest of a file.
    // Placeholders get a stand-in here; the default is decoded with the real ones at load.
    const probe = new DecodeContext({ placeholders: { dataDir: '/lifeboat-data-dir' } });
    this.decodePresent(input, [], probe);
    if (probe.issues.length) {
      throw new Error(`schema bug: default ${renderInline(input)} is invalid: ${probe.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ')}`);
    }
    return this.copy({ hasDefault: true, defaultInput: input }) as unknown as Field<T, false>;
  }

  protected copy(patch: Partial<Field<T, Opt>>): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this) as object) as this, this, patch);
  }

  /** True when leaving the field out is fine because every part of it has a default. */
  get fillable(): boolean {
    return false;
  }

  decode(input: unknown, path: PathSegment[], ctx: DecodeContext): T | undefined {
    if (input === undefined || input === null) {
      if (this.hasDefault) return this.decodePresent(this.defaultInput, path, ctx);
      if (this.isOptional) return undefined;
      if (this.fillable) return this.decodePresent({}, path, ctx);
      ctx.report(path, 'is required');
      return undefined;
    }
    return this.decodePresent(input, path, ctx);
  }

  protected abstract decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): T | undefined;

  /** Type as docs/config.md names it. */
  abstract docType(): string;

  /** Constraints as short phrases for the docs. */
  docConstraints(): string[] {
    return [];
  }

  /** The default as written in the file, for the docs. */
  docDefault(): string | undefined {
    return this.hasDefault ? renderInline(this.defaultInput) : undefined;
  }

  docChildren(): DocChild[] {
    return [];
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyField = Field<any, boolean>;
export type Infer<F> = F extends Field<infer T, boolean> ? T : never;

type Expand<T> = T extends infer O ? { [K in keyof O]: O[K] } : never;
export type Shape = Record<string, AnyField>;
type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends Field<unknown, true> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends Field<unknown, true> ? K : never }[keyof S];
export type ObjectOf<S extends Shape> = Expand<{ [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }>;

/** A value as it is written inline in YAML, for docs: `15m`, `[sunday]`, `{}`. */
export function renderInline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(renderInline).join(', ')}]`;
  if (isMap(value)) return `{${Object.entries(value).map(([k, v]) => `${k}: ${renderInline(v)}`).join(', ')}}`;
  if (typeof value === 'string') return value === '' || /^[\s]|[\s]$|^[[{&*!|>'"%@`#,]|: | #/.test(value) ? JSON.stringify(value) : value;
  return String(value);
}

// --- scalars

export interface StringOptions {
  description: string;
  /** The value must match this pattern... */
  pattern?: RegExp;
  /** ...which reads, in a message, "must be <hint>". */
  hint?: string;
  minLength?: number;
  maxLength?: number;
  /** Registers the value as a name others can refer to (`t.ref`), unique in `collection` if `unique`. */
  defines?: { collection: string; unique: boolean; label: string };
}

export class StringField extends Field<string, false> {
  constructor(readonly options: StringOptions) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): string | undefined {
    if (typeof input !== 'string') {
      ctx.report(path, `must be a string (got ${describeValue(input)})`);
      return undefined;
    }
    const { pattern, hint, minLength = 1, maxLength, defines } = this.options;
    if (input.length < minLength) {
      ctx.report(path, minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters long (got ${describeValue(input)})`);
      return undefined;
    }
    if (maxLength !== undefined && input.length > maxLength) {
      ctx.report(path, `must be at most ${maxLength} characters long (got ${input.length})`);
      return undefined;
    }
    if (pattern && !pattern.test(input)) {
      ctx.report(path, `must be ${hint ?? `a string matching ${pattern.source}`} (got ${describeValue(input)})`);
      return undefined;
    }
    if (defines) ctx.define(defines.collection, input, path, defines.unique);
    return input;
  }

  docType(): string {
    return 'string';
  }

  override docConstraints(): string[] {
    const { hint, pattern, minLength, maxLength, defines } = this.options;
    const out: string[] = [];
    if (hint) out.push(hint);
    else if (pattern) out.push(`matches \`${pattern.source}\``);
    if (minLength === 0) out.push('may be empty');
    if (maxLength !== undefined) out.push(`at most ${maxLength} characters`);
    if (defines?.unique) out.push(`unique among ${defines.label}`);
    return out;
  }
}

export interface NumberOptions {
  description: string;
  min?: number;
  max?: number;
}

export class IntegerField extends Field<number, false> {
  constructor(readonly options: NumberOptions) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): number | undefined {
    if (typeof input !== 'number' || !Number.isInteger(input)) {
      ctx.report(path, `must be a whole number (got ${describeValue(input)})`);
      return undefined;
    }
    const { min, max } = this.options;
    if (min !== undefined && input < min) {
      ctx.report(path, `must be at least ${min} (got ${input})`);
      return undefined;
    }
    if (max !== undefined && input > max) {
      ctx.report(path, `must be at most ${max} (got ${input})`);
      return undefined;
    }
    return input;
  }

  docType(): string {
    return 'integer';
  }

  override docConstraints(): string[] {
    const { min, max } = this.options;
    if (min !== undefined && max !== undefined) return [`${min} to ${max}`];
    if (min !== undefined) return [`at least ${min}`];
    if (max !== undefined) return [`at most ${max}`];
    return [];
  }
}

export class BooleanField extends Field<boolean, false> {
  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): boolean | undefined {
    if (typeof input !== 'boolean') {
      ctx.report(path, `must be true or false (got ${describeValue(input)})`);
      return undefined;
    }
    return input;
  }

  docType(): string {
    return 'boolean';
  }
}

export class EnumField<V extends string | number> extends Field<V, false> {
  constructor(
    readonly values: readonly V[],
    description: string,
  ) {
    super(description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): V | undefined {
    if (this.values.includes(input as V)) return input as V;
    const guess = typeof input === 'string' ? closest(input, this.values.map(String)) : undefined;
    const expected = this.values.length === 1 ? `must be ${this.values[0]}` : `must be one of ${this.values.join(', ')}`;
    ctx.report(path, `${expected} (got ${describeValue(input)}${guess ? `; did you mean ${guess}?` : ''})`);
    return undefined;
  }

  docType(): string {
    const values = this.values.map((v) => `\`${v}\``);
    return values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
  }
}

export interface DurationOptions {
  description: string;
  /** Smallest accepted duration in seconds (default 1: every duration is longer than zero). */
  minSeconds?: number;
}

/** A duration written "15m", "1h", "24h", "7d"; loaded as seconds. */
export class DurationField extends Field<number, false> {
  constructor(readonly options: DurationOptions) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): number | undefined {
    const seconds = typeof input === 'string' ? parseDuration(input) : undefined;
    if (seconds === undefined) {
      ctx.report(path, `must be a duration with a unit, like 15m, 1h, 24h or 7d (got ${describeValue(input)})`);
      return undefined;
    }
    const min = this.options.minSeconds ?? 1;
    if (seconds < min) {
      ctx.report(path, min === 1 ? `must be longer than zero (got ${describeValue(input)})` : `must be at least ${formatConfigDuration(min)} (got ${describeValue(input)})`);
      return undefined;
    }
    return seconds;
  }

  docType(): string {
    return 'duration';
  }

  override docConstraints(): string[] {
    const min = this.options.minSeconds ?? 1;
    return [min === 1 ? 'longer than zero' : `at least ${formatConfigDuration(min)}`];
  }
}

export interface TimeOfDay {
  hour: number;
  minute: number;
}

/** A UTC time of day written "03:00"; loaded as `{ hour, minute }`. */
export class TimeOfDayField extends Field<TimeOfDay, false> {
  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): TimeOfDay | undefined {
    const match = typeof input === 'string' ? /^([01]\d|2[0-3]):([0-5]\d)$/.exec(input) : null;
    if (!match) {
      ctx.report(path, `must be a 24-hour UTC time written HH:MM, like "03:00" (got ${describeValue(input)})`);
      return undefined;
    }
    return { hour: Number(match[1]), minute: Number(match[2]) };
  }

  docType(): string {
    return 'time (HH:MM, UTC)';
  }
}

/** Where a secret is read at run time: the environment or a file. Never the secret itself. */
export type SecretRef = `env:${string}` | `file:${string}`;

/** Replaces `{name}` placeholders (such as `{dataDir}`); an unknown one is reported, giving undefined. */
function expandPlaceholders(input: string, path: PathSegment[], ctx: DecodeContext): string | undefined {
  const placeholders = ctx.options.placeholders ?? {};
  let unknown: string | undefined;
  const expanded = input.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => {
    if (Object.prototype.hasOwnProperty.call(placeholders, name)) return placeholders[name];
    unknown ??= name;
    return whole;
  });
  if (unknown !== undefined) {
    const known = Object.keys(placeholders).map((k) => `{${k}}`);
    ctx.report(path, `uses unknown placeholder {${unknown}} (known: ${known.length ? known.join(', ') : 'none'})`);
    return undefined;
  }
  return expanded;
}

/**
 * `{ secretRef: env:NAME }` or `{ secretRef: file:/path }`; loaded as the reference string.
 * A plain string is refused, so a pasted secret never passes.
 */
export class SecretRefField extends Field<SecretRef, false> {
  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): SecretRef | undefined {
    const shape = 'a secret reference written `secretRef: env:NAME` or `secretRef: file:/absolute/path` (the path may start with {dataDir})';
    if (!isMap(input)) {
      const why = typeof input === 'string' ? ': secrets never go in this file, only where to read them' : '';
      ctx.report(path, `must be ${shape} (got ${typeof input === 'string' ? 'a plain string' : describeValue(input)})${why}`);
      return undefined;
    }
    for (const key of Object.keys(input)) {
      if (key !== 'secretRef') ctx.report([...path, key], `unknown key; a secret reference has only secretRef`);
    }
    const raw = input.secretRef;
    // A file reference may start with a placeholder, e.g. file:{dataDir}/secrets/minio-secret-key.
    const ref = typeof raw === 'string' && raw.startsWith('file:') ? expandPlaceholders(raw, [...path, 'secretRef'], ctx) : raw;
    if (ref === undefined && raw !== undefined) return undefined;
    if (typeof ref !== 'string' || !/^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/.test(ref)) {
      ctx.report([...path, 'secretRef'], raw === undefined ? 'is required' : `must be env:NAME or file:/absolute/path (got ${describeValue(raw)})`);
      return undefined;
    }
    return ref as SecretRef;
  }

  docType(): string {
    return 'secret reference';
  }
}

export interface PathOptions {
  description: string;
}

/**
 * An absolute file path. `{name}` placeholders (such as `{dataDir}`) are replaced with the
 * values the loader was given, so one file can describe a stack whose data directory moves.
 */
export class PathField extends Field<string, false> {
  constructor(readonly options: PathOptions) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): string | undefined {
    if (typeof input !== 'string' || input === '') {
      ctx.report(path, `must be an absolute path (got ${describeValue(input)})`);
      return undefined;
    }
    const expanded = expandPlaceholders(input, path, ctx);
    if (expanded === undefined) return undefined;
    if (!expanded.startsWith('/')) {
      ctx.report(path, `must be an absolute path, or start with a placeholder such as {dataDir} (got ${describeValue(input)})`);
      return undefined;
    }
    return expanded;
  }

  docType(): string {
    return 'path';
  }

  override docConstraints(): string[] {
    return ['absolute, or starting with `{dataDir}`'];
  }
}

export interface UrlOptions {
  description: string;
  protocols: readonly string[];
}

export class UrlField extends Field<string, false> {
  constructor(readonly options: UrlOptions) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): string | undefined {
    const schemes = this.options.protocols.join(' or ');
    let url: URL | undefined;
    try {
      if (typeof input === 'string') url = new URL(input);
    } catch {
      url = undefined;
    }
    if (!url || !this.options.protocols.includes(url.protocol.replace(/:$/, ''))) {
      ctx.report(path, `must be a ${schemes} URL (got ${describeValue(input)})`);
      return undefined;
    }
    if (url.username || url.password) {
      ctx.report(path, 'must not carry credentials: give them as secret references instead');
      return undefined;
    }
    return (input as string).replace(/\/+$/, '');
  }

  docType(): string {
    return 'URL';
  }

  override docConstraints(): string[] {
    return [this.options.protocols.join(' or ')];
  }
}

export interface RefOptions {
  description: string;
  /** The collection the name must be in (see StringOptions.defines, DictOptions.defines). */
  to: string;
  /** What one entry is called in messages: "environment", "object store", "role". */
  noun: string;
  /** How a missing name reads: `role "x" is not <where>`, e.g. "declared in environments". */
  where: string;
}

/** A name that must be defined elsewhere in the file. */
export class RefField extends Field<string, false> {
  readonly to: string;
  readonly noun: string;
  readonly where: string;

  constructor(readonly options: RefOptions) {
    super(options.description);
    this.to = options.to;
    this.noun = options.noun;
    this.where = options.where;
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): string | undefined {
    if (typeof input !== 'string' || input === '') {
      ctx.report(path, `must be the name of ${/^[aeiou]/.test(this.noun) ? 'an' : 'a'} ${this.noun} (got ${describeValue(input)})`);
      return undefined;
    }
    ctx.refer(path, this, input);
    return input;
  }

  docType(): string {
    return `${this.noun} name`;
  }

  override docConstraints(): string[] {
    return [this.where];
  }
}

// --- structures

export interface ListOptions {
  description: string;
  minItems?: number;
  /** Scalars only: the same value may not appear twice. */
  unique?: boolean;
}

export class ListField<I extends AnyField> extends Field<Infer<I>[], false> {
  constructor(
    readonly item: I,
    readonly options: ListOptions,
  ) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): Infer<I>[] | undefined {
    if (!Array.isArray(input)) {
      ctx.report(path, `must be a list (got ${describeValue(input)})`);
      return undefined;
    }
    const { minItems = 0, unique } = this.options;
    if (input.length < minItems) ctx.report(path, minItems === 1 ? 'must list at least one entry' : `must list at least ${minItems} entries (got ${input.length})`);
    const out: Infer<I>[] = [];
    const seen = new Map<string, number>();
    input.forEach((entry, index) => {
      const value = this.item.decode(entry, [...path, index], ctx) as Infer<I> | undefined;
      if (value === undefined) return;
      if (unique) {
        const key = JSON.stringify(value);
        const first = seen.get(key);
        if (first !== undefined) ctx.report([...path, index], `repeats ${describeValue(entry)} from ${formatPath([...path, first])}`);
        else seen.set(key, index);
      }
      out.push(value);
    });
    return out;
  }

  docType(): string {
    const item = this.item.docType();
    return item.startsWith('one of') ? `list, each ${item}` : `list of ${item}s`;
  }

  override docConstraints(): string[] {
    const out: string[] = [];
    if (this.options.minItems) out.push(`at least ${this.options.minItems} ${this.options.minItems === 1 ? 'entry' : 'entries'}`);
    if (this.options.unique) out.push('no repeats');
    return [...out, ...this.item.docConstraints().map((c) => `each ${c}`)];
  }

  override docChildren(): DocChild[] {
    return this.item instanceof ObjectField || this.item instanceof UnionField ? [{ segment: '[]', field: this.item }] : [];
  }
}

export interface DictOptions {
  description: string;
  /** Pattern every key must match, and how it reads in a message ("must be <keyHint>"). */
  keyPattern: RegExp;
  keyHint: string;
  /** How a key is named in docs paths: `environments.<environment>.tier`. */
  keyLabel: string;
  /** Registers every key as a name others can refer to. */
  defines?: string;
  minEntries?: number;
}

/** A map from names the user chooses to values of one shape. */
export class DictField<V extends AnyField> extends Field<Record<string, Infer<V>>, false> {
  constructor(
    readonly value: V,
    readonly options: DictOptions,
  ) {
    super(options.description);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): Record<string, Infer<V>> | undefined {
    if (!isMap(input)) {
      ctx.report(path, `must be a map of ${this.options.keyLabel} to its settings (got ${describeValue(input)})`);
      return undefined;
    }
    const { keyPattern, keyHint, defines, minEntries = 0 } = this.options;
    const keys = Object.keys(input);
    if (keys.length < minEntries) ctx.report(path, `must have at least ${minEntries} ${minEntries === 1 ? 'entry' : 'entries'}`);
    const out: Record<string, Infer<V>> = {};
    for (const key of keys) {
      if (!keyPattern.test(key)) {
        ctx.report([...path, key], `is not a valid ${this.options.keyLabel}: it must be ${keyHint}`);
        continue;
      }
      if (defines) ctx.define(defines, key, [...path, key], true);
      const value = this.value.decode(input[key], [...path, key], ctx) as Infer<V> | undefined;
      if (value !== undefined) out[key] = value;
    }
    return out;
  }

  docType(): string {
    return `map of ${this.options.keyLabel} → ${this.value.docType()}`;
  }

  override docConstraints(): string[] {
    const values = this.value.docConstraints();
    return [`keys: ${this.options.keyHint}`, ...(values.length ? [`values: ${values.join(', ')}`] : [])];
  }

  override docChildren(): DocChild[] {
    return this.value instanceof ObjectField || this.value instanceof UnionField ? [{ segment: `.<${this.options.keyLabel}>`, field: this.value }] : [];
  }
}

function reportUnknownKeys(input: Record<string, unknown>, allowed: readonly string[], path: PathSegment[], ctx: DecodeContext, elsewhere?: (key: string) => string | undefined): void {
  for (const key of Object.keys(input)) {
    if (allowed.includes(key)) continue;
    const other = elsewhere?.(key);
    if (other) {
      ctx.report([...path, key], other);
      continue;
    }
    const guess = closest(key, allowed);
    ctx.report([...path, key], guess ? `unknown key; did you mean ${JSON.stringify(guess)}?` : `unknown key (allowed here: ${allowed.join(', ')})`);
  }
}

function decodeFields(fields: Shape, input: Record<string, unknown>, path: PathSegment[], ctx: DecodeContext, out: Record<string, unknown>): void {
  for (const [key, field] of Object.entries(fields)) {
    const value = field.decode(input[key], [...path, key], ctx);
    if (value !== undefined) out[key] = value;
  }
}

const fillable = (fields: Shape) => Object.values(fields).every((f) => f.hasDefault || f.isOptional || f.fillable);

export interface ObjectOptions<T> {
  description: string;
  rules?: readonly Rule<T>[];
}

/** A map with a fixed set of keys. Unknown keys are errors, with a guess at the intended one. */
export class ObjectField<S extends Shape> extends Field<ObjectOf<S>, false> {
  constructor(
    readonly fields: S,
    options: ObjectOptions<ObjectOf<S>>,
  ) {
    super(options.description);
    this.rules = (options.rules ?? []) as readonly Rule<never>[];
  }

  override get fillable(): boolean {
    return !this.isOptional && fillable(this.fields);
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): ObjectOf<S> | undefined {
    if (!isMap(input)) {
      ctx.report(path, `must be a map with keys ${Object.keys(this.fields).join(', ')} (got ${describeValue(input)})`);
      return undefined;
    }
    const out: Record<string, unknown> = {};
    decodeFields(this.fields, input, path, ctx, out);
    reportUnknownKeys(input, Object.keys(this.fields), path, ctx);
    ctx.defer(path, this.rules, out);
    return out as ObjectOf<S>;
  }

  docType(): string {
    return 'map';
  }

  override docChildren(): DocChild[] {
    return Object.entries(this.fields).map(([key, field]) => ({ segment: `.${key}`, field }));
  }
}

type UnionOf<D extends string, C extends Shape, V extends Record<string, Shape>> = {
  [K in keyof V & string]: Expand<{ [P in D]: K } & ObjectOf<C> & ObjectOf<V[K]>>;
}[keyof V & string];

/**
 * A map whose allowed keys depend on one of them, the discriminator: with `engine: rds` the
 * RDS keys apply, with `engine: pgbackrest` the pgBackRest ones. Keys of another variant are
 * refused with a message saying which variant they belong to.
 */
export class UnionField<D extends string, C extends Shape, V extends Record<string, Shape>> extends Field<UnionOf<D, C, V>, false> {
  readonly tag: EnumField<string>;

  constructor(
    readonly discriminator: D,
    readonly common: C,
    readonly variants: V,
    options: ObjectOptions<UnionOf<D, C, V>> & { discriminatorDescription: string },
  ) {
    super(options.description);
    this.tag = new EnumField(Object.keys(variants), options.discriminatorDescription);
    this.rules = (options.rules ?? []) as readonly Rule<never>[];
  }

  protected decodePresent(input: unknown, path: PathSegment[], ctx: DecodeContext): UnionOf<D, C, V> | undefined {
    const d = this.discriminator;
    if (!isMap(input)) {
      ctx.report(path, `must be a map with ${d} and its settings (got ${describeValue(input)})`);
      return undefined;
    }
    const tag = this.tag.decode(input[d], [...path, d], ctx);
    const out: Record<string, unknown> = {};
    decodeFields(this.common, input, path, ctx, out);
    const common = [d, ...Object.keys(this.common)];
    if (tag === undefined) {
      // Without a valid discriminator only keys no variant knows are certainly wrong.
      const any = new Set([...common, ...Object.values(this.variants).flatMap((v) => Object.keys(v))]);
      reportUnknownKeys(input, [...any], path, ctx);
      return undefined;
    }
    out[d] = tag;
    const variant = this.variants[tag];
    decodeFields(variant, input, path, ctx, out);
    const owner = (key: string) => {
      const others = Object.keys(this.variants).filter((name) => name !== tag && key in this.variants[name]);
      return others.length ? `is not used with ${d} ${tag} (it belongs to ${d} ${others.join(', ')})` : undefined;
    };
    reportUnknownKeys(input, [...common, ...Object.keys(variant)], path, ctx, owner);
    ctx.defer(path, this.rules, out);
    return out as UnionOf<D, C, V>;
  }

  docType(): string {
    return 'map';
  }

  override docChildren(): DocChild[] {
    return [
      { segment: `.${this.discriminator}`, field: this.tag },
      ...Object.entries(this.common).map(([key, field]) => ({ segment: `.${key}`, field })),
      ...Object.entries(this.variants).flatMap(([name, fields]) =>
        Object.entries(fields).map(([key, field]) => ({ segment: `.${key}`, field, when: `${this.discriminator}: ${name}` })),
      ),
    ];
  }
}

// ----- builders -------------------------------------------------------------------------------

export const t = {
  string: (options: StringOptions) => new StringField(options),
  integer: (options: NumberOptions) => new IntegerField(options),
  boolean: (description: string) => new BooleanField(description),
  oneOf: <const V extends string | number>(values: readonly V[], description: string) => new EnumField<V>(values, description),
  duration: (options: DurationOptions) => new DurationField(options),
  timeOfDay: (description: string) => new TimeOfDayField(description),
  secret: (description: string) => new SecretRefField(description),
  path: (options: PathOptions) => new PathField(options),
  url: (options: UrlOptions) => new UrlField(options),
  ref: (options: RefOptions) => new RefField(options),
  list: <I extends AnyField>(item: I, options: ListOptions) => new ListField(item, options),
  dict: <V extends AnyField>(value: V, options: DictOptions) => new DictField(value, options),
  object: <S extends Shape>(fields: S, options: ObjectOptions<ObjectOf<S>>) => new ObjectField(fields, options),
  union: <D extends string, C extends Shape, V extends Record<string, Shape>>(
    discriminator: D,
    common: C,
    variants: V,
    options: ObjectOptions<UnionOf<D, C, V>> & { discriminatorDescription: string },
  ) => new UnionField(discriminator, common, variants, options),
};
