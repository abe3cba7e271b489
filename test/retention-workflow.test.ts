/**
 * retention on the real stack through a real worker. The test seeds real backups of every kind
 * in both regions (pgBackRest sets in repo1 and repo2, logical dump objects, file backup sets)
 * and catalog rows that date them to March 2028, then runs retention as of June 2030 on a
 * derived config whose only targets are the test's own: exactly the expired ones go, in both
 * regions; the last verified backup, legal holds and what kept backups depend on stay; every
 * deletion and refusal is recorded. Everything it makes is removed afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { LifeboatConfig } from '../src/config';
import { LifeboatError } from '../src/domain/errors';
import { BackupHandle } from '../src/domain/ports';
import { RetentionReport } from '../src/domain/retention';
import { FileBackupEngine } from '../src/engines/file-backup';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { BACKUP_ANNOTATION } from '../src/engines/pgbackrest/backups';
import { localPgBackRestEngine } from '../src/stack/local-engines';
import { ensureBucket } from '../src/engines/s3';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { delay } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { useStack } from './helpers/stack';
import { derivedConfig, purge, removeBucket, removeCatalogRows, versionCount } from './helpers/scratch';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const PRIMARY_BACKUPS = 'lifeboat-backups-primary';
const DR_BACKUPS = 'lifeboat-backups-dr';
const NOW = '2030-06-15T12:00:00Z';

describe('retention workflow (real worker, real stack)', function () {
  const id = randomBytes(4).toString('hex');
  const dbTarget = `lbtest-db-${id}`;
  const filesTarget = `lbtest-files-${id}`;
  const sourceBucket = `lbtest-${id}-rsrc`;
  const filesPrefix = `files/lbtest-ret-${id}/`;
  const seedWorkflow = `test-retention-seed-${id}`;
  const workflowIds = [seedWorkflow];
  let env: TestWorkflowEnvironment;
  let stack: Stack;
  let ports: Ports;
  let config: LifeboatConfig;
  let primary: S3Client;
  let dr: S3Client;
  let pg: PgBackRestEngine;
  /** Catalog id by the test's name for each seeded backup. */
  const rowId = new Map<string, string>();
  const pgHandles = new Map<string, { primary: BackupHandle; dr: BackupHandle }>();

  async function insertRow(name: string, row: { backupType: string; engine: string; engineBackupId: string; status: string; completedAt: string; locations: unknown; legalHold?: boolean; details?: unknown }) {
    const [r] = await ports.catalog.query<{ id: string }>(
      `INSERT INTO backups (target, environment, backup_type, engine, engine_backup_id, status, locations, completed_at, verified_at, legal_hold, workflow_id, details)
       VALUES ($1, 'staging', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id::text AS id`,
      [
        row.backupType.startsWith('files-') ? filesTarget : dbTarget,
        row.backupType,
        row.engine,
        row.engineBackupId,
        row.status,
        JSON.stringify(row.locations),
        row.completedAt,
        row.status === 'verified' ? row.completedAt : null,
        row.legalHold ?? false,
        seedWorkflow,
        JSON.stringify(row.details ?? {}),
      ],
    );
    rowId.set(name, r.id);
  }

  // ----- pgBackRest: a full and two differentials on it, each also taken into the DR repository
  async function retryWhileBusy<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof LifeboatError) || err.code !== 'PGBACKREST_BUSY' || i > 120) throw err;
        await delay(1000);
      }
    }
  }
  async function finished(handle: BackupHandle): Promise<BackupHandle> {
    for (;;) {
      const p = await pg.backupProgress(handle);
      if (p.state === 'complete') return { ...handle, backupId: p.backupId ?? handle.backupId };
      if (p.state === 'failed') throw new Error(`backup ${handle.name} failed: ${p.detail}`);
      await delay(300);
    }
  }
  async function pgBackup(name: string, kind: 'full' | 'diff') {
    const p = await finished(await retryWhileBusy(() => pg.startBackup({ backupName: `lbtest-${id}-${name}`, kind })));
    const d = await finished(await retryWhileBusy(() => pg.copyToDisasterRecovery(p, { copyName: `lbtest-${id}-${name}-dr` })));
    pgHandles.set(name, { primary: p, dr: d });
    return { primary: { region: 'primary', handle: p }, dr: { region: 'dr', handle: d } };
  }
  async function setsNamed(repo: number, name: string): Promise<string[]> {
    const info = await localPgBackRest(stack.ctx).info(repo);
    return (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo && (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION] === name).map((b) => b.label);
  }

  // ----- logical dumps: objects where the logicalBackup workflow puts them, in both regions
  const dumpKey = (name: string) => `logical/${dbTarget}/${name}.dump.gz.enc`;
  async function logicalDump(name: string) {
    for (const s3 of [primary, dr]) await s3.send(new PutObjectCommand({ Bucket: s3 === primary ? PRIMARY_BACKUPS : DR_BACKUPS, Key: dumpKey(name), Body: `not really a dump: ${name}` }));
    return { primary: { store: 'primary', bucket: PRIMARY_BACKUPS, key: dumpKey(name) }, dr: { store: 'dr', bucket: DR_BACKUPS, key: dumpKey(name) } };
  }

  // ----- file backup sets: real sets of a scratch bucket, copied to the DR backup bucket
  let files: FileBackupEngine;
  const drSets = () => ({ s3: dr, bucket: DR_BACKUPS, root: filesPrefix, name: 'dr' });
  async function fileSet(ts: string, mode: 'full' | 'incremental') {
    const result = await files.backup({ timestamp: ts, mode });
    await files.copyToRegion(ts, drSets());
    const manifest = (await files.readManifest(ts))!;
    const dependsOn = [...new Set(manifest.entries.filter((e) => e.change !== 'deleted' && e.storedIn !== ts).map((e) => e.storedIn))];
    const loc = (store: string, bucket: string) => ({ store, bucket, root: filesPrefix.replace(/\/$/, ''), timestamp: ts, manifestKey: result.manifestKey });
    return { locations: { primary: loc('primary', PRIMARY_BACKUPS), dr: loc('dr', DR_BACKUPS) }, details: { dependsOn } };
  }
  const putSource = (key: string, body: string) => primary.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: body }));

  before(async function () {
    this.timeout(600000);
    env = await useTemporal();
    stack = await useStack();
    config = derivedConfig((doc) => {
      const app = doc.targets.databases[0];
      delete app.cutover;
      doc.targets.databases = [{ ...app, name: dbTarget, environment: 'staging' }];
      doc.targets.buckets = [
        {
          name: filesTarget,
          environment: 'staging',
          source: { store: 'primary', bucket: sourceBucket },
          backup: { store: 'primary', bucket: PRIMARY_BACKUPS, prefix: filesPrefix },
          replica: { store: 'dr', bucket: 'app-files-replica' },
          drBackup: { store: 'dr', bucket: DR_BACKUPS },
          legalHolds: [{ prefix: 'held/', reason: 'test hold LEGAL-99' }],
        },
      ];
    });
    ports = createPorts(config, { log: () => undefined });
    primary = ports.objectStore('primary');
    dr = ports.objectStore('dr');
    // The DR copies this test makes are second backups named -dr (the default, repository-copy, keeps the label).
    pg = localPgBackRestEngine(stack, { drCopy: 'second-backup', timings: { startWatchMs: 3000, pollMs: 100 } });
    files = new FileBackupEngine({ source: { s3: primary, bucket: sourceBucket }, backup: { s3: primary, bucket: PRIMARY_BACKUPS, root: filesPrefix, name: 'primary' } });
    await ensureBucket(primary, { name: sourceBucket, versioning: true });

    // pgBackRest: F <- D1, F <- D2 (a differential references only its full).
    await insertRow('F', { backupType: 'full', engine: 'pgbackrest', engineBackupId: `lbtest-${id}-F`, status: 'verified', completedAt: '2028-03-01T03:00:00Z', locations: await pgBackup('F', 'full') });
    await insertRow('D1', { backupType: 'diff', engine: 'pgbackrest', engineBackupId: `lbtest-${id}-D1`, status: 'verified', completedAt: '2028-03-02T03:00:00Z', locations: await pgBackup('D1', 'diff') });
    await insertRow('D2', { backupType: 'diff', engine: 'pgbackrest', engineBackupId: `lbtest-${id}-D2`, status: 'verified', completedAt: '2028-03-03T03:00:00Z', locations: await pgBackup('D2', 'diff') });

    // Logical dumps: L2 is on legal hold in the catalog; L4 is newer than L3 but not verified.
    await insertRow('L1', { backupType: 'logical', engine: 'pg_dump', engineBackupId: 'L1', status: 'verified', completedAt: '2028-03-01T02:00:00Z', locations: await logicalDump('L1') });
    await insertRow('L2', { backupType: 'logical', engine: 'pg_dump', engineBackupId: 'L2', status: 'verified', completedAt: '2028-03-02T02:00:00Z', locations: await logicalDump('L2'), legalHold: true });
    await insertRow('L3', { backupType: 'logical', engine: 'pg_dump', engineBackupId: 'L3', status: 'verified', completedAt: '2028-03-03T02:00:00Z', locations: await logicalDump('L3') });
    await insertRow('L4', { backupType: 'logical', engine: 'pg_dump', engineBackupId: 'L4', status: 'complete', completedAt: '2028-03-04T02:00:00Z', locations: await logicalDump('L4') });

    // File sets: F0 full; F1 full holding held/ (legal hold by prefix); I1 on F1; F2 full; I2 on F2.
    const set = async (name: string, ts: string, mode: 'full' | 'incremental', day: string) => {
      const s = await fileSet(ts, mode);
      await insertRow(name, { backupType: `files-${mode}`, engine: 'file-backup', engineBackupId: ts, status: 'verified', completedAt: `2028-03-${day}T04:00:00Z`, ...s });
    };
    await putSource('a.txt', 'a1');
    await putSource('b.txt', 'b1');
    await set('F0', '20280301T040000Z', 'full', '01');
    await putSource('held/evidence.txt', 'keep me');
    await set('F1', '20280302T040000Z', 'full', '02');
    await primary.send(new DeleteObjectCommand({ Bucket: sourceBucket, Key: 'held/evidence.txt' }));
    await putSource('b.txt', 'b2');
    await set('I1', '20280303T040000Z', 'incremental', '03');
    await set('F2', '20280304T040000Z', 'full', '04');
    await putSource('a.txt', 'a2');
    await set('I2', '20280305T040000Z', 'incremental', '05');
  });

  after(async function () {
    this.timeout(300000);
    if (!ports) return;
    // Dependents first; the full may stay as the newest full of its repository (other suites sweep lbtest- fulls).
    for (const name of ['D2', 'D1', 'F']) {
      const h = pgHandles.get(name);
      for (const handle of h ? [h.primary, h.dr] : []) await pg.deleteBackup(handle).catch((err: unknown) => console.error(`cleanup of ${handle.name}: ${String(err)}`));
    }
    // Fulls this suite left in earlier runs, now no longer the newest of their repository.
    for (const repo of [1, 2]) {
      const info = await localPgBackRest(stack.ctx).info(repo).catch(() => undefined);
      const fulls = (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo && b.type === 'full').sort((a, b) => a.label.localeCompare(b.label));
      for (const b of fulls.slice(0, -1)) {
        const name = (b as { annotation?: Record<string, string> }).annotation?.[BACKUP_ANNOTATION];
        if (!name || !/^lbtest-[0-9a-f]{8}-F(-dr)?$/.test(name)) continue;
        await pg.deleteBackup({ engine: 'pgbackrest', backupId: b.label, name, location: repo === 1 ? 'primary' : 'dr', locator: `repo${repo}` }).catch(() => undefined);
      }
    }
    await purge(primary, PRIMARY_BACKUPS, `logical/${dbTarget}/`);
    await purge(dr, DR_BACKUPS, `logical/${dbTarget}/`);
    await purge(primary, PRIMARY_BACKUPS, filesPrefix);
    await purge(dr, DR_BACKUPS, filesPrefix);
    await removeBucket(primary, sourceBucket);
    await removeCatalogRows(ports.catalog, workflowIds);
    await ports.close();
  });

  async function run(workflowId: string, input: { dryRun?: boolean; now?: string; target?: string }): Promise<RetentionReport> {
    workflowIds.push(workflowId);
    const taskQueue = uniqueTaskQueue('retention');
    const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    return worker.runUntil(env.client.workflow.execute('retention', { taskQueue, workflowId, args: [input] }) as Promise<RetentionReport>);
  }

  const nameOf = (catalogId: string) => [...rowId].find(([, v]) => v === catalogId)?.[0] ?? `?${catalogId}`;
  const statuses = async () => {
    const rows = await ports.catalog.query<{ id: string; status: string }>('SELECT id::text AS id, status FROM backups WHERE workflow_id = $1', [seedWorkflow]);
    return Object.fromEntries(rows.map((r) => [nameOf(r.id), r.status]));
  };

  it('in a dry run, lists what the policy expires and why, and changes nothing', async () => {
    const before = await statuses();
    const report = await run(`test-retention-dry-${id}`, { dryRun: true, now: NOW });
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.toExpire.map((i) => nameOf(i.catalogId)).sort(), ['D1', 'F', 'F0', 'I1', 'L1', 'L4']);
    assert.deepEqual(report.kept.map((i) => nameOf(i.catalogId)).sort(), ['D2', 'F1', 'F2', 'I2', 'L2', 'L3']);
    const why = Object.fromEntries(report.kept.map((i) => [nameOf(i.catalogId), i.reasons.join('; ')]));
    assert.equal(why.L3, `the last verified backup of ${dbTarget}/logical`);
    assert.equal(why.L2, 'legal hold: the catalog marks it legal_hold');
    assert.match(why.F1, /^legal hold: held\/ \(test hold LEGAL-99\), e\.g\. held\/evidence\.txt/);
    assert.equal(why.F2, `needed by ${rowId.get('I2')}`);
    assert.equal(why.D2, `the last verified backup of ${dbTarget}/database:pgbackrest`);
    // Within a series, newest first: the dependent I1 goes before F0, D1 before F.
    const order = report.toExpire.map((i) => nameOf(i.catalogId));
    assert.ok(order.indexOf('I1') < order.indexOf('F0') && order.indexOf('D1') < order.indexOf('F'), order.join(','));
    assert.deepEqual(report.outcomes, []);
    assert.deepEqual(await statuses(), before);
  });

  it('expires exactly what the policy says in both regions, keeps the rest, reports the engine\'s refusal, and records every deletion', async () => {
    const workflowId = `test-retention-${id}`;
    const report = await run(workflowId, { now: NOW });
    const outcome = Object.fromEntries(report.outcomes.map((o) => [nameOf(o.catalogId), o]));
    assert.deepEqual(Object.keys(outcome).sort(), ['D1', 'F', 'F0', 'I1', 'L1', 'L4']);
    for (const name of ['D1', 'F0', 'I1', 'L1', 'L4']) {
      assert.equal(outcome[name].outcome, 'expired', `${name}: ${outcome[name].detail}`);
      assert.deepEqual(outcome[name].regions.map((r) => [r.region, r.outcome]), [['primary', 'deleted'], ['dr', 'deleted']], name);
    }
    // The full still has D2 on it (unless a concurrent suite based D2 on a newer full): pgBackRest is not overridden.
    if (outcome.F.outcome === 'refused') assert.match(outcome.F.detail, /BACKUP_HAS_DEPENDENTS|NEWEST_FULL_BACKUP/);
    else assert.equal(outcome.F.outcome, 'expired');

    // Logical dumps: gone in both regions (every version), the kept ones untouched.
    for (const [s3, bucket] of [[primary, PRIMARY_BACKUPS], [dr, DR_BACKUPS]] as const) {
      assert.equal(await versionCount(s3, bucket, dumpKey('L1')), 0);
      assert.equal(await versionCount(s3, bucket, dumpKey('L4')), 0);
      assert.equal(await versionCount(s3, bucket, dumpKey('L2')), 1);
      assert.equal(await versionCount(s3, bucket, dumpKey('L3')), 1);
      // File sets: F0 and I1 gone; the held F1, and F2 and I2 intact.
      assert.equal(await versionCount(s3, bucket, `${filesPrefix}20280301T040000Z/`), 0);
      assert.equal(await versionCount(s3, bucket, `${filesPrefix}20280303T040000Z/`), 0);
      for (const ts of ['20280302T040000Z', '20280304T040000Z', '20280305T040000Z']) assert.ok((await versionCount(s3, bucket, `${filesPrefix}${ts}/`)) > 0, ts);
    }
    // The kept incremental still restores in both regions: every object it needs is there.
    assert.equal((await files.verify('20280305T040000Z', { sample: 'all' })).ok, true);
    assert.equal((await files.verify('20280305T040000Z', { sample: 'all', location: drSets() })).ok, true);

    // pgBackRest: D1 expired from both repositories, D2 kept in both.
    assert.deepEqual(await setsNamed(1, `lbtest-${id}-D1`), []);
    assert.deepEqual(await setsNamed(2, `lbtest-${id}-D1-dr`), []);
    assert.equal((await setsNamed(1, `lbtest-${id}-D2`)).length, 1);
    assert.equal((await setsNamed(2, `lbtest-${id}-D2-dr`)).length, 1);

    // The catalog: expired rows say so, kept rows unchanged, one event per expiry and refusal.
    const s = await statuses();
    for (const name of ['D1', 'F0', 'I1', 'L1', 'L4']) assert.equal(s[name], 'expired', name);
    for (const name of ['D2', 'F1', 'F2', 'I2', 'L2', 'L3']) assert.notEqual(s[name], 'expired', name);
    assert.equal(s.F, outcome.F.outcome === 'expired' ? 'expired' : 'verified');
    const events = await ports.catalog.query<{ event: string; target: string; details: { catalogId: string; regions: unknown[]; reason: string } }>(
      "SELECT event, target, details FROM workflow_events WHERE workflow_id = $1 AND kind = 'retention' ORDER BY id",
      [workflowId],
    );
    const expiredEvents = events.filter((e) => e.event === 'backup-expired').map((e) => nameOf(e.details.catalogId)).sort();
    assert.deepEqual(expiredEvents, outcome.F.outcome === 'expired' ? ['D1', 'F', 'F0', 'I1', 'L1', 'L4'] : ['D1', 'F0', 'I1', 'L1', 'L4']);
    assert.equal(events.filter((e) => e.event === 'backup-expiry-refused').length, outcome.F.outcome === 'refused' ? 1 : 0);
    for (const e of events) {
      assert.equal(e.target, ['F0', 'I1'].includes(nameOf(e.details.catalogId)) ? filesTarget : dbTarget);
      assert.match(e.details.reason, /older than 7 days/);
    }

    // Run again: nothing new expires, the refusal (if any) is reported again, nothing is deleted twice.
    const again = await run(`test-retention-again-${id}`, { now: NOW });
    assert.deepEqual(again.outcomes.filter((o) => o.outcome === 'expired'), []);
  });
});
