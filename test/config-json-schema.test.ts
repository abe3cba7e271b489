/** The JSON Schema editors validate lifeboat.config.yaml with, as published in schema/. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { configJsonSchemaPath, interpolateConfigText, renderConfigJsonSchema } from '../src/config';

// Compiled to lib/test/: the repository root is two levels up.
const repoRoot = path.resolve(__dirname, '../..');
const exampleText = fs.readFileSync(path.join(repoRoot, 'lifeboat.config.yaml'), 'utf8');

describe('config JSON Schema', () => {
  const published = JSON.parse(fs.readFileSync(configJsonSchemaPath(repoRoot), 'utf8')) as object;
  // Formats are hints for editors (`uri`); the patterns beside them carry the check.
  const validate = new Ajv({ allErrors: true, validateFormats: false }).compile(published);
  const errorsOf = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));

  it('is up to date with the schema (regenerate: node lib/src/config/docs.js)', () => {
    assert.equal(fs.readFileSync(configJsonSchemaPath(repoRoot), 'utf8'), renderConfigJsonSchema());
  });

  it('is named on the first line of the example, where editors look for it', () => {
    const firstLine = exampleText.split('\n')[0];
    assert.equal(firstLine, '# yaml-language-server: $schema=./schema/lifeboat.config.schema.json');
    assert.ok(fs.existsSync(path.resolve(repoRoot, firstLine.split('$schema=')[1])));
  });

  it('accepts the example, interpolated with its defaults', () => {
    const doc: unknown = YAML.parse(interpolateConfigText(exampleText, {}).text);
    assert.deepEqual(errorsOf(doc), []);
  });

  it('accepts the example as an editor sees it, ${VAR:-default} and all', () => {
    assert.deepEqual(errorsOf(YAML.parse(exampleText)), []);
  });

  it('refuses an unknown key, a plain-string secret and a wrong type', () => {
    const doc = YAML.parse(interpolateConfigText(exampleText, {}).text) as Record<string, Record<string, unknown>>;
    assert.deepEqual(errorsOf(doc), []);
    const withTypo = { ...doc, retension: { daily: 3 } };
    assert.ok(errorsOf(withTypo).some((e) => e.includes('additionalProperty') && e.includes('retension')), errorsOf(withTypo).join('\n'));
    const withPlainSecret = { ...doc, catalog: { ...doc.catalog, password: 'hunter2' } };
    assert.ok(errorsOf(withPlainSecret).some((e) => e.startsWith('/catalog/password ')), errorsOf(withPlainSecret).join('\n'));
    const withWordyPort = { ...doc, catalog: { ...doc.catalog, port: 'five' } };
    assert.ok(errorsOf(withWordyPort).some((e) => e.startsWith('/catalog/port ')), errorsOf(withWordyPort).join('\n'));
  });
});
