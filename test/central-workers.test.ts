/**
 * Several central workers share one task queue (issue 11, "Several central workers share the
 * load"): two lifeboat workers with their own identities poll the same queue on the stack's
 * Temporal, a dozen backups of an RDS target run (RDS answered at the SDK boundary, catalog and
 * row counts real), and the histories show both workers took activities, and no one else did.
 * How fast and how evenly is the scale benchmark's question (`npm run bench:scale`), not this test's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { RDSClient } from '@aws-sdk/client-rds';
import { temporal } from '@temporalio/proto';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { createPorts, Ports } from '../src/activities/ports';
import { connectWorkerConnection } from '../src/client/temporal';
import { LifeboatConfig, parseConfig } from '../src/config';
import type { DatabaseBackupResult } from '../src/domain/backup';
import { createLifeboatWorker } from '../src/worker';
import { answerSnapshotsLikeRds, rdsTargetYaml, withDatabaseTarget } from './helpers/rds-snapshots';
import { useStack } from './helpers/stack';
import { EXAMPLE_CONFIG_FILE, uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const EventType = temporal.api.enums.v1.EventType;
const BACKUPS = 12;

describe('central workers share one task queue (two workers, real Temporal)', function () {
  const run = randomBytes(3).toString('hex');
  let rds: AwsClientStub<RDSClient>;
  let config: LifeboatConfig;
  let ports: Ports;
  const notices: string[] = [];

  before(async function () {
    this.timeout(600000);
    const stack = await useStack();
    await useTemporal();
    const { settings } = stack.ctx;
    // The source's endpoint is the stack's primary: each backup counts the sample app's products there.
    config = parseConfig(withDatabaseTarget(fs.readFileSync(EXAMPLE_CONFIG_FILE, 'utf8'), rdsTargetYaml('orders', settings.postgres.appDatabase, ['products'])), 'example config + an RDS target');
    rds = mockClient(RDSClient);
    answerSnapshotsLikeRds(rds, { endpoint: { host: settings.host, port: settings.postgres.primaryPort } });
    ports = createPorts(config, { log: (line) => notices.push(line) });
  });

  after(async () => {
    rds?.restore();
    await ports?.close();
  });

  it(`runs ${BACKUPS} backups on two workers polling one queue, and each worker takes some of the activities`, async () => {
    const env = await useTemporal();
    const taskQueue = uniqueTaskQueue('central-workers');
    const bundle = await workflowBundle();
    const identities = [`central-1-${run}`, `central-2-${run}`];
    // A connection each, as two deployed workers have (the SDK refuses two workers of one queue on one connection).
    const connections = await Promise.all(identities.map(async () => (await connectWorkerConnection(config)).connection));
    const [first, second] = await Promise.all(identities.map((identity, i) => createLifeboatWorker({ config, connection: connections[i], ports, taskQueue, identity, workflowBundle: bundle })));
    const ids = Array.from({ length: BACKUPS }, (_, i) => `test-central-workers-${run}-${i}`);

    const results = await first.runUntil(
      second.runUntil(
        Promise.all(ids.map((workflowId) => env.client.workflow.execute('databaseBackup', { taskQueue, workflowId, args: [{ target: 'orders', pollIntervalMs: 50, requestedBy: 'schedule' }] }) as Promise<DatabaseBackupResult>)),
      ),
    );
    await Promise.all(connections.map((c) => c.close()));
    assert.deepEqual(
      results.map((r) => r.status),
      ids.map(() => 'verified'),
    );

    const ranOn: string[] = [];
    for (const id of ids) {
      const events = (await env.client.workflow.getHandle(id).fetchHistory()).events ?? [];
      for (const e of events) if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) ranOn.push(e.activityTaskStartedEventAttributes!.identity!);
    }
    assert.ok(ranOn.length >= BACKUPS * 10, `every backup ran its activities (${ranOn.length} in all)`);
    assert.deepEqual([...new Set(ranOn)].sort(), identities, 'both workers took activities from the shared queue, and no other worker did');
    assert.equal(notices.filter((n) => n.includes('Backup complete: orders')).length, BACKUPS, 'each backup notified its completion once');
  });
});
