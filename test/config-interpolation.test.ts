/** `${NAME:-default}` in the config file follows the environment, like docker-compose. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../src/config';

const example = fs.readFileSync(path.resolve(__dirname, '../../lifeboat.config.yaml'), 'utf8');

describe('config interpolation', () => {
  it('uses the default when the variable is unset, and the variable when it is set', () => {
    const defaults = parseConfig(example, 'example', { env: {} });
    assert.equal(defaults.temporal.address, '127.0.0.1:7233');
    assert.equal(defaults.catalog.port, 55433);
    const moved = parseConfig(example, 'example', { env: { LIFEBOAT_TEMPORAL_PORT: '17233', LIFEBOAT_PG_CATALOG_PORT: '45433', LIFEBOAT_MINIO_DR_PORT: '19200' } });
    assert.equal(moved.temporal.address, '127.0.0.1:17233');
    assert.equal(moved.catalog.port, 45433);
    assert.equal(moved.objectStores.find((s) => s.name === 'dr')?.endpoint, 'https://127.0.0.1:19200');
  });

  it('refuses a variable that is unset and has no default, naming it and its line', () => {
    const text = example.replace('namespace: default', 'namespace: ${LIFEBOAT_TEST_NAMESPACE}');
    const line = text.split('\n').findIndex((l) => l.includes('LIFEBOAT_TEST_NAMESPACE')) + 1;
    assert.throws(
      () => parseConfig(text, 'example', { env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems, [
          { path: '(interpolation)', message: '${LIFEBOAT_TEST_NAMESPACE} is not set and has no default: set LIFEBOAT_TEST_NAMESPACE or write ${LIFEBOAT_TEST_NAMESPACE:-value}', line },
        ]);
        return true;
      },
    );
  });

  it('validates the interpolated value like any other (a port must be a number)', () => {
    assert.throws(() => parseConfig(example, 'example', { env: { LIFEBOAT_PG_CATALOG_PORT: 'abc' } }), /catalog\.port/);
  });
});
