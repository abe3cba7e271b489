/**
 * Replay: every recorded history in test/histories runs through today's workflow code. A change
 * that would break workflows already in flight (a new command, a reordered step) fails here as a
 * determinism error. Histories are recorded from real runs of the suites (LIFEBOAT_RECORD_HISTORIES=1);
 * every *.json file in the folder counts, whoever added it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import * as workflows from '../src/workflows';
import { historyFromJson } from './helpers/history-json';
import { workflowBundle } from './helpers/temporal';

const HISTORIES = path.resolve(__dirname, '../../test/histories');

/** A file holds a history as `historyToJSON` writes it, or `{ workflowId, history }` around one. */
function readHistory(file: string): { workflowId: string; history: ReturnType<typeof historyFromJson> } {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { events?: unknown; history?: unknown; workflowId?: string };
  const name = path.basename(file, '.json');
  if (json.events) return { workflowId: name, history: historyFromJson(json) };
  if (json.history) return { workflowId: json.workflowId ?? name, history: historyFromJson(json.history) };
  throw new Error(`${file} holds no workflow history (no "events")`);
}

describe('workflow replay (recorded histories)', () => {
  const files = fs.existsSync(HISTORIES)
    ? fs
        .readdirSync(HISTORIES)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => path.join(HISTORIES, f))
    : [];

  it('has a recorded history for every workflow the worker registers', () => {
    const names = files.map((f) => path.basename(f));
    for (const workflowType of Object.keys(workflows)) {
      assert.ok(names.some((n) => n.startsWith(`${workflowType}-`)), `no recorded history of ${workflowType} in ${HISTORIES}: record one (see test/helpers/pitr.ts, LIFEBOAT_RECORD_HISTORIES=1)`);
    }
    for (const expected of ['pitrRestore-approved.json', 'pitrRestore-rejected.json', 'pitrRestore-cutover.json', 'pitrRestore-expired.json', 'pitrRestore-cancelled-at-gate.json', 'databaseBackup-failed.json']) assert.ok(names.includes(expected), `${expected} in ${HISTORIES}`);
  });

  it('replays every recorded history without a determinism error', async function () {
    this.timeout(300000);
    const histories = files.map(readHistory);
    const results: Array<{ workflowId: string; error?: string }> = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
      results.push({ workflowId: result.workflowId, error: result.error ? `${result.error.name}: ${result.error.message}` : undefined });
    }
    assert.deepEqual(
      results.map((r) => r.workflowId).sort(),
      histories.map((h) => h.workflowId).sort(),
    );
    assert.deepEqual(
      results.filter((r) => r.error),
      [],
    );
  });
});
