/**
 * The layers of src/ as docs/architecture.md draws them, checked on the import statements the
 * sources really contain (read with the TypeScript parser, so `import type`, `export … from`,
 * `require()` and `import()` all count). Prints the layer graph. No server needed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const SRC = path.join(ROOT, 'src');

/** One import: from which file, of what, and whether it exists only for the type checker. */
export interface ImportEdge {
  file: string;
  line: number;
  specifier: string;
  typeOnly: boolean;
}

/** A layer is a directory of src/; the files directly in src/ start the worker. */
export function layerOf(file: string): string {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length > 1 ? parts[0] : 'worker';
}

/** The layer an import reaches: a src/ layer, a package name (`@temporalio/workflow`, `node:fs`), or undefined outside src/. */
export function targetOf(edge: ImportEdge): { layer: string } | { pkg: string } | undefined {
  if (!edge.specifier.startsWith('.')) {
    const parts = edge.specifier.split('/');
    return { pkg: edge.specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] };
  }
  const target = path.resolve(path.dirname(edge.file), edge.specifier);
  if (path.relative(SRC, target).startsWith('..')) return undefined; // package.json, read at run time
  return { layer: layerOf(fs.existsSync(target) && fs.statSync(target).isDirectory() ? path.join(target, 'index.ts') : `${target}.ts`) };
}

/** Every import in one source text. */
export function importsIn(file: string, text: string): ImportEdge[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const edges: ImportEdge[] = [];
  const add = (node: ts.Node, specifier: ts.Expression | undefined, typeOnly: boolean) => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return;
    edges.push({ file, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1, specifier: specifier.text, typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      // `import { type A, type B }` is as type-only as `import type { A, B }`; a bare `import 'x'` runs x.
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      const allTypes = !!clause && !clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
      add(node, node.moduleSpecifier, !!clause && (clause.isTypeOnly || allTypes));
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node, node.moduleSpecifier, node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal as ts.Expression, true);
    } else if (ts.isCallExpression(node) && node.arguments.length === 1) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/**
 * The rules: which src/ layers each layer may import besides itself and the domain, which every
 * layer may import (type-only imports of a layer it may not load are listed separately), and
 * which packages it must not import. Keep this table and the diagram in docs/architecture.md the same.
 */
export const RULES: Record<string, { layers: string[]; typeOnlyLayers?: string[]; forbiddenPackages?: RegExp; allowedPackages?: RegExp }> = {
  // Pure types and rules: no other layer, no Temporal.
  domain: { layers: [], forbiddenPackages: /^@temporalio\// },
  // What lifeboat needs from the machine: child processes, the data directory.
  platform: { layers: [] },
  config: { layers: ['platform'] },
  catalog: { layers: [] },
  // Talk to external systems (pgBackRest, RDS, S3, DNS); never start local servers.
  engines: { layers: ['platform', 'config'] },
  activities: { layers: ['platform', 'config', 'catalog', 'engines'] },
  // Deterministic code in Temporal's sandbox: the domain and the activities' types only.
  workflows: { layers: [], typeOnlyLayers: ['activities'], allowedPackages: /^@temporalio\/(workflow|common)$/ },
  // The embedded local stack: starts servers, and wires engines to them.
  stack: { layers: ['platform', 'catalog', 'engines', 'workflows', 'worker'] },
  client: { layers: ['platform', 'config', 'catalog', 'engines', 'activities', 'workflows', 'stack', 'worker', 'metrics'] },
  // The Prometheus endpoint (and `lifeboat storage`'s report): figures read from the catalog, pending approvals from Temporal (the status query), the object stores' listing (engines/storage-usage).
  metrics: { layers: ['config', 'catalog', 'workflows', 'engines'] },
  worker: { layers: ['platform', 'config', 'activities', 'client', 'metrics'] },
};

/** The broken rules among `edges`, one sentence each, with file and line. */
export function violations(edges: ImportEdge[]): string[] {
  const found: string[] = [];
  for (const edge of edges) {
    const from = layerOf(edge.file);
    const rule = RULES[from];
    const where = `${path.relative(ROOT, edge.file)}:${edge.line}`;
    if (!rule) {
      found.push(`${where}: layer ${from} has no rule in test/import-graph.test.ts: add one, and draw it in docs/architecture.md`);
      continue;
    }
    const to = targetOf(edge);
    if (!to) continue;
    if ('pkg' in to) {
      if (rule.forbiddenPackages?.test(to.pkg) || (rule.allowedPackages && !rule.allowedPackages.test(to.pkg))) {
        found.push(`${where}: ${from} must not import ${edge.specifier}`);
      }
      continue;
    }
    if (to.layer === from || to.layer === 'domain') continue;
    if (rule.layers.includes(to.layer)) continue;
    if (edge.typeOnly && rule.typeOnlyLayers?.includes(to.layer)) continue;
    const typeNote = rule.typeOnlyLayers?.includes(to.layer) ? ' except with `import type`' : '';
    found.push(`${where}: ${from} must not import ${to.layer}${typeNote} (${edge.specifier})`);
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** `from -> to` between src/ layers (and Temporal packages), with how many imports make each arrow. */
function layerGraph(edges: ImportEdge[]): string[] {
  const arrows = new Map<string, number>();
  for (const edge of edges) {
    const from = layerOf(edge.file);
    const to = targetOf(edge);
    const name = !to ? undefined : 'layer' in to ? to.layer : to.pkg.startsWith('@temporalio/') ? to.pkg : undefined;
    if (!name || name === from) continue;
    const key = `${from} -> ${name}${edge.typeOnly ? ' (types)' : ''}`;
    arrows.set(key, (arrows.get(key) ?? 0) + 1);
  }
  return [...arrows].sort(([a], [b]) => a.localeCompare(b)).map(([arrow, n]) => `${arrow}  ×${n}`);
}

describe('import graph', () => {
  const edges = sourceFiles(SRC).flatMap((file) => importsIn(file, fs.readFileSync(file, 'utf8')));

  it('has a rule for every layer and keeps every layer inside its rule', () => {
    console.log(`      layer graph of src/ (${edges.length} imports):\n${layerGraph(edges).map((l) => `        ${l}`).join('\n')}`);
    assert.deepEqual(violations(edges), []);
  });

  it('finds the imports that matter (sanity check of the parser on the real tree)', () => {
    const from = (layer: string) => edges.filter((e) => layerOf(e.file) === layer);
    assert.ok(from('engines').some((e) => e.specifier === '../platform/processes'), 'engines spawn through src/platform/processes.ts');
    assert.ok(from('workflows').some((e) => e.specifier === '../activities' && e.typeOnly), 'workflows import the activities type-only');
    assert.ok(from('client').some((e) => e.specifier === '../workflows' && !e.typeOnly), "the CLI's dynamic import('../workflows') counts");
  });

  describe('refuses', () => {
    const check = (file: string, text: string) => violations(importsIn(path.join(SRC, file), text));

    it('an engine that imports the stack, in any form', () => {
      assert.deepEqual(check('engines/x.ts', "import { createStack } from '../stack/stack';"), ["src/engines/x.ts:1: engines must not import stack (../stack/stack)"]);
      assert.equal(check('engines/x.ts', "import type { Stack } from '../stack/stack';").length, 1);
      assert.equal(check('engines/x.ts', "export { run } from '../stack';").length, 1);
      assert.equal(check('engines/x.ts', "const s = require('../stack/settings');").length, 1);
      assert.equal(check('engines/x.ts', "async function f() { return import('../stack/stack'); }").length, 1);
    });

    it('a domain module that imports Temporal or another layer', () => {
      assert.deepEqual(check('domain/x.ts', "import { defineQuery } from '@temporalio/workflow';"), ['src/domain/x.ts:1: domain must not import @temporalio/workflow']);
      assert.equal(check('domain/x.ts', "import type { LifeboatConfig } from '../config';").length, 1);
      assert.deepEqual(check('domain/x.ts', "import { formatBytes } from './format';"), []);
    });

    it('a workflow that loads activities, engines or Node modules', () => {
      assert.deepEqual(check('workflows/x.ts', "import { createActivities } from '../activities';"), ['src/workflows/x.ts:1: workflows must not import activities except with `import type` (../activities)']);
      assert.deepEqual(check('workflows/x.ts', "import type { Activities } from '../activities';"), []);
      assert.deepEqual(check('workflows/x.ts', "import { type Activities } from '../activities';"), []);
      assert.equal(check('workflows/x.ts', "import { S3Engine } from '../engines/s3';").length, 1);
      assert.equal(check('workflows/x.ts', "import fs from 'node:fs';").length, 1);
      assert.deepEqual(check('workflows/x.ts', "import { sleep } from '@temporalio/workflow';\nimport { Backup } from '../domain/backup';"), []);
    });
  });
});
