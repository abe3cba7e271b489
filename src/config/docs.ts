/**
 * docs/config.md and the JSON Schema editors validate lifeboat.config.yaml with
 * (schema/lifeboat.config.schema.json), generated from the schema so neither can drift from
 * what the loader accepts. Regenerate after changing schema.ts:
 *   npx tsc -p . && node lib/src/config/docs.js          (writes both)
 *   node lib/src/config/docs.js --check                   (exits 1 when either is out of date)
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FieldDoc, renderInline, unwrap, Unwrapped } from './fields';
import { configSchema } from './schema';

interface Row {
  path: string;
  field: Unwrapped & { doc: FieldDoc };
  /** `engine: rds` for a key only one variant has. */
  when?: string;
  /** A list entry or map value: neither required nor optional by itself. */
  entry: boolean;
}

interface RuleDoc {
  path: string;
  says: string;
}

/** A child a docs walk descends into: `.name`, `[]` or `.<environment>`, maybe for one variant. */
interface DocChild {
  segment: string;
  schema: z.ZodType;
  /** `engine: rds` when the child exists only for one variant of a union. */
  when?: string;
}

function documented(schema: z.ZodType): Unwrapped & { doc: FieldDoc } {
  const field = unwrap(schema);
  if (!field.doc) throw new Error('schema bug: a field is declared without the builders of fields.ts, so the docs cannot describe it');
  return field as Unwrapped & { doc: FieldDoc };
}

const isStructure = (schema: z.ZodType) => {
  const { core } = unwrap(schema);
  return core instanceof z.ZodObject || core instanceof z.ZodDiscriminatedUnion;
};

function childrenOf({ core, doc }: Unwrapped & { doc: FieldDoc }): DocChild[] {
  if (core instanceof z.ZodDiscriminatedUnion && doc.tag) {
    // Keys every variant has come first, then each variant's own.
    const d = doc.tag.key;
    const members = core.options as z.ZodObject[];
    const keysOf = (member: z.ZodObject) => Object.keys(member.shape).filter((key) => key !== d);
    const common = keysOf(members[0]).filter((key) => members.every((member) => key in member.shape));
    const tagOf = (member: z.ZodObject) => [...(member.shape[d] as z.ZodLiteral).values].join(', ');
    return [
      { segment: `.${d}`, schema: doc.tag.field },
      ...common.map((key) => ({ segment: `.${key}`, schema: members[0].shape[key] as z.ZodType })),
      ...members.flatMap((member) =>
        keysOf(member)
          .filter((key) => !common.includes(key))
          .map((key) => ({ segment: `.${key}`, schema: member.shape[key] as z.ZodType, when: `${d}: ${tagOf(member)}` })),
      ),
    ];
  }
  if (core instanceof z.ZodObject) return Object.entries(core.shape as Record<string, z.ZodType>).map(([key, schema]) => ({ segment: `.${key}`, schema }));
  if (core instanceof z.ZodArray) return isStructure(core.element as z.ZodType) ? [{ segment: '[]', schema: core.element as z.ZodType }] : [];
  if (core instanceof z.ZodRecord) return isStructure(core.valueType as z.ZodType) ? [{ segment: `.<${doc.keyLabel}>`, schema: core.valueType as z.ZodType }] : [];
  return [];
}

function walk(schema: z.ZodType, docPath: string, rows: Row[], rules: RuleDoc[], when: string | undefined, entry: boolean): void {
  const field = documented(schema);
  rows.push({ path: docPath, field, when, entry });
  for (const says of field.doc.rules) rules.push({ path: docPath, says });
  for (const child of childrenOf(field)) {
    const childEntry = child.segment === '[]' || child.segment.startsWith('.<');
    walk(child.schema, `${docPath}${child.segment}`, rows, rules, child.when ?? when, childEntry);
  }
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function defaultCell(row: Row): string {
  if (row.entry) return '';
  if (row.field.hasDefault) return `\`${renderInline(row.field.defaultInput)}\``;
  if (row.field.optional) return 'optional';
  if (row.field.fillable) return '(from its keys)';
  return '**required**';
}

function describeCell(row: Row): string {
  const parts = [row.field.doc.description];
  if (row.when) parts.push(`Only with \`${row.when}\`.`);
  const constraints = row.field.doc.constraints;
  if (constraints.length) parts.push(`Must be: ${constraints.join('; ')}.`);
  return cell(parts.filter(Boolean).join(' '));
}

const PREAMBLE = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`node lib/src/config/docs.js\`; do not edit by hand. -->

The platform team declares everything lifeboat protects, and how, in one file:
\`lifeboat.config.yaml\` (YAML, or the same structure as JSON). The file at the root of the
repository describes the embedded local stack and is a starting point for real ones.

lifeboat checks the whole file before anything runs. An invalid file is refused with every
problem listed, each with its path and line, for example:

\`\`\`
lifeboat.config.yaml has 2 problems; lifeboat will not run until they are fixed:
  - targets.databases[1].engine: must be one of pgbackrest, rds (got "mysql") (lifeboat.config.yaml:48:13)
  - objectives.database.rpo: must be longer than zero (got "0m") (lifeboat.config.yaml:21:12)
\`\`\`

## Writing values

- **Unknown keys are errors**, so a typo never passes silently; the message suggests the key you probably meant.
- **Durations** are a whole number and a unit, several in a row if you like: \`90s\`, \`15m\`, \`1h\`, \`1h30m\`, \`24h\`, \`7d\`, \`2w\`. Every duration is longer than zero. They load as seconds.
- **Times** are 24-hour UTC, \`HH:MM\` (quote them in YAML if you prefer: \`"03:00"\`).
- **Secrets never appear in this file**, only where to read them at run time: \`{ secretRef: env:NAME }\` (an environment variable of the worker) or \`{ secretRef: file:/absolute/path }\`. A plain string where a secret reference belongs is refused.
- **Paths** are absolute, or start with \`{dataDir}\`: lifeboat's data directory (\`$LIFEBOAT_DATA_DIR\`, by default \`~/.local/share/lifeboat\`, or \`/var/lib/lifeboat\` as root).
- **Names** of environments, targets, object stores and traffic routers are referred to elsewhere in the file; a reference to a name that is not declared is an error.
- A map whose keys all have defaults may be left out entirely.

Editors validate the file as you type with the JSON Schema in
\`schema/lifeboat.config.schema.json\` (generated from the same declaration): editors using the
YAML language server (VS Code's YAML extension, Neovim, JetBrains) pick it up from the first line
of the example, \`# yaml-language-server: $schema=./schema/lifeboat.config.schema.json\`. The
schema checks each value's type and shape; the checks across fields below run when lifeboat loads
the file.
`;

/** docs/config.md as the schema describes it today. */
export function renderConfigDocs(): string {
  const out: string[] = [PREAMBLE];
  const rules: RuleDoc[] = [];
  const root = documented(configSchema);
  for (const child of childrenOf(root)) {
    const key = child.segment.slice(1);
    const rows: Row[] = [];
    walk(child.schema, key, rows, rules, undefined, false);
    out.push(`## \`${key}\`\n`);
    out.push(`${rows[0].field.doc.description}\n`);
    out.push('| Key | Type | Default | Description |');
    out.push('|---|---|---|---|');
    for (const row of rows) out.push(`| \`${row.path}\` | ${cell(row.field.doc.type)} | ${defaultCell(row)} | ${describeCell(row)} |`);
    out.push('');
  }
  for (const says of root.doc.rules) rules.push({ path: '(top level)', says });
  out.push('## Checks across fields\n');
  out.push('Besides each value\'s own type and constraints, a file must pass these:\n');
  out.push('- Names are unique where they are declared (`environments`, `objectStores`, `trafficRouters`, all targets together), and every reference names something declared.');
  // A rule declared on a shape used in several places is listed once, with all its places.
  const places = new Map<string, string[]>();
  for (const rule of rules) places.set(rule.says, [...(places.get(rule.says) ?? []), rule.path]);
  for (const [says, where] of places) {
    const located = where.filter((p) => p !== '(top level)').map((p) => `\`${p}\``);
    out.push(`- ${located.length ? `${located.join(', ')}: ` : ''}${says}`);
  }
  return `${out.join('\n')}\n`;
}

/** Where the generated reference lives in the repository. */
export function configDocsPath(repoRoot = path.resolve(__dirname, '../../..')): string {
  return path.join(repoRoot, 'docs', 'config.md');
}

/**
 * The JSON Schema of the file as it is written (before defaults and decoding), for editors.
 * Cross-field checks and `{dataDir}` expansion are the loader's: a file the schema accepts can
 * still be refused, never the other way round.
 */
export function renderConfigJsonSchema(): string {
  const { $schema, ...rest } = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7', unrepresentable: 'any' });
  return `${JSON.stringify({ $schema, title: 'lifeboat.config.yaml', ...allowInterpolation(rest) }, null, 2)}\n`;
}

/** `${NAME:-default}` anywhere in a value: the loader replaces it before checking the value. */
const INTERPOLATED = { type: 'string', pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}' };

/**
 * Editors see the file before interpolation, so a number, a patterned string or one of a set may also be
 * written `${NAME:-default}` (the example does that for every port): such a value is checked
 * when lifeboat loads the file.
 */
function allowInterpolation<T>(node: T): T {
  if (Array.isArray(node)) return node.map(allowInterpolation) as T;
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, allowInterpolation(value as unknown)]));
  const { type, pattern } = out;
  if (type === 'integer' || type === 'number' || type === 'boolean' || (type === 'string' && (pattern !== undefined || Array.isArray(out.enum)))) {
    const { description, default: written, ...value } = out;
    return { ...(description === undefined ? {} : { description }), ...(written === undefined ? {} : { default: written }), anyOf: [value, INTERPOLATED] } as T;
  }
  return out as T;
}

/** Where the published JSON Schema lives in the repository. */
export function configJsonSchemaPath(repoRoot = path.resolve(__dirname, '../../..')): string {
  return path.join(repoRoot, 'schema', 'lifeboat.config.schema.json');
}

function main(argv: string[]): number {
  const outputs = [
    { target: configDocsPath(), rendered: renderConfigDocs() },
    { target: configJsonSchemaPath(), rendered: renderConfigJsonSchema() },
  ];
  if (argv.includes('--check')) {
    const stale = outputs.filter(({ target, rendered }) => (fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '') !== rendered);
    for (const { target } of stale) process.stderr.write(`${target} is out of date with src/config/schema.ts: run \`node lib/src/config/docs.js\` and commit the result.\n`);
    return stale.length ? 1 : 0;
  }
  for (const { target, rendered } of outputs) {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, rendered);
    process.stdout.write(`wrote ${target}\n`);
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
