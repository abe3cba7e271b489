/**
 * docs/config.md, generated from the schema so the reference cannot drift from what the
 * loader accepts. Regenerate after changing schema.ts:
 *   npx tsc -p . && node lib/src/config/docs.js          (writes docs/config.md)
 *   node lib/src/config/docs.js --check                   (exits 1 when it is out of date)
 */
import fs from 'node:fs';
import path from 'node:path';
import { AnyField } from './dsl';
import { configSchema } from './schema';

interface Row {
  path: string;
  field: AnyField;
  /** `engine: rds` for a key only one variant has. */
  when?: string;
  /** A list entry or map value: neither required nor optional by itself. */
  entry: boolean;
}

interface RuleDoc {
  path: string;
  says: string;
}

function walk(field: AnyField, docPath: string, rows: Row[], rules: RuleDoc[], when: string | undefined, entry: boolean): void {
  rows.push({ path: docPath, field, when, entry });
  for (const rule of field.rules) rules.push({ path: docPath, says: rule.says });
  for (const child of field.docChildren()) {
    const childEntry = child.segment === '[]' || child.segment.startsWith('.<');
    walk(child.field, `${docPath}${child.segment}`, rows, rules, child.when ?? when, childEntry);
  }
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function defaultCell(row: Row): string {
  if (row.entry) return '';
  const written = row.field.docDefault();
  if (written !== undefined) return `\`${written}\``;
  if (row.field.isOptional) return 'optional';
  if (row.field.fillable) return '(from its keys)';
  return '**required**';
}

function describeCell(row: Row): string {
  const parts = [row.field.description];
  if (row.when) parts.push(`Only with \`${row.when}\`.`);
  const constraints = row.field.docConstraints();
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
`;

/** docs/config.md as the schema describes it today. */
export function renderConfigDocs(): string {
  const out: string[] = [PREAMBLE];
  const rules: RuleDoc[] = [];
  for (const child of configSchema.docChildren()) {
    const key = child.segment.slice(1);
    const rows: Row[] = [];
    walk(child.field, key, rows, rules, undefined, false);
    out.push(`## \`${key}\`\n`);
    out.push(`${child.field.description}\n`);
    out.push('| Key | Type | Default | Description |');
    out.push('|---|---|---|---|');
    for (const row of rows) out.push(`| \`${row.path}\` | ${cell(row.field.docType())} | ${defaultCell(row)} | ${describeCell(row)} |`);
    out.push('');
  }
  for (const rule of configSchema.rules) rules.push({ path: '(top level)', says: rule.says });
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

function main(argv: string[]): number {
  const target = configDocsPath();
  const rendered = renderConfigDocs();
  if (argv.includes('--check')) {
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (current === rendered) return 0;
    process.stderr.write(`${target} is out of date with src/config/schema.ts: run \`node lib/src/config/docs.js\` and commit the result.\n`);
    return 1;
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, rendered);
  process.stdout.write(`wrote ${target}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
