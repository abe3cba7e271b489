/**
 * RPO is the data a target would lose now. For pgBackRest (real stack: the primary archives WAL
 * to MinIO by archive_command) that is the archive's lag, whatever the age of the last backup;
 * for RDS it is the time since LatestRestorableTime when automated backups are on (SDK boundary,
 * aws-sdk-client-mock), and the last snapshot's age when they are off.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { rpoStatus } from '../src/activities/backup';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { newPgClient } from '../src/engines/pg-client';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { Stack } from '../src/stack/stack';
import { useStack } from './helpers/stack';
import { derivedConfig, removeCatalogRows } from './helpers/scratch';

describe('RPO: the data lost now (WAL archive lag, or backup age for snapshot-only targets)', function () {
  const id = randomBytes(4).toString('hex');
  const pgTarget = `lbtest-rpo-${id}`;
  const rdsTarget = `lbtest-rpo-rds-${id}`;
  const workflowId = `test-rpo-${id}`;
  let stack: Stack;
  let config: LifeboatConfig;
  let ports: Ports;
  // Stubbed for this suite's lifetime only: a stub made while files load would stand in for every RDSClient of the suites that run first.
  let rds: AwsClientStub<RDSClient>;

  before(async function () {
    this.timeout(600000);
    rds = mockClient(RDSClient);
    stack = await useStack();
    // The app database under the test's own target names, with an RPO of 5 minutes.
    config = derivedConfig((doc) => {
      const app = doc.targets.databases[0];
      delete app.cutover;
      delete app.logicalBackup;
      doc.targets.databases = [
        { ...app, name: pgTarget, environment: 'staging', rpo: '5m' },
        { name: rdsTarget, environment: 'staging', engine: 'rds', instanceId: 'orders-prod', region: 'us-east-1', drRegion: 'us-west-2', drKmsKeyId: 'alias/lifeboat-dr', database: 'orders', user: 'lifeboat', criticalTables: ['orders'], rpo: '5m' },
      ];
      doc.targets.buckets = [];
    });
    ports = createPorts(config, { log: () => undefined });
    await ports.catalog.migrate();
    // Each target's last verified backup finished 22 minutes ago.
    const at = new Date(Date.now() - 22 * 60 * 1000).toISOString();
    for (const [target, engine] of [[pgTarget, 'pgbackrest'], [rdsTarget, 'rds']] as const) {
      await ports.catalog.query(
        `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, completed_at, verified_at, workflow_id)
         VALUES ($1, 'staging', 'full', $2, $3, 'verified', '{}', $4, $4, $5)`,
        [target, engine, `rpo-${target}`, at, workflowId],
      );
    }
  });
  after(async () => {
    rds.restore();
    if (!ports) return;
    await removeCatalogRows(ports.catalog, [workflowId]);
    await ports.close();
  });

  it('a database whose WAL is archived is within its RPO although its last backup is 22 minutes old', async () => {
    await localPgBackRest(stack.ctx).check(); // every write so far reaches the repositories
    const rpo = await rpoStatus(ports, pgTarget);
    assert.equal(rpo.basis, 'wal-archive');
    assert.ok((rpo.ageSeconds ?? 0) >= 22 * 60, `backup age ${rpo.ageSeconds}`);
    assert.ok(rpo.lagSeconds !== undefined && rpo.lagSeconds <= 5, `lag ${rpo.lagSeconds}`);
    assert.equal(rpo.breached, false, rpo.detail);
    assert.match(rpo.detail, new RegExp(`^${pgTarget} would lose (no writes|the last \\d+ s of writes) if it failed now, within its RPO of 5 min: .* Its last verified backup finished 22 min ago`));
  });

  it('writes not yet archived count from the newest archived segment: beyond the RPO, it is breached', async () => {
    const tight: LifeboatConfig = { ...config, targets: { ...config.targets, databases: config.targets.databases.map((d) => ({ ...d, rpo: 1 })) } };
    const tightPorts = createPorts(tight, { log: () => undefined });
    try {
      await localPgBackRest(stack.ctx).check(); // the newest segment arrives now
      // One WAL record that touches no table (archive_timeout is 30 s: it stays unarchived for this test).
      const target = tight.targets.databases.find((d) => d.name === pgTarget)!;
      const client = newPgClient({ host: '127.0.0.1', port: stack.ctx.settings.postgres.primaryPort, user: target.user, database: target.database, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query("SELECT pg_logical_emit_message(false, 'lifeboat-rpo-test', 'unarchived write')");
      } finally {
        await client.end();
      }
      await new Promise((r) => setTimeout(r, 3000));
      const rpo = await rpoStatus(tightPorts, pgTarget);
      assert.equal(rpo.basis, 'wal-archive');
      assert.ok((rpo.lagSeconds ?? 0) >= 3 && (rpo.lagSeconds ?? 0) < 30, `lag ${rpo.lagSeconds}`);
      assert.equal(rpo.breached, true);
      assert.match(rpo.detail, new RegExp(`^${pgTarget} would lose the last \\d+ s of writes if it failed now, beyond its RPO of 1 s: The newest WAL segment .* arrived \\d+ s ago .*; the source has written on to [0-9A-F]+/[0-9A-F]+\\.`));
    } finally {
      await tightPorts.close();
    }
  });

  it('RDS with automated backups: the lag behind LatestRestorableTime; without them (snapshots only): the last backup\'s age', async () => {
    rds.reset();
    const latest = new Date(Date.now() - 4 * 60 * 1000);
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceIdentifier: 'orders-prod', DBInstanceStatus: 'available', BackupRetentionPeriod: 7, LatestRestorableTime: latest }] });
    const continuous = await rpoStatus(ports, rdsTarget);
    assert.equal(continuous.basis, 'wal-archive');
    assert.ok(continuous.lagSeconds !== undefined && Math.abs(continuous.lagSeconds - 240) <= 5, `lag ${continuous.lagSeconds}`);
    assert.equal(continuous.breached, false, continuous.detail);
    assert.equal(continuous.recoverableUntil, latest.toISOString());
    assert.match(continuous.detail, /RDS can restore orders-prod in us-east-1 up to .* \(LatestRestorableTime\)/);

    rds.reset();
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceIdentifier: 'orders-prod', DBInstanceStatus: 'available', BackupRetentionPeriod: 0 }] });
    const snapshots = await rpoStatus(ports, rdsTarget);
    assert.equal(snapshots.basis, 'backup-age');
    assert.equal(snapshots.lagSeconds, undefined);
    assert.equal(snapshots.breached, true);
    assert.match(snapshots.detail, new RegExp(`^The last verified backup of ${rdsTarget} finished 22 min ago .*, beyond its RPO of 5 min\\.$`));
  });
});
