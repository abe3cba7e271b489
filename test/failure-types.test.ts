/**
 * One style of failure types: every type lifeboat gives a failure (a LifeboatError's code, an
 * AWS advice code, an ApplicationFailure's type) is SCREAMING_SNAKE_CASE, read from the sources
 * as the compiler sees them. The type system allows `Uppercase<string>` (no lower case); this
 * also refuses hyphens and other punctuation. No server needed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { ApplicationFailure } from '@temporalio/common';
import { failureType } from '../src/workflows/failure';

const ROOT = path.resolve(__dirname, '../..');
const STYLE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** String literals an expression can evaluate to (through `a ? 'X' : 'Y'`); others are not literals. */
function literals(node: ts.Expression): string[] {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text];
  if (ts.isConditionalExpression(node)) return [...literals(node.whenTrue), ...literals(node.whenFalse)];
  if (ts.isParenthesizedExpression(node)) return literals(node.expression);
  return [];
}

/** Every failure type written as a literal in `file`, with its line. */
function failureTypesIn(file: string): Array<{ type: string; where: string }> {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ type: string; where: string }> = [];
  const add = (node: ts.Expression) => {
    for (const type of literals(node)) found.push({ type, where: `${path.relative(ROOT, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}` });
  };
  const visit = (node: ts.Node) => {
    if (ts.isNewExpression(node) && /^(LifeboatError|AwsOperationError)$/.test(node.expression.getText()) && node.arguments?.[1]) add(node.arguments[1]);
    if (ts.isCallExpression(node)) {
      const callee = node.expression.getText();
      if (/^ApplicationFailure\.(nonRetryable|retryable)$/.test(callee) && node.arguments[1]) add(node.arguments[1]);
      if (callee === 'ApplicationFailure.create' && node.arguments[0] && ts.isObjectLiteralExpression(node.arguments[0])) {
        for (const p of node.arguments[0].properties) if (ts.isPropertyAssignment(p) && p.name.getText() === 'type') add(p.initializer);
      }
      if (callee === 'refuse' && node.arguments[1]) add(node.arguments[1]);
    }
    // The AWS advice table: `code: '...'` entries.
    if (ts.isPropertyAssignment(node) && node.name.getText() === 'code' && path.basename(file) === 'aws-errors.ts') add(node.initializer);
    if (ts.isParameter(node) && node.name.getText() === 'code' && node.initializer) add(node.initializer);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('failure types', () => {
  const all = ['src', 'test', 'bench'].flatMap((d) => sourceFiles(path.join(ROOT, d))).flatMap(failureTypesIn);

  it('are found in the sources: engines, activities, workflows and config', () => {
    const where = new Set(all.map((f) => f.where.split('/')[1]));
    for (const layer of ['engines', 'activities', 'workflows', 'config']) assert.ok(where.has(layer), `no failure type found under src/${layer}`);
    assert.ok(all.length > 100, `only ${all.length} failure types found: the scan misses some`);
  });

  it('are all SCREAMING_SNAKE_CASE, one style everywhere', () => {
    const offending = all.filter((f) => !STYLE.test(f.type)).map((f) => `${f.where} ${JSON.stringify(f.type)}`);
    assert.deepEqual(offending, [], 'write failure types as WORDS_LIKE_THIS');
  });

  it('are read from the failure, through the SDK wrappers, never from the message', () => {
    const verification = ApplicationFailure.nonRetryable('restored rows differ from the source', 'VERIFICATION_FAILED');
    const wrapped = new Error('Activity task failed', { cause: verification });
    assert.equal(failureType(wrapped), 'VERIFICATION_FAILED');
    // A message that happens to read like one says nothing about the type.
    assert.equal(failureType(new Error('verification of x failed')), undefined);
    assert.equal(failureType(ApplicationFailure.retryable('verification of x failed', 'RESTORE_FAILED')), 'RESTORE_FAILED');
  });
});
