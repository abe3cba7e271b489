/**
 * Workflow code is bundled for the deterministic sandbox: a forbidden import must fail the
 * build here, not the worker at start in production.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { run } from '../src/platform/processes';
import { bundleIsFresh, workflowBundlePath } from '../src/workflow-bundle';
import { workflowBundle } from './helpers/temporal';

describe('workflow bundle', function () {
  this.timeout(120000);

  it('bundles every lifeboat workflow', async () => {
    const bundle = await workflowBundle();
    assert.ok(bundle.code.length > 100_000);
    assert.match(bundle.code, /async function preflight\(/);
  });

  it('fails the build when workflow code imports a Node module that does I/O', async () => {
    // Inside the project, so the bundler resolves @temporalio/workflow as for real workflows.
    const dir = fs.mkdtempSync(path.join(__dirname, 'tmp-bad-workflow-'));
    fs.writeFileSync(path.join(dir, 'index.js'), "const fs = require('fs');\nexports.leaky = async () => fs.readFileSync('/etc/hostname', 'utf8');\n");
    const logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
    try {
      // The error names the disallowed module, so the developer knows what to move into an activity.
      await assert.rejects(bundleWorkflowCode({ workflowsPath: path.join(dir, 'index.js'), logger }), /importing the following disallowed modules:\s*- 'fs'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the bundle a worker process loads (src/workflow-bundle.ts)', () => {
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bundle-test-'))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('`node lib/src/workflow-bundle.js <file>` writes every workflow and the failure converter, nothing else beside it', async () => {
      const file = path.join(dir, 'bundle.js');
      const r = await run(process.execPath, [path.resolve(__dirname, '../src/workflow-bundle.js'), file], { timeoutMs: 120000 });
      assert.equal(r.code, 0, r.stderr);
      const code = fs.readFileSync(file, 'utf8');
      assert.match(code, /async function preflight\(/);
      assert.match(code, /async function logicalBackup\(/);
      assert.match(code, /failure-converter/);
      // Written under another name and renamed: no partial file is left.
      assert.deepEqual(fs.readdirSync(dir), ['bundle.js']);
    });

    it('is stale once any compiled source is newer than it, and missing is never fresh', () => {
      const sources = path.join(dir, 'src');
      fs.mkdirSync(path.join(sources, 'workflows'), { recursive: true });
      const source = path.join(sources, 'workflows', 'index.js');
      const bundle = path.join(dir, 'bundle.js');
      fs.writeFileSync(source, '');
      fs.writeFileSync(bundle, '');
      const t = Date.now() / 1000;
      fs.utimesSync(source, t - 60, t - 60);
      fs.utimesSync(bundle, t - 30, t - 30);
      assert.equal(bundleIsFresh(bundle, sources), true);
      fs.utimesSync(source, t, t); // tsc rewrote it after the bundle was built
      assert.equal(bundleIsFresh(bundle, sources), false);
      assert.equal(bundleIsFresh(path.join(dir, 'none.js'), sources), false);
    });

    it('$LIFEBOAT_WORKFLOW_BUNDLE names the file to load, unchecked and unbuilt', async () => {
      const file = path.join(dir, 'given.js');
      assert.equal(await workflowBundlePath({ LIFEBOAT_WORKFLOW_BUNDLE: file }), file);
      assert.equal(fs.existsSync(file), false);
    });
  });
});
