/**
 * Workflow code is bundled for the deterministic sandbox: a forbidden import must fail the
 * build here, not the worker at start in production.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
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
});
