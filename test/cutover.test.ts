/**
 * Cutover can always be undone, on the real stack through a real worker: the source fenced
 * behind the cutover gate, the name's records recorded before they change, a cutover that fails
 * its check through DNS (or is cancelled) put back and proven through DNS before anything else,
 * an instance that took traffic never removed, a report that cannot be recorded never undoing a
 * cutover, and the new primary archiving WAL on its own timeline with a full backup of it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { destinationFor } from '../src/activities/restore';
import { loadConfig } from '../src/config';
import { statusQuery } from '../src/workflows/messages';
import { LifeboatError } from '../src/domain/errors';
import { PitrRestoreInput, PitrRestoreReport } from '../src/domain/restore';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { localDnsRouter } from '../src/stack/powerdns';
import { delay, run } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { leftovers, onPrimary, recordHistory, removeAsItsOwner, RestoreRun, runPitrRestore, undoTestCutover, uniqueId, waitForBackup, waitForGate, withDatabase } from './helpers/pitr';
import { useStack } from './helpers/stack';
import { useTemporal } from './helpers/temporal';
import { approveSigned, rejectSigned } from './helpers/signing';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
/** The name stays pointed this long before it is checked: the window a test acts in. */
const SETTLE_MS = 4000;

interface TrafficRow {
  state: string;
  previous_value: { endpoint?: { host: string; port?: number }; records: Array<{ type: string; ttl: number; values: string[] }> };
  new_value: { host: string; port: number };
  repair_command: string;
}

describe('cutover can always be undone (real worker, real stack)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let engine: PgBackRestEngine;
  const config = loadConfig(CONFIG_FILE);
  const target = config.targets.databases.find((d) => d.name === 'app');
  const restoresDir = target && target.engine === 'pgbackrest' ? target.restoresDir : '';
  /** Runs whose cutover must be undone on the test stack at the end, whatever happened. */
  const runs: Array<{ workflowId: string; destination: string }> = [];

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    env = await useTemporal();
    ports = createPorts(config);
    engine = ports.database('app') as PgBackRestEngine;
    // A fresh stack has no backup yet: one to restore from, whatever ran before.
    await waitForBackup(engine, await engine.startBackup({ backupName: uniqueId('test-cutover-base'), kind: 'full' }));
  });

  after(async function () {
    this.timeout(600000);
    for (const r of runs) await undoTestCutover(stack, ports, engine, r.workflowId, r.destination).catch((err: unknown) => console.error(`undoing the cutover of ${r.workflowId}: ${String(err)}`));
    await ports?.close();
  });

  const primary = () => ({ host: stack.ctx.settings.host, port: stack.ctx.settings.postgres.primaryPort });
  const dnsName = () => stack.ctx.settings.dns.appDbName;

  function input(overrides: Partial<PitrRestoreInput> = {}): PitrRestoreInput {
    return {
      target: 'app',
      restorePoint: 'latest',
      reason: 'test: cutover',
      requestedBy: ALICE,
      mode: 'standard',
      cutover: true,
      timings: { remindAfterMs: 60000, abortAfterMs: 120000, pollIntervalMs: 250, settleAfterCutoverMs: SETTLE_MS, rollbackRetryMs: 200 },
      ...overrides,
    };
  }

  function runRestore(workflowId: string, drive: (handle: WorkflowHandle) => Promise<void>, workerPorts: Ports = ports): Promise<RestoreRun> {
    runs.push({ workflowId, destination: destinationFor(workflowId) });
    return runPitrRestore({ env, config, ports: workerPorts, queuePrefix: 'cutover', workflowId, input: input(), drive });
  }

  /** Both gates approved; returns once the name leads to the restored instance (the settle window). */
  async function approveAndWaitForTraffic(h: WorkflowHandle, destination: string): Promise<{ host: string; port: number }> {
    await waitForGate(h, 'restore');
    await approveSigned(h, { by: BOB, reason: 'restore it', gate: 'restore' });
    await waitForGate(h, 'cutover');
    // Not fenced before the gate says so.
    await assertWritable('the source before the cutover gate is approved');
    await approveSigned(h, { by: BOB, reason: 'move traffic', gate: 'cutover' });
    const restored = await engine.describeInstance(destination);
    assert.ok(restored?.endpoint);
    const deadline = Date.now() + 120000;
    for (;;) {
      const now = await localDnsRouter(stack.ctx.settings).currentTarget(dnsName());
      if (now?.port === restored.endpoint.port) return restored.endpoint;
      const status = await h.query(statusQuery).catch(() => undefined);
      if (Date.now() > deadline || ['failed', 'done'].includes(status?.phase ?? '')) throw new Error(`the name never led to ${destination}: ${JSON.stringify(status?.timeline.at(-1))}`);
      await delay(100);
    }
  }

  async function writeOnPrimary(): Promise<unknown> {
    return onPrimary(stack, async (c) => {
      await c.query('CREATE TABLE IF NOT EXISTS lifeboat_fence_probe (at timestamptz)');
      await c.query('INSERT INTO lifeboat_fence_probe VALUES (now())');
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
  }
  async function assertWritable(what: string): Promise<void> {
    assert.equal(await writeOnPrimary(), undefined, `${what} accepts writes`);
  }
  async function assertFenced(what: string): Promise<void> {
    const err = await writeOnPrimary();
    assert.ok(err instanceof Error, `${what} refuses writes`);
    assert.match(err.message, /read-only transaction/);
  }

  /** Connects as a client would, through the name. */
  async function throughName(): Promise<{ port: number; readOnly: string }> {
    const s = stack.ctx.settings;
    const served = await localDnsRouter(s).currentTarget(dnsName());
    assert.ok(served?.port, `${dnsName()} resolves with a port`);
    return withDatabase({ host: served.host, port: served.port, database: s.postgres.appDatabase, user: s.postgres.superuser }, async (c) => ({
      port: Number((await c.query<{ p: string }>("SELECT current_setting('port') AS p")).rows[0].p),
      readOnly: (await c.query<{ r: string }>("SELECT current_setting('default_transaction_read_only') AS r")).rows[0].r,
    }));
  }

  async function trafficRow(workflowId: string): Promise<TrafficRow> {
    const rows = await ports.catalog.query<TrafficRow>('SELECT state, previous_value, new_value, repair_command FROM traffic_changes WHERE workflow_id = $1', [workflowId]);
    assert.equal(rows.length, 1, `one traffic change of ${workflowId}`);
    return rows[0];
  }

  async function fenceState(workflowId: string): Promise<string[]> {
    return (await ports.catalog.query<{ state: string }>('SELECT state FROM source_fences WHERE workflow_id = $1', [workflowId])).map((r) => r.state);
  }

  it('a cutover whose check through DNS fails is put back first: the name leads to the primary again, it is writable, the restored instance is kept', async () => {
    const workflowId = uniqueId('test-cutover-unserved');
    const destination = destinationFor(workflowId);
    const { handle, error, status } = await runRestore(workflowId, async (h) => {
      const restored = await approveAndWaitForTraffic(h, destination);
      // Traffic has moved: the source refuses writes, clients reach the restored instance.
      await assertFenced('the source while the name leads to the restored instance');
      assert.equal((await throughName()).port, restored.port);
      // The restored instance goes away under the name before the check: the cutover cannot be served.
      const dataDir = engine.restoreFiles(destination).dataDir;
      await run(stack.ctx.tools.pgBin('pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], { asUser: stack.ctx.settings.postgres.osUser });
    });
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof ApplicationFailure, String(error.cause));
    assert.equal(error.cause.type, 'CUTOVER_NOT_SERVED');
    assert.match(error.cause.message, /^cutover did not take: db\.app\.lifeboat\.test\. -> 127\.0\.0\.1:\d+ does not answer as the restored instance/);

    // The name leads to the primary again, through DNS, and it takes writes.
    const s = stack.ctx.settings;
    const served = await localDnsRouter(s).currentTarget(dnsName());
    assert.deepEqual([served?.host, served?.port], [primary().host, primary().port]);
    assert.deepEqual(await throughName(), { port: primary().port, readOnly: 'off' });
    await assertWritable('the source after the rollback');

    // On record: what the name pointed at before (A and SRV, with TTL), and that it went back.
    const row = await trafficRow(workflowId);
    assert.equal(row.state, 'rolled-back');
    assert.deepEqual(row.previous_value.endpoint, primary());
    assert.deepEqual(
      row.previous_value.records.map((r) => [r.type, r.ttl, r.values]),
      [
        ['A', 30, [s.host]],
        ['SRV', 30, [`0 0 ${s.postgres.primaryPort} ${dnsName()}`]],
      ],
    );
    assert.match(row.repair_command, /^curl -sf -X PATCH -H "X-API-Key: \$\(cat '.*dns-api-key'\)"/);
    assert.deepEqual(await fenceState(workflowId), ['unfenced']);

    // The restored instance took traffic: kept (stopped, as the test left it), never removed.
    assert.ok(leftovers(restoresDir, destination).includes(`${destination}.json`));
    assert.equal((await engine.describeInstance(destination))?.status, 'stopped');
    const report = (await ports.catalog.query<{ outcome: string; report: PitrRestoreReport }>('SELECT outcome, report FROM restores WHERE workflow_id = $1', [workflowId]))[0];
    assert.equal(report.outcome, 'failed');
    assert.equal(report.report.traffic?.state, 'rolled-back');
    assert.equal(report.report.traffic?.previous, `${primary().host}:${primary().port}`);
    assert.equal(report.report.traffic?.fence?.method, 'read-only');
    assert.ok(report.report.cleanup.some((c) => c === `kept ${destination}: the name led clients to it, so lifeboat never removes it automatically`), report.report.cleanup.join('\n'));
    assert.ok(!report.report.cleanup.some((c) => c.startsWith('removed')), report.report.cleanup.join('\n'));
    // Rollback before compensation: the timeline shows the order.
    const phases = status.timeline.map((t) => t.phase);
    assert.deepEqual(phases.slice(phases.indexOf('preparing-cutover')), ['preparing-cutover', 'fencing', 'cutting-over', 'verifying-cutover', 'rolling-back', 'unfencing', 'failed']);
    await recordHistory(handle, 'pitrRestore-v2-cutover-rolled-back');
  });

  it('a cancel after the name moved puts it back and unfences the source before anything else', async () => {
    const workflowId = uniqueId('test-cutover-cancel');
    const destination = destinationFor(workflowId);
    const { handle, error } = await runRestore(workflowId, async (h) => {
      await approveAndWaitForTraffic(h, destination);
      await h.cancel();
    });
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof CancelledFailure, String(error.cause));
    assert.deepEqual(await throughName(), { port: primary().port, readOnly: 'off' });
    await assertWritable('the source after a cancelled cutover');
    assert.equal((await trafficRow(workflowId)).state, 'rolled-back');
    assert.deepEqual(await fenceState(workflowId), ['unfenced']);
    // It served traffic: kept and still running, for someone to look at.
    assert.equal((await engine.describeInstance(destination))?.status, 'available');
    const row = (await ports.catalog.query<{ outcome: string; report: PitrRestoreReport }>('SELECT outcome, report FROM restores WHERE workflow_id = $1', [workflowId]))[0];
    assert.equal(row.outcome, 'cancelled');
    assert.equal(row.report.traffic?.state, 'rolled-back');
    await recordHistory(handle, 'pitrRestore-v2-cutover-cancelled');
  });

  it('a rollback that cannot put the name back removes nothing, keeps the source fenced, and reports commands that do repair it', async () => {
    const workflowId = uniqueId('test-cutover-stuck');
    const destination = destinationFor(workflowId);
    // The DNS API refuses every rollback (and only that): the name stays on the restored instance.
    const brokenRouter = (name: string) => {
      const real = ports.router(name);
      return Object.assign(Object.create(real) as typeof real, {
        restoreSnapshot: () => Promise.reject(new Error('the PowerDNS API at http://127.0.0.1 does not answer (test fault)')),
      });
    };
    const { error, status } = await runRestore(
      workflowId,
      async (h) => {
        await approveAndWaitForTraffic(h, destination);
        await h.cancel();
      },
      { ...ports, router: brokenRouter },
    );
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof CancelledFailure, String(error.cause));
    const restored = await engine.describeInstance(destination);
    assert.equal(restored?.status, 'available', 'the instance the name leads to is kept, running');
    assert.equal((await throughName()).port, restored.endpoint?.port);
    await assertFenced('the source while the name still leads to the restored instance');
    assert.equal((await trafficRow(workflowId)).state, 'rollback-failed');
    assert.deepEqual(await fenceState(workflowId), ['fenced']);
    assert.ok(!status.timeline.some((t) => t.phase === 'cleaning-up' || t.phase === 'unfencing'), status.timeline.map((t) => t.phase).join(' -> '));
    const row = (await ports.catalog.query<{ report: PitrRestoreReport }>('SELECT report FROM restores WHERE workflow_id = $1', [workflowId]))[0];
    const traffic = row.report.traffic;
    assert.equal(traffic?.state, 'rollback-failed');
    const loud = row.report.cleanup.find((c) => c.startsWith('ROLLBACK FAILED: '));
    assert.ok(loud, row.report.cleanup.join('\n'));
    assert.ok(loud.includes(`the restored instance ${destination} at ${restored.endpoint?.host}:${restored.endpoint?.port}`), loud);

    // The commands in the report are exact: run as printed, they put the name back and the source to work.
    assert.ok(traffic?.repairCommand && traffic.fence?.undoCommand);
    await run('/bin/sh', ['-c', traffic.repairCommand]);
    await run('/bin/sh', ['-c', traffic.fence.undoCommand]);
    const deadline = Date.now() + 10000;
    while ((await throughName()).port !== primary().port && Date.now() < deadline) await delay(200);
    assert.deepEqual(await throughName(), { port: primary().port, readOnly: 'off' });
    await assertWritable('the source after the repair commands');
  });

  it('a rejected cutover gate never fences the source nor touches the name', async () => {
    const workflowId = uniqueId('test-cutover-rejected');
    const { result, error } = await runRestore(workflowId, async (h) => {
      await waitForGate(h, 'restore');
      await approveSigned(h, { by: BOB, reason: 'restore it', gate: 'restore' });
      await waitForGate(h, 'cutover');
      await rejectSigned(h, { by: BOB, reason: 'not yet' });
    });
    assert.equal(error, undefined, String(error));
    assert.equal(result?.outcome, 'restored');
    assert.equal(result?.traffic, undefined);
    assert.deepEqual(await fenceState(workflowId), []);
    assert.equal((await ports.catalog.query('SELECT 1 FROM traffic_changes WHERE workflow_id = $1', [workflowId])).length, 0);
    assert.deepEqual(await throughName(), { port: primary().port, readOnly: 'off' });
    await assertWritable('the source after a rejected cutover');
    await removeAsItsOwner(engine, destinationFor(workflowId));
  });

  it('a report that cannot be recorded after a cutover undoes nothing; the new primary archives WAL on its own timeline and has a full backup', async () => {
    const workflowId = uniqueId('test-cutover-done');
    const destination = destinationFor(workflowId);
    // The catalog refuses the report row (and only it): everything else works.
    const catalog = Object.create(ports.catalog) as Ports['catalog'];
    catalog.query = (async (sql: string, params?: unknown[]) => {
      if (/^\s*INSERT INTO restores\b/.test(sql)) throw new LifeboatError('the catalog refused the report (test fault).', 'TEST_FAULT', true);
      return ports.catalog.query(sql, params);
    }) as Ports['catalog']['query'];
    const { handle, result, error } = await runRestore(
      workflowId,
      async (h) => {
        await approveAndWaitForTraffic(h, destination);
        await assertFenced('the source during the cutover');
      },
      { ...ports, catalog },
    );
    assert.equal(error, undefined, String(error));
    assert.ok(result);
    assert.equal(result.outcome, 'restored-and-cut-over');
    assert.deepEqual(result.cleanup, []);
    assert.equal(result.undelivered?.length, 1);
    assert.match(result.undelivered![0], /^the report was not recorded in the catalog: the catalog refused the report \(test fault\)\.$/);

    // Nothing was undone: the name leads to the restored instance, the source stays fenced.
    const endpoint = result.destination?.endpoint;
    assert.ok(endpoint);
    assert.deepEqual(await throughName(), { port: endpoint.port, readOnly: 'off' });
    await assertFenced('the source after the cutover');
    assert.equal((await trafficRow(workflowId)).state, 'applied');
    assert.deepEqual(await fenceState(workflowId), ['fenced']);
    assert.equal((await engine.describeInstance(destination))?.status, 'available');

    // The new primary: recorded as the target's source, WAL archived on a new timeline into both repositories, a full backup of it.
    const protection = result.traffic?.protection;
    assert.ok(protection?.timeline && protection.timeline > 1, JSON.stringify(protection));
    const sources = await ports.catalog.query<{ instance_id: string; endpoint: string; data_dir: string; until: Date | null }>(
      'SELECT instance_id, endpoint, data_dir, until FROM target_sources WHERE target = $1 AND until IS NULL',
      ['app'],
    );
    assert.deepEqual(sources, [{ instance_id: destination, endpoint: `${endpoint.host}:${endpoint.port}`, data_dir: engine.restoreFiles(destination).dataDir, until: null }]);
    const tl = protection.timeline.toString(16).toUpperCase().padStart(8, '0');
    // A write on the new primary reaches both repositories as WAL of its timeline.
    await withDatabase({ ...endpoint, database: stack.ctx.settings.postgres.appDatabase, user: stack.ctx.settings.postgres.superuser }, async (c) => {
      await c.query('CREATE TABLE IF NOT EXISTS lifeboat_new_primary_probe (at timestamptz)');
      await c.query('INSERT INTO lifeboat_new_primary_probe VALUES (now())');
      const segment = (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0].f;
      assert.ok(segment.startsWith(tl), segment);
      const deadline = Date.now() + 60000;
      while ((await c.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver')).rows[0].last! < segment) {
        if (Date.now() > deadline) assert.fail(`${segment} was not archived`);
        await delay(250);
      }
    });
    const cli = localPgBackRest(stack.ctx);
    const deadline = Date.now() + 180000;
    for (;;) {
      const info = (await cli.exec('info', ['--output=json'])).stdout;
      const stanza = (JSON.parse(info) as Array<{ archive: Array<{ max: string | null; database: { 'repo-key': number } }>; backup: Array<{ type: string; annotation?: Record<string, string>; database: { 'repo-key': number }; archive: { start: string } }> }>)[0];
      const maxOf = (repo: number) => stanza.archive.filter((a) => a.database['repo-key'] === repo).map((a) => a.max ?? '')[0] ?? '';
      const backup = stanza.backup.find((b) => b.annotation?.['lifeboat-backup'] === `new-primary-${workflowId}`);
      if (backup && maxOf(1).startsWith(tl) && maxOf(2).startsWith(tl)) {
        assert.equal(backup.type, 'full');
        assert.equal(backup.database['repo-key'], 1);
        assert.ok(backup.archive.start.startsWith(tl), `the backup starts on timeline ${tl}: ${backup.archive.start}`);
        break;
      }
      if (Date.now() > deadline) assert.fail(`no full backup of the new primary on timeline ${tl} in pgbackrest info: ${info.slice(0, 2000)}`);
      await delay(1000);
    }
    await recordHistory(handle, 'pitrRestore-v2-cutover');
  });
});
