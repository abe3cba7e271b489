/**
 * The config file's field types, built on zod. Each builder returns a zod schema that validates,
 * fills defaults and infers the loaded value's type, and registers in `fieldDocs` what
 * docs/config.md says about it (zod's `description` also goes into the JSON Schema). On top of
 * zod this module adds what lifeboat's messages need:
 *   - messages in lifeboat's words, with the value the user wrote and "did you mean" for typos,
 *   - names declared in one place and referred to in another (`defines`, `t.ref`), resolved
 *     once the whole file is read,
 *   - cross-field rules that run only once the fields they read are valid, each saying in a
 *     sentence for the docs what it guarantees,
 *   - `{dataDir}` placeholders in paths, expanded with the value the loader was given.
 * `decode` turns zod's issues into `{ path, message }` problems, one per unknown key.
 */
import { z } from 'zod';
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

function startsWith(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => path[i] === seg);
}

/** A value as it is written inline in YAML, for docs: `15m`, `[sunday]`, `{}`. */
export function renderInline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(renderInline).join(', ')}]`;
  if (isMap(value)) return `{${Object.entries(value).map(([k, v]) => `${k}: ${renderInline(v)}`).join(', ')}}`;
  if (typeof value === 'string') return value === '' || /^[\s]|[\s]$|^[[{&*!|>'"%@`#,]|: | #/.test(value) ? JSON.stringify(value) : value;
  return String(value);
}

// ----- what the docs say about a field --------------------------------------------------------

export interface RefTarget {
  /** The collection the name must be in (see `defines`). */
  to: string;
  /** What one entry is called in messages: "environment", "object store", "role". */
  noun: string;
  /** How a missing name reads: `role "x" is not <where>`, e.g. "declared in environments". */
  where: string;
}

export interface FieldDoc {
  description: string;
  /** Type as docs/config.md names it. */
  type: string;
  /** Constraints as short phrases. */
  constraints: string[];
  /** What the field's cross-field rules guarantee, one sentence each. */
  rules: string[];
  /** A union's discriminator: the schema documented as its key. */
  tag?: { key: string; field: z.ZodType };
  /** A dict's key as docs paths show it: `environments.<environment>`. */
  keyLabel?: string;
  /** A name others refer to, in `collection`; `unique` refuses a second one. */
  defines?: { collection: string; unique: boolean };
  /** A dict whose keys are names others refer to. */
  definesKeys?: string;
  ref?: RefTarget;
}

/** What docs/config.md says about each field (zod's global registry keeps its description for the JSON Schema). */
const fieldDocs = new WeakMap<z.ZodType, FieldDoc>();

/** Objects left out of the file and filled from their keys' defaults (docs say "from its keys"). */
const filledFromKeys = new WeakSet<z.ZodType>();

export interface Unwrapped {
  /** The field's own schema, under `.optional()` and defaults. */
  core: z.ZodType;
  doc: FieldDoc | undefined;
  optional: boolean;
  /** The default as written in the file, when there is one. */
  defaultInput?: unknown;
  hasDefault: boolean;
  fillable: boolean;
}

const unwrapped = new WeakMap<z.ZodType, Unwrapped>();

/** Schemas do not change once built, so each is unwrapped once (the loader walks the file with it). */
export function unwrap(schema: z.ZodType): Unwrapped {
  let result = unwrapped.get(schema);
  if (!result) unwrapped.set(schema, (result = unwrapUncached(schema)));
  return result;
}

function unwrapUncached(schema: z.ZodType): Unwrapped {
  let core = schema;
  let optional = false;
  let hasDefault = false;
  let fillable = false;
  let defaultInput: unknown;
  for (;;) {
    if (core instanceof z.ZodOptional || core instanceof z.ZodNullable) {
      // Nullable: the JSON Schema then lets an editor's file say `key:` (what `${NAME:-}` leaves), which loads as left out.
      optional = true;
      core = core.unwrap() as z.ZodType;
    } else if (core instanceof z.ZodPrefault) {
      if (filledFromKeys.has(core)) fillable = true;
      else {
        hasDefault = true;
        defaultInput = core.def.defaultValue;
      }
      core = core.def.innerType as z.ZodType;
    } else break;
  }
  return { core, doc: fieldDocs.get(core), optional, defaultInput, hasDefault, fillable };
}

function document<T extends z.ZodType>(schema: T, doc: Partial<FieldDoc> & Pick<FieldDoc, 'description' | 'type'>, jsonSchema: Record<string, unknown> = {}): T {
  // Registered in place rather than with .meta(), which clones: building the schema stays cheap at startup.
  z.globalRegistry.add(schema, { description: doc.description, ...jsonSchema });
  fieldDocs.set(schema, { constraints: [], rules: [], ...doc });
  return schema;
}

// ----- messages -------------------------------------------------------------------------------

type RawIssue = z.core.$ZodRawIssue;

/** An error map: "is required" for a missing value, else `message` for what was written. */
const says =
  (message: (input: unknown) => string) =>
  (issue: RawIssue): string =>
    issue.input === undefined ? 'is required' : message(issue.input);

type AddIssue = (issue: { code: 'custom'; message: string }) => void;

// ----- placeholders ---------------------------------------------------------------------------

/** What `{name}` stands for in paths during the current (synchronous) decode. */
let activePlaceholders: Record<string, string> = {};

/** Replaces `{name}` placeholders (such as `{dataDir}`); an unknown one is reported, giving undefined. */
function expandPlaceholders(input: string, addIssue: AddIssue): string | undefined {
  const placeholders = activePlaceholders;
  let unknown: string | undefined;
  const expanded = input.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => {
    if (Object.prototype.hasOwnProperty.call(placeholders, name)) return placeholders[name];
    unknown ??= name;
    return whole;
  });
  if (unknown !== undefined) {
    const known = Object.keys(placeholders).map((k) => `{${k}}`);
    addIssue({ code: 'custom', message: `uses unknown placeholder {${unknown}} (known: ${known.length ? known.join(', ') : 'none'})` });
    return undefined;
  }
  return expanded;
}

// ----- cross-field rules ----------------------------------------------------------------------

/** A check across fields, declared on an object and listed in the docs by what it `says`. */
export interface Rule<T> {
  /** One sentence for docs/config.md: what the check guarantees. */
  says: string;
  /** Fields of this object the check reads (`targets.buckets` reaches deeper): it runs only once they are all valid (default: all). */
  uses?: readonly string[];
  check(value: T, report: (path: PathSegment | readonly PathSegment[], message: string) => void): void;
}

/** Adds `rules` to `schema` as refinements that run once the fields they read are valid. */
function withRules<T extends z.ZodType>(schema: T, rules: readonly Rule<z.output<T>>[]): T {
  if (!rules.length) return schema;
  const checks = rules.map((rule) => {
    const inputs = rule.uses ? rule.uses.map((field) => field.split('.')) : [[]];
    return z.superRefine<z.output<T>>(
      (value, ctx) => rule.check(value, (rel, message) => ctx.addIssue({ code: 'custom', message, path: Array.isArray(rel) ? [...(rel as PathSegment[])] : [rel as PathSegment] })),
      { when: (payload) => isMap(payload.value) && !payload.issues.some((issue) => inputs.some((input) => startsWith(issue.path ?? [], input))) },
    );
  });
  return schema.check(...checks) as T;
}

// ----- scalars --------------------------------------------------------------------------------

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

function string(options: StringOptions) {
  const { pattern, hint, minLength = 1, maxLength, defines } = options;
  const checks: z.core.$ZodCheck<string>[] = [];
  if (minLength > 0) {
    checks.push(z.minLength(minLength, { error: says((input) => (minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters long (got ${describeValue(input)})`)) }));
  }
  if (maxLength !== undefined) checks.push(z.maxLength(maxLength, { error: says((input) => `must be at most ${maxLength} characters long (got ${String(input).length})`) }));
  if (pattern) checks.push(z.regex(pattern, { error: says((input) => `must be ${hint ?? `a string matching ${pattern.source}`} (got ${describeValue(input)})`) }));
  const schema = z.string({ error: says((input) => `must be a string (got ${describeValue(input)})`), checks });
  const constraints: string[] = [];
  if (hint) constraints.push(hint);
  else if (pattern) constraints.push(`matches \`${pattern.source}\``);
  if (minLength === 0) constraints.push('may be empty');
  if (maxLength !== undefined) constraints.push(`at most ${maxLength} characters`);
  if (defines?.unique) constraints.push(`unique among ${defines.label}`);
  return document(schema, { description: options.description, type: 'string', constraints, defines: defines && { collection: defines.collection, unique: defines.unique } });
}

export interface NumberOptions {
  description: string;
  min?: number;
  max?: number;
}

function integer(options: NumberOptions) {
  const { min, max } = options;
  const checks: z.core.$ZodCheck<number>[] = [];
  if (min !== undefined) checks.push(z.gte(min, { error: says((input) => `must be at least ${min} (got ${String(input)})`) }));
  if (max !== undefined) checks.push(z.lte(max, { error: says((input) => `must be at most ${max} (got ${String(input)})`) }));
  const schema = z.int({ error: says((input) => `must be a whole number (got ${describeValue(input)})`) }).check(...checks);
  let constraints: string[] = [];
  if (min !== undefined && max !== undefined) constraints = [`${min} to ${max}`];
  else if (min !== undefined) constraints = [`at least ${min}`];
  else if (max !== undefined) constraints = [`at most ${max}`];
  return document(schema, { description: options.description, type: 'integer', constraints });
}

/** A decimal number (a price), with optional bounds. */
function decimal(options: NumberOptions) {
  const { min, max } = options;
  const checks: z.core.$ZodCheck<number>[] = [];
  if (min !== undefined) checks.push(z.gte(min, { error: says((input) => `must be at least ${min} (got ${String(input)})`) }));
  if (max !== undefined) checks.push(z.lte(max, { error: says((input) => `must be at most ${max} (got ${String(input)})`) }));
  const schema = z.number({ error: says((input) => `must be a number (got ${describeValue(input)})`) }).check(...checks);
  const constraints = min !== undefined && max !== undefined ? [`${min} to ${max}`] : min !== undefined ? [`at least ${min}`] : max !== undefined ? [`at most ${max}`] : [];
  return document(schema, { description: options.description, type: 'number', constraints });
}

function boolean(description: string) {
  return document(z.boolean({ error: says((input) => `must be true or false (got ${describeValue(input)})`) }), { description, type: 'boolean' });
}

function oneOf<const V extends string | number>(values: readonly [V, ...V[]], description: string) {
  const expected = values.length === 1 ? `must be ${values[0]}` : `must be one of ${values.join(', ')}`;
  const schema = z.literal([...values], {
    error: says((input) => {
      const guess = typeof input === 'string' ? closest(input, values.map(String)) : undefined;
      return `${expected} (got ${describeValue(input)}${guess ? `; did you mean ${guess}?` : ''})`;
    }),
  });
  const shown = values.map((v) => `\`${v}\``);
  return document(schema, { description, type: shown.length === 1 ? shown[0] : `one of ${shown.join(', ')}` });
}

export interface DurationOptions {
  description: string;
  /** Smallest accepted duration in seconds (default 1: every duration is longer than zero). */
  minSeconds?: number;
}

/** How an editor recognises a duration; parseDuration decides. */
const DURATION_SHAPE = /^\s*(?:\d+[wdhms])+\s*$/;

/** A duration written "15m", "1h", "24h", "7d"; loaded as seconds. */
function duration(options: DurationOptions) {
  const min = options.minSeconds ?? 1;
  const shape = (input: unknown) => `must be a duration with a unit, like 15m, 1h, 24h or 7d (got ${describeValue(input)})`;
  const schema = z
    .string({ error: says(shape), checks: [z.regex(DURATION_SHAPE, { error: says(shape) })] })
    .transform((text, ctx) => {
      const seconds = parseDuration(text);
      if (seconds === undefined) ctx.addIssue({ code: 'custom', message: shape(text) });
      else if (seconds < min) {
        ctx.addIssue({ code: 'custom', message: min === 1 ? `must be longer than zero (got ${describeValue(text)})` : `must be at least ${formatConfigDuration(min)} (got ${describeValue(text)})` });
      }
      return seconds ?? 0;
    });
  return document(schema, { description: options.description, type: 'duration', constraints: [min === 1 ? 'longer than zero' : `at least ${formatConfigDuration(min)}`] });
}

export interface TimeOfDay {
  hour: number;
  minute: number;
}

/** A UTC time of day written "03:00"; loaded as `{ hour, minute }`. */
function timeOfDay(description: string) {
  const message = says((input) => `must be a 24-hour UTC time written HH:MM, like "03:00" (got ${describeValue(input)})`);
  const schema = z
    .string({ error: message, checks: [z.regex(/^([01]\d|2[0-3]):([0-5]\d)$/, { error: message })] })
    .transform((text): TimeOfDay => ({ hour: Number(text.slice(0, 2)), minute: Number(text.slice(3, 5)) }));
  return document(schema, { description, type: 'time (HH:MM, UTC)' });
}

/** Where a secret is read at run time: the environment or a file. Never the secret itself. */
export type SecretRef = `env:${string}` | `file:${string}`;

/**
 * `{ secretRef: env:NAME }` or `{ secretRef: file:/path }`; loaded as the reference string.
 * A plain string is refused, so a pasted secret never passes.
 */
function secret(description: string) {
  const shape = 'a secret reference written `secretRef: env:NAME` or `secretRef: file:/absolute/path` (the path may start with {dataDir})';
  const reference = z
    .string({ error: says((input) => `must be env:NAME or file:/absolute/path (got ${describeValue(input)})`) })
    .transform((raw, ctx) => {
      // A file reference may start with a placeholder, e.g. file:{dataDir}/secrets/minio-secret-key.
      const ref = raw.startsWith('file:') ? expandPlaceholders(raw, ctx.addIssue) : raw;
      if (ref === undefined) return raw as SecretRef;
      if (!/^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/.test(ref)) ctx.addIssue({ code: 'custom', message: `must be env:NAME or file:/absolute/path (got ${describeValue(raw)})` });
      return ref as SecretRef;
    });
  z.globalRegistry.add(reference, { pattern: '^(env:[A-Za-z_][A-Za-z0-9_]*|file:(/.+|\\{[A-Za-z]+\\}.*))$' });
  const schema = z
    .strictObject(
      { secretRef: reference },
      {
        error: (issue) => {
          if (issue.code === 'unrecognized_keys') return issue.keys.map(() => 'unknown key; a secret reference has only secretRef').join('\n');
          if (issue.input === undefined) return 'is required';
          const why = typeof issue.input === 'string' ? ': secrets never go in this file, only where to read them' : '';
          return `must be ${shape} (got ${typeof issue.input === 'string' ? 'a plain string' : describeValue(issue.input)})${why}`;
        },
      },
    )
    .transform((value) => value.secretRef);
  return document(schema, { description, type: 'secret reference' });
}

export interface PathOptions {
  description: string;
}

/**
 * An absolute file path. `{name}` placeholders (such as `{dataDir}`) are replaced with the
 * values the loader was given, so one file can describe a stack whose data directory moves.
 */
function filePath(options: PathOptions) {
  const schema = z
    .string({ error: says((input) => `must be an absolute path (got ${describeValue(input)})`) })
    .transform((input, ctx) => {
      if (input === '') {
        ctx.addIssue({ code: 'custom', message: `must be an absolute path (got ${describeValue(input)})` });
        return input;
      }
      const expanded = expandPlaceholders(input, ctx.addIssue);
      if (expanded === undefined) return input;
      if (!expanded.startsWith('/')) ctx.addIssue({ code: 'custom', message: `must be an absolute path, or start with a placeholder such as {dataDir} (got ${describeValue(input)})` });
      return expanded;
    });
  return document(schema, { description: options.description, type: 'path', constraints: ['absolute, or starting with `{dataDir}`'] }, { pattern: '^(/|\\{[A-Za-z]+\\})' });
}

export interface UrlOptions {
  description: string;
  protocols: readonly string[];
}

function url(options: UrlOptions) {
  const schemes = options.protocols.join(' or ');
  const invalid = (input: unknown) => `must be a ${schemes} URL (got ${describeValue(input)})`;
  const schema = z.string({ error: says(invalid) }).transform((input, ctx) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(input);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !options.protocols.includes(parsed.protocol.replace(/:$/, ''))) ctx.addIssue({ code: 'custom', message: invalid(input) });
    else if (parsed.username || parsed.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials: give them as secret references instead' });
    return input.replace(/\/+$/, '');
  });
  return document(schema, { description: options.description, type: 'URL', constraints: [schemes] }, { format: 'uri', pattern: `^(${options.protocols.join('|')})://` });
}

export interface RefOptions extends RefTarget {
  description: string;
}

/** A name that must be defined elsewhere in the file (checked by `t.document` once it is all read). */
function ref(options: RefOptions) {
  const article = /^[aeiou]/.test(options.noun) ? 'an' : 'a';
  const message = says((input) => `must be the name of ${article} ${options.noun} (got ${describeValue(input)})`);
  const schema = z.string({ error: message, checks: [z.minLength(1, { error: message })] });
  return document(schema, { description: options.description, type: `${options.noun} name`, constraints: [options.where], ref: { to: options.to, noun: options.noun, where: options.where } });
}

// ----- structures -----------------------------------------------------------------------------

/** An object whose keys all have defaults is filled from them when left out, as `{}` would be. */
function fillWhenLeftOut<T extends z.ZodType>(schema: T): T {
  if (!(schema instanceof z.ZodObject)) return schema;
  const shape = schema.shape as Record<string, z.ZodType>;
  if (!Object.values(shape).every((field) => field._zod.optin !== undefined)) return schema;
  const filled = (schema as z.ZodObject).prefault({});
  filledFromKeys.add(filled);
  return filled as unknown as T;
}

function fillShape<S extends z.ZodRawShape>(shape: S): S {
  return Object.fromEntries(Object.entries(shape).map(([key, field]) => [key, fillWhenLeftOut(field as z.ZodType)])) as unknown as S;
}

const docOf = (schema: z.ZodType): FieldDoc => {
  const doc = unwrap(schema).doc;
  if (!doc) throw new Error('schema bug: a field was declared without t.*, so the docs cannot describe it');
  return doc;
};

export interface ListOptions {
  description: string;
  minItems?: number;
  /** Scalars only: the same value may not appear twice. */
  unique?: boolean;
}

function list<I extends z.ZodType>(item: I, options: ListOptions) {
  const { minItems = 0, unique } = options;
  const checks: z.core.$ZodCheck<unknown[]>[] = [];
  if (minItems > 0) checks.push(z.minLength(minItems, { error: says((input) => (minItems === 1 ? 'must list at least one entry' : `must list at least ${minItems} entries (got ${(input as unknown[]).length})`)) }));
  if (unique) {
    checks.push(
      z.superRefine<unknown[]>(
      (entries, ctx) => {
        if (!Array.isArray(entries)) return;
        const invalid = new Set(ctx.issues.map((issue) => issue.path?.[0]));
        const seen = new Map<string, number>();
        entries.forEach((entry, index) => {
          if (invalid.has(index)) return;
          const key = JSON.stringify(entry);
          const first = seen.get(key);
          // The absolute path of the first one is only known to decode: it adds " from <path>".
          if (first !== undefined) ctx.addIssue({ code: 'custom', path: [index], message: `repeats ${describeValue(entry)}`, params: { repeatOf: first } });
          else seen.set(key, index);
        });
      },
      { when: () => true },
      ),
    );
  }
  const schema = z.array(fillWhenLeftOut(item), { error: says((input) => `must be a list (got ${describeValue(input)})`) }).check(...checks);
  const itemDoc = docOf(item);
  const constraints: string[] = [];
  if (minItems) constraints.push(`at least ${minItems} ${minItems === 1 ? 'entry' : 'entries'}`);
  if (unique) constraints.push('no repeats');
  return document(
    schema,
    {
      description: options.description,
      type: itemDoc.type.startsWith('one of') ? `list, each ${itemDoc.type}` : `list of ${itemDoc.type}s`,
      constraints: [...constraints, ...itemDoc.constraints.map((c) => `each ${c}`)],
    },
    unique ? { uniqueItems: true } : {},
  );
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
function dict<V extends z.ZodType>(value: V, options: DictOptions) {
  const { keyPattern, keyHint, keyLabel, defines, minEntries = 0 } = options;
  let schema = z.record(z.string().regex(keyPattern), fillWhenLeftOut(value), {
    error: (issue) => {
      if (issue.code === 'invalid_key') return `is not a valid ${keyLabel}: it must be ${keyHint}`;
      return issue.input === undefined ? 'is required' : `must be a map of ${keyLabel} to its settings (got ${describeValue(issue.input)})`;
    },
  });
  if (minEntries > 0) {
    schema = schema.superRefine(
      (entries, ctx) => {
        if (isMap(entries) && Object.keys(entries).length < minEntries) ctx.addIssue({ code: 'custom', message: `must have at least ${minEntries} ${minEntries === 1 ? 'entry' : 'entries'}` });
      },
      { when: () => true },
    );
  }
  const valueDoc = docOf(value);
  return document(
    schema,
    {
      description: options.description,
      type: `map of ${keyLabel} → ${valueDoc.type}`,
      constraints: [`keys: ${keyHint}`, ...(valueDoc.constraints.length ? [`values: ${valueDoc.constraints.join(', ')}`] : [])],
      keyLabel,
      definesKeys: defines,
    },
    minEntries > 0 ? { minProperties: minEntries } : {},
  );
}

/** Messages for unknown keys, one line per key (decode splits them): a guess at the intended one, or who owns it. */
function unknownKeysMessage(keys: readonly string[], allowed: readonly string[], elsewhere?: (key: string) => string | undefined): string {
  return keys
    .map((key) => {
      const other = elsewhere?.(key);
      if (other) return other;
      const guess = closest(key, allowed);
      return guess ? `unknown key; did you mean ${JSON.stringify(guess)}?` : `unknown key (allowed here: ${allowed.join(', ')})`;
    })
    .join('\n');
}

export interface ObjectOptions<T> {
  description: string;
  rules?: readonly Rule<T>[];
}

type Strict<S extends z.ZodRawShape> = z.ZodObject<S, z.core.$strict>;

/** A map with a fixed set of keys. Unknown keys are errors, with a guess at the intended one. */
function object<S extends z.ZodRawShape>(shape: S, options: ObjectOptions<z.output<Strict<S>>>): Strict<S> {
  const keys = Object.keys(shape);
  const schema = z.strictObject(fillShape(shape), {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return unknownKeysMessage(issue.keys, keys);
      return issue.input === undefined ? 'is required' : `must be a map with keys ${keys.join(', ')} (got ${describeValue(issue.input)})`;
    },
  });
  const rules = options.rules ?? [];
  return document(withRules(schema, rules), { description: options.description, type: 'map', rules: rules.map((r) => r.says) });
}

type Expand<T> = T extends infer O ? { [K in keyof O]: O[K] } : never;
type UnionOf<D extends string, C extends z.ZodRawShape, V extends Record<string, z.ZodRawShape>> = {
  [K in keyof V & string]: Expand<{ [P in D]: K } & z.output<Strict<C>> & z.output<Strict<V[K]>>>;
}[keyof V & string];

/**
 * A map whose allowed keys depend on one of them, the discriminator: with `engine: rds` the
 * RDS keys apply, with `engine: pgbackrest` the pgBackRest ones. Keys of another variant are
 * refused with a message saying which variant they belong to.
 */
function union<D extends string, C extends z.ZodRawShape, V extends Record<string, z.ZodRawShape>>(
  discriminator: D,
  common: C,
  variants: V,
  options: ObjectOptions<UnionOf<D, C, V>> & { discriminatorDescription: string },
): z.ZodType<UnionOf<D, C, V>> {
  const d = discriminator;
  const tags = Object.keys(variants) as [string, ...string[]];
  const tag = oneOf(tags, options.discriminatorDescription);
  const commonKeys = [d, ...Object.keys(common)];
  const owners = (key: string) => tags.filter((name) => key in variants[name]);
  const members = tags.map((name) => {
    const allowed = [...commonKeys, ...Object.keys(variants[name])];
    const elsewhere = (key: string) => {
      const others = owners(key).filter((other) => other !== name);
      return others.length ? `is not used with ${d} ${name} (it belongs to ${d} ${others.join(', ')})` : undefined;
    };
    return z.strictObject(fillShape({ [d]: z.literal(name), ...common, ...variants[name] }), {
      error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, allowed, elsewhere) : undefined),
    });
  });
  // Without a valid discriminator only keys no variant knows are certainly wrong, and the common keys can still be checked.
  const anyKey = [...new Set([...commonKeys, ...tags.flatMap((name) => Object.keys(variants[name]))])];
  const withoutVariant = z.strictObject(
    { ...fillShape(common), ...Object.fromEntries(anyKey.filter((key) => !(key in common)).map((key) => [key, z.unknown().optional()])) },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, anyKey) : undefined) },
  );
  const isTagIssue = (issue: { code?: string; path?: PropertyKey[] }) => issue.code === 'invalid_union' && issue.path?.length === 1 && issue.path[0] === d;
  const schema = z
    .discriminatedUnion(d, members as unknown as [Strict<z.ZodRawShape>, ...Strict<z.ZodRawShape>[]], {
      error: (issue) => {
        if (issue.code !== 'invalid_union') return issue.input === undefined ? 'is required' : `must be a map with ${d} and its settings (got ${describeValue(issue.input)})`;
        const written = isMap(issue.input) ? issue.input[d] : undefined;
        return written === undefined ? 'is required' : tagMessage(tag, written);
      },
    })
    .superRefine(
      (value, ctx) => {
        // Its issues join the union's as they are, so decode splits and words them like any other.
        for (const issue of withoutVariant.safeParse(value).error?.issues ?? []) ctx.addIssue({ ...issue });
      },
      { when: (payload) => isMap(payload.value) && payload.issues.some(isTagIssue) },
    );
  const rules = (options.rules ?? []) as unknown as readonly Rule<z.output<typeof schema>>[];
  return document(withRules(schema, rules), {
    description: options.description,
    type: 'map',
    rules: rules.map((r) => r.says),
    tag: { key: d, field: tag },
  }) as unknown as z.ZodType<UnionOf<D, C, V>>;
}

/** The message the discriminator's own schema gives for a value no variant has. */
function tagMessage(tag: z.ZodType, written: unknown): string {
  return tag.safeParse(written).error?.issues[0]?.message ?? 'is invalid';
}

// ----- decoding -------------------------------------------------------------------------------

/** zod's issues as lifeboat's problems: one per unknown key, repeats naming the first, one per value. */
function decodeIssues(issues: readonly z.core.$ZodIssue[]): Issue[] {
  const out: Issue[] = [];
  const valueHasIssue = new Set<string>();
  for (const issue of issues) {
    const path = issue.path as PathSegment[];
    if (issue.code === 'unrecognized_keys') {
      const lines = issue.message.split('\n');
      issue.keys.forEach((key, i) => out.push({ path: [...path, key], message: lines[i] ?? lines[0] }));
      continue;
    }
    if (issue.code === 'custom') {
      const repeatOf = issue.params?.repeatOf as number | undefined;
      out.push({ path, message: repeatOf === undefined ? issue.message : `${issue.message} from ${formatPath([...path.slice(0, -1), repeatOf])}` });
      continue;
    }
    // A value breaking several of its own constraints is reported once, by the first.
    const key = JSON.stringify(path);
    if (valueHasIssue.has(key)) continue;
    valueHasIssue.add(key);
    out.push({ path, message: issue.message });
  }
  return out;
}

export interface DecodeOptions {
  /** Values for `{name}` placeholders in path fields, e.g. `{ dataDir: '/var/lib/lifeboat' }`. */
  placeholders?: Record<string, string>;
}

/** YAML's `key:` with nothing after it is null: treated as left out, as `key` not written at all. */
function nullsAsLeftOut(value: unknown): boolean {
  let found = false;
  if (Array.isArray(value)) {
    value.forEach((entry, i) => {
      if (entry === null) {
        value[i] = undefined;
        found = true;
      } else found = nullsAsLeftOut(entry) || found;
    });
  } else if (isMap(value)) {
    for (const [key, entry] of Object.entries(value)) {
      if (entry === null) {
        value[key] = undefined;
        found = true;
      } else found = nullsAsLeftOut(entry) || found;
    }
  }
  return found;
}

function dropUndefinedKeys(value: unknown): void {
  if (Array.isArray(value)) value.forEach(dropUndefinedKeys);
  else if (isMap(value)) {
    for (const [key, entry] of Object.entries(value)) {
      if (entry === undefined) delete value[key];
      else dropUndefinedKeys(entry);
    }
  }
}

/** Decodes `input` (which it may change) against `schema`: the filled-in value, and every problem found (empty when valid). */
export function decode<T extends z.ZodType>(schema: T, input: unknown, options: DecodeOptions = {}): { value: z.output<T> | undefined; issues: Issue[] } {
  const hadNulls = nullsAsLeftOut(input);
  const previous = activePlaceholders;
  activePlaceholders = options.placeholders ?? {};
  try {
    const result = schema.safeParse(input);
    if (!result.success) return { value: undefined, issues: decodeIssues(result.error.issues) };
    if (hadNulls) dropUndefinedKeys(result.data);
    return { value: result.data, issues: [] };
  } finally {
    activePlaceholders = previous;
  }
}

// ----- names and references -------------------------------------------------------------------

/** The schemas directly inside `core`: an object's fields, a list's item, a map's value, a union's variants. */
function innerSchemas(core: z.ZodType): z.ZodType[] {
  if (core instanceof z.ZodObject) return Object.values(core.shape as Record<string, z.ZodType>);
  if (core instanceof z.ZodArray) return [core.element as z.ZodType];
  if (core instanceof z.ZodRecord) return [core.valueType as z.ZodType];
  if (core instanceof z.ZodDiscriminatedUnion) return core.options as z.ZodType[];
  return [];
}

const namesInside = new WeakMap<z.ZodType, boolean>();

/** Whether a name or a reference to one can be found in values of `schema` (the walk skips the rest). */
function holdsNames(schema: z.ZodType): boolean {
  let found = namesInside.get(schema);
  if (found === undefined) {
    const { core, doc } = unwrap(schema);
    found = Boolean(doc?.defines || doc?.definesKeys || doc?.ref) || innerSchemas(core).some(holdsNames);
    namesInside.set(schema, found);
  }
  return found;
}

/** Calls `visit` for every documented field of `value` that holds names or references, with its path (the value as parsed so far). */
function visitFields(schema: z.ZodType, value: unknown, path: PathSegment[], visit: (doc: FieldDoc, value: unknown, path: PathSegment[]) => void): void {
  if (!holdsNames(schema)) return;
  const { core, doc } = unwrap(schema);
  if (doc) visit(doc, value, path);
  if (core instanceof z.ZodObject) {
    if (!isMap(value)) return;
    for (const [key, field] of Object.entries(core.shape as Record<string, z.ZodType>)) if (key in value) visitFields(field, value[key], [...path, key], visit);
  } else if (core instanceof z.ZodArray) {
    if (Array.isArray(value)) value.forEach((entry, i) => visitFields(core.element as z.ZodType, entry, [...path, i], visit));
  } else if (core instanceof z.ZodRecord) {
    if (isMap(value)) for (const key of Object.keys(value)) visitFields(core.valueType as z.ZodType, value[key], [...path, key], visit);
  } else if (core instanceof z.ZodDiscriminatedUnion) {
    if (!isMap(value)) return;
    const d = core.def.discriminator;
    const members = core.options as Strict<z.ZodRawShape>[];
    const member = members.find((option) => (option.shape[d] as z.ZodLiteral).values.has(value[d] as never));
    if (member) return visitFields(member, value, path, visit);
    // Without a valid discriminator the keys every variant has still name things (a router's name, a target's environment).
    for (const [key, field] of Object.entries(members[0].shape as Record<string, z.ZodType>)) {
      if (key in value && members.every((option) => key in option.shape)) visitFields(field, value[key], [...path, key], visit);
    }
  }
}

/**
 * The whole file: `fields` as an object whose names (`defines`) are checked for uniqueness and
 * whose references (`t.ref`) are resolved once every field is read, before its rules run.
 */
function documentRoot<S extends z.ZodRawShape>(shape: S, options: ObjectOptions<z.output<Strict<S>>>): Strict<S> {
  const keys = Object.keys(shape);
  const base = z.strictObject(fillShape(shape), {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, keys) : `must be a map with keys ${keys.join(', ')} (got ${describeValue(issue.input)})`),
  });
  const resolved = base.superRefine(
    (value, ctx) => {
      // A name or reference whose own value is invalid was reported already; a map's keys are valid once parsed.
      const invalid = ctx.issues.map((issue) => issue.path ?? []);
      const isInvalid = (path: PathSegment[]) => invalid.some((issuePath) => startsWith(issuePath, path));
      const names = new Map<string, Map<string, PathSegment[]>>();
      const refs: Array<{ path: PathSegment[]; ref: RefTarget; name: string }> = [];
      const define = (collection: string, name: string, path: PathSegment[], unique: boolean) => {
        let known = names.get(collection);
        if (!known) names.set(collection, (known = new Map()));
        const earlier = known.get(name);
        if (earlier && unique) ctx.addIssue({ code: 'custom', path, message: `${JSON.stringify(name)} is already the name of ${formatPath(earlier.slice(0, -1))}: names must be unique` });
        else if (!earlier) known.set(name, path);
      };
      visitFields(resolved, value, [], (doc, fieldValue, path) => {
        if (doc.definesKeys && isMap(fieldValue)) for (const key of Object.keys(fieldValue)) define(doc.definesKeys, key, [...path, key], true);
        if (typeof fieldValue !== 'string' || isInvalid(path)) return;
        if (doc.defines) define(doc.defines.collection, fieldValue, path, doc.defines.unique);
        if (doc.ref) refs.push({ path, ref: doc.ref, name: fieldValue });
      });
      for (const { path, ref: target, name } of refs) {
        const known = [...(names.get(target.to)?.keys() ?? [])];
        if (known.includes(name)) continue;
        const guess = closest(name, known);
        const list = known.length ? `known: ${known.join(', ')}` : `none is declared`;
        ctx.addIssue({ code: 'custom', path, message: `${target.noun} ${JSON.stringify(name)} is not ${target.where} (${list}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ''})` });
      }
    },
    { when: (payload) => isMap(payload.value) },
  );
  const rules = options.rules ?? [];
  return document(withRules(resolved, rules), { description: options.description, type: 'map', rules: rules.map((r) => r.says) });
}

// ----- builders -------------------------------------------------------------------------------

export const t = {
  string,
  integer,
  decimal,
  boolean,
  oneOf,
  duration,
  timeOfDay,
  secret,
  path: filePath,
  url,
  ref,
  list,
  dict,
  object,
  union,
  document: documentRoot,
};
