/**
 * logicalRestore on the real stack through a real worker and the real CLI: a logical backup of
 * the sample database (with tables of this test's own, seeded exactly), then an accident on the
 * source, then restores into a new database and into a new schema of the live database, both
 * compared row for row with the source as it was; refusals before anything is made; a swapped
 * dump refused; a cancel mid-restore leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from 'pg';
import { createPorts, pgTlsOf, Ports } from '../src/activities/ports';
import { defaultRestoreDatabase } from '../src/activities/logical-restore';
import { findDatabaseTarget, LifeboatConfig, loadConfig } from '../src/config';
import { LogicalBackupReport } from '../src/domain/logical-backup';
import { LogicalRestoreInput, LogicalRestoreReport } from '../src/domain/logical-restore';
import { LogicalDumpEngine } from '../src/engines/logical-dump';
import { delay } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { createLifeboatWorker } from '../src/worker';
import { CONFIG_FILE, lifeboat as runLifeboat } from './helpers/cli';
import { onPrimary, recordHistory, uniqueId, waitForGate, waitForStatus, withDatabase } from './helpers/pitr';
import { purge, removeCatalogRows } from './helpers/scratch';
import { approveSigned } from './helpers/signing';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

describe('logicalRestore (real worker, real stack, real CLI)', function () {
  let stack: Stack;
  let env: TestWorkflowEnvironment;
  let ports: Ports;
  let config: LifeboatConfig;
  let backup: LogicalBackupReport;
  const id = uniqueId('lr').slice(3);
  const orders = `lr_${id}_orders`;
  const items = `lr_${id}_items`;
  const big = `lr_${id}_big`;
  const taskQueue = uniqueTaskQueue('logical-restore');
  const workflowIds: string[] = [];
  const objects: Array<{ store: string; bucket: string; key: string }> = [];
  const databases: string[] = [];
  const schemas: string[] = [];
  /** The source as it was when the backup was taken: table -> rows as text, in key order. */
  let asBackedUp: Record<string, string[]> = {};

  const rowsOf = async (c: Client, table: string) => (await c.query<{ r: string }>(`SELECT t::text AS r FROM ${table} t ORDER BY 1`)).rows.map((x) => x.r);
  const onDatabase = <T>(database: string, fn: (c: Client) => Promise<T>) => {
    const s = stack.ctx.settings;
    return withDatabase({ host: s.host, port: s.postgres.primaryPort, database, user: s.postgres.superuser }, fn);
  };
  const databaseExists = (name: string) => onPrimary(stack, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
  const schemaExists = (name: string) => onPrimary(stack, async (c) => (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name])).rowCount === 1);

  async function runBackup(): Promise<LogicalBackupReport> {
    const workflowId = `test-lr-backup-${id}-${workflowIds.length}`;
    workflowIds.push(workflowId);
    const report = (await env.client.workflow.execute('logicalBackup', { taskQueue, workflowId, args: [{ target: 'app', pollIntervalMs: 1000 }] })) as LogicalBackupReport;
    assert.equal(report.outcome, 'verified');
    objects.push({ store: report.primary!.store, bucket: report.primary!.bucket, key: report.primary!.key }, { store: report.dr!.store, bucket: report.dr!.bucket, key: report.dr!.key });
    return report;
  }

  async function begin(input: Partial<LogicalRestoreInput>, workflowId = uniqueId('test-lr')): Promise<WorkflowHandle> {
    workflowIds.push(workflowId);
    const args: LogicalRestoreInput = { target: 'app', backup: backup.catalogId!, requestedBy: ALICE, reason: 'orders deleted without a WHERE', timings: { pollIntervalMs: 500 }, ...input };
    return env.client.workflow.start('logicalRestore', { taskQueue, workflowId, args: [args] });
  }

  let worker: Awaited<ReturnType<typeof createLifeboatWorker>>;
  let running: Promise<void>;

  before(async function () {
    this.timeout(900000);
    stack = await useStack();
    env = await useTemporal();
    config = loadConfig(CONFIG_FILE);
    ports = createPorts(config, { log: () => undefined });
    worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
    running = worker.run();
    // Tables of this test's own, seeded exactly, with a foreign key and an index to restore.
    await onPrimary(stack, async (c) => {
      await c.query(`CREATE TABLE ${orders} (id int PRIMARY KEY, customer text NOT NULL, total numeric(10,2), note text)`);
      await c.query(`CREATE TABLE ${items} (order_id int REFERENCES ${orders}(id), line int, sku text, qty int, PRIMARY KEY (order_id, line))`);
      await c.query(`INSERT INTO ${orders} SELECT g, 'customer ' || (g % 97), (g * 1.25)::numeric(10,2), CASE WHEN g % 7 = 0 THEN E'multi\\nline\\ttab' END FROM generate_series(1, 3000) g`);
      await c.query(`INSERT INTO ${items} SELECT o, l, 'sku-' || (o * l % 500), l FROM generate_series(1, 3000) o, generate_series(1, 3) l`);
      asBackedUp = { [orders]: await rowsOf(c, orders), [items]: await rowsOf(c, items) };
    });
    backup = await runBackup();
    // The accident, after the backup: the restore must bring back the rows as they were.
    await onPrimary(stack, async (c) => {
      await c.query(`DELETE FROM ${items}`);
      await c.query(`DELETE FROM ${orders} WHERE id > 10`);
    });
  });

  after(async function () {
    this.timeout(300000);
    if (!stack) return;
    for (const db of databases) await onPrimary(stack, (c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)).catch(() => undefined);
    await onPrimary(stack, async (c) => {
      for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await c.query(`DROP TABLE IF EXISTS ${items}, ${orders}, ${big}`);
    }).catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
    worker?.shutdown();
    await running?.catch(() => undefined);
    for (const o of objects) await purge(ports.objectStore(o.store), o.bucket, o.key).catch(() => undefined);
    if (ports) {
      await removeCatalogRows(ports.catalog, workflowIds);
      await ports.catalog.query('DELETE FROM restores WHERE workflow_id = ANY($1)', [workflowIds]).catch(() => undefined);
      await ports.close();
    }
  });

  it('restores the whole dump into a new database behind the gate, row counts as in the dump, rows exactly as the source was', async () => {
    const h = await begin({}, uniqueId('test-lr-db'));
    const database = defaultRestoreDatabase('app', h.workflowId);
    databases.push(database);
    const waiting = await waitForGate(h, 'restore');
    const facts = Object.fromEntries(waiting.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.match(facts.destination, new RegExp(`^new database ${database} on 127\\.0\\.0\\.1:\\d+$`));
    assert.match(facts.backup, new RegExp(`^${backup.backupName} \\(catalog id ${backup.catalogId}, .* lifeboat-enc-v2, key [0-9a-f]{16}\\)$`));
    assert.equal(await databaseExists(database), false, 'nothing is made before approval');
    await approveSigned(h, { by: BOB, reason: 'restore it next to production', gate: 'restore' });
    const report = (await h.result()) as LogicalRestoreReport;
    assert.equal(report.outcome, 'restored', JSON.stringify(report));
    assert.ok(report.verification!.ok);
    assert.equal(report.restored!.archiveRowCounts[`public.${orders}`], 3000);
    assert.equal(report.restored!.archiveRowCounts[`public.${items}`], 9000);
    assert.ok(report.verification!.checks.some((c) => c.name === `rows in public.${items}` && c.ok && c.detail === '9000, as counted when the backup was taken'));
    assert.ok(Object.keys(report.restored!.archiveRowCounts).length >= 6, 'the sample tables too');
    assert.equal(report.restored!.countedFrom, 'backup', 'the counts recorded at backup time: the archive is not counted a second time');
    await onDatabase(database, async (c) => {
      assert.deepEqual(await rowsOf(c, orders), asBackedUp[orders]);
      assert.deepEqual(await rowsOf(c, items), asBackedUp[items]);
      // Constraints came along: the foreign key refuses an orphan line.
      await assert.rejects(c.query(`INSERT INTO ${items} VALUES (999999, 1, 'x', 1)`), /foreign key/);
    });
    const row = await ports.catalog.query<{ outcome: string; destination: string }>('SELECT outcome, destination FROM restores WHERE workflow_id = $1', [h.workflowId]);
    assert.deepEqual(row.map((r) => r.outcome), ['restored']);
    await recordHistory(h, 'logicalRestore-v1-restored');
  });

  it('restores chosen tables into a new schema of the live database, never touching the live tables', async () => {
    const schema = `recovered_${id}`;
    schemas.push(schema);
    const h = await begin({ tables: [orders, `public.${items}`], intoSchema: schema }, uniqueId('test-lr-schema'));
    const waiting = await waitForGate(h, 'restore');
    const facts = Object.fromEntries(waiting.pendingGate!.prompt.facts.map((f) => [f.label, f.value]));
    assert.equal(facts.tables, `public.${orders}, public.${items}`);
    assert.match(facts.destination, new RegExp(`^new schema ${schema} in database app on `));
    assert.equal(await schemaExists(schema), false, 'nothing is made before approval');
    await approveSigned(h, { by: BOB, reason: 'put the rows back next to the live ones', gate: 'restore' });
    const report = (await h.result()) as LogicalRestoreReport;
    assert.equal(report.outcome, 'restored', JSON.stringify(report));
    assert.deepEqual(Object.keys(report.restored!.archiveRowCounts).sort(), [`public.${items}`, `public.${orders}`]);
    await onPrimary(stack, async (c) => {
      assert.deepEqual(await rowsOf(c, `${schema}.${orders}`), asBackedUp[orders]);
      assert.deepEqual(await rowsOf(c, `${schema}.${items}`), asBackedUp[items]);
      // The live tables are as the accident left them.
      assert.equal((await rowsOf(c, `public.${orders}`)).length, 10);
      assert.equal((await rowsOf(c, `public.${items}`)).length, 0);
    });
    assert.equal(await databaseExists(`lifeboat_scratch_${defaultRestoreDatabase('x', h.workflowId).slice(-8)}`), false, 'the scratch database is gone');
    await recordHistory(h, 'logicalRestore-v1-into-schema');
  });

  it('a dump without row counts recorded at backup time: the archive\'s rows are counted on the way and the restore checked against them', async () => {
    const saved = await ports.catalog.query<{ details: Record<string, unknown> }>('SELECT details FROM backups WHERE id::text = $1', [backup.catalogId]);
    // As a dump taken before lifeboat recorded counts: the catalog row without them.
    await ports.catalog.query("UPDATE backups SET details = details - 'rowCounts' WHERE id::text = $1", [backup.catalogId]);
    try {
      const h = await begin({ tables: [orders], intoDatabase: `lr_${id}_uncounted` }, uniqueId('test-lr-old'));
      databases.push(`lr_${id}_uncounted`);
      await waitForGate(h, 'restore');
      await approveSigned(h, { by: BOB, reason: 'an old dump', gate: 'restore' });
      const report = (await h.result()) as LogicalRestoreReport;
      assert.equal(report.outcome, 'restored', JSON.stringify(report));
      assert.equal(report.restored!.countedFrom, 'archive');
      assert.deepEqual(report.restored!.archiveRowCounts, { [`public.${orders}`]: 3000 });
      assert.match(report.verification!.checks.find((c) => c.name === 'row counts compared with')!.detail, /^the dump's own rows: backup \S+ was taken before lifeboat recorded row counts at backup time$/);
      assert.ok(report.verification!.checks.some((c) => c.name === `rows in public.${orders}` && c.ok && c.detail === '3000, as in the dump'));
    } finally {
      await ports.catalog.query('UPDATE backups SET details = $2 WHERE id::text = $1', [backup.catalogId, saved[0].details]);
    }
  });

  describe('bad input through the CLI: one sentence, exit 2, nothing made', () => {
    const cli = (args: string[]) => runLifeboat(['restore', 'app', '--as', ALICE, '--reason', 'testing refusals', ...args], { LIFEBOAT_TASK_QUEUE: taskQueue });

    it('an unknown table', async () => {
      const r = await cli(['--logical', backup.catalogId!, '--tables', 'no_such_table', '--into-database', `lr_${id}_unknown`]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^lifeboat: restore refused: The dump ${backup.backupName} has no table public\\.no_such_table: it holds .*; check the names \\(schema\\.table\\)\\.\\n$`));
      assert.equal(await databaseExists(`lr_${id}_unknown`), false);
    });

    it('an existing database', async () => {
      const r = await cli(['--logical', 'latest', '--into-database', 'app']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^lifeboat: restore refused: The database app already exists on 127\.0\.0\.1:\d+: lifeboat restores only into a new database, so choose another --into-database name\.\n$/);
    });

    it('an existing schema', async () => {
      const r = await cli(['--logical', backup.catalogId!, '--tables', orders, '--into-schema', 'public']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^lifeboat: restore refused: The schema public already exists in database app on 127\.0\.0\.1:\d+: lifeboat never restores over existing tables; choose a new schema name\.\n$/);
    });

    it('an unknown backup id', async () => {
      const r = await cli(['--logical', '987654321']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, 'lifeboat: restore refused: There is no verified logical backup "987654321" of target app in the catalog: give an id or backup name from `lifeboat backups list app`, or latest.\n');
    });

    it('options that do not go together, before connecting', async () => {
      const r = await cli(['--logical', 'latest', '--into-database', 'a_b', '--into-schema', 'c']);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, 'lifeboat: give --into-database or --into-schema, not both: a restore goes into one new place.\n');
      const s = await cli(['--logical', 'latest', '--into-schema', 'c']);
      assert.equal(s.stderr, 'lifeboat: --into-schema restores chosen tables next to the live ones: name them with --tables.\n');
    });

    it('a valid request through the CLI waits at the gate and says what goes where', async () => {
      const workflowId = uniqueId('test-lr-cli');
      workflowIds.push(workflowId);
      const r = await cli(['--logical', backup.backupName!, '--tables', orders, '--into-database', `lr_${id}_cli`, '--id', workflowId]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^restore started: ${workflowId}$`, 'm'));
      assert.match(r.stdout, /^waiting for approval \(restore\) by any of: .*, not alice@example\.com$/m);
      assert.match(r.stdout, new RegExp(`^  destination: new database lr_${id}_cli on 127\\.0\\.0\\.1:\\d+$`, 'm'));
      assert.match(r.stdout, new RegExp(`^  tables: public\\.${orders}$`, 'm'));
      await env.client.workflow.getHandle(workflowId).cancel();
      await env.client.workflow.getHandle(workflowId).result().catch(() => undefined);
      assert.equal(await databaseExists(`lr_${id}_cli`), false);
    });
  });

  it('refuses a dump whose object was swapped with another dump\'s, before anything is made; restore and decrypt both say so', async () => {
    const target = findDatabaseTarget(config, 'app');
    const lb = target.logicalBackup!;
    const engine = new LogicalDumpEngine({ store: { s3: ports.objectStore(lb.store), bucket: lb.bucket, prefix: lb.prefix, name: lb.store }, encryptionKey: lb.encryptionKey });
    const other = await engine.backup({ target: 'app', backupName: `lr-other-${id}`, source: { host: target.engine === 'pgbackrest' ? target.host : '', port: target.engine === 'pgbackrest' ? target.port : 0, database: target.database, user: target.user, tls: pgTlsOf(target) } });
    objects.push({ store: lb.store, bucket: other.bucket, key: other.key });
    const s3 = ports.objectStore(lb.store);
    const copy = (from: string, to: string) => s3.send(new CopyObjectCommand({ Bucket: lb.bucket, Key: to, CopySource: `${lb.bucket}/${from}`, MetadataDirective: 'COPY' }));
    const saved = `${backup.primary!.key}.saved-${id}`;
    objects.push({ store: lb.store, bucket: lb.bucket, key: saved });
    await copy(backup.primary!.key, saved);
    // The other dump's bytes (and record) where this backup's object should be, and the catalog
    // pointing at them, as a swap in a bucket without versioning would leave it.
    const swapped = await copy(other.key, backup.primary!.key);
    const pinned = backup.primary!.versionId;
    const pin = (versionId: string | undefined) =>
      ports.catalog.query(`UPDATE backups SET locations = CASE WHEN $1::text IS NULL THEN locations #- '{primary,versionId}' ELSE jsonb_set(locations, '{primary,versionId}', to_jsonb($1::text)) END WHERE id = $2::bigint`, [versionId ?? null, backup.catalogId]);
    await pin(swapped.VersionId && swapped.VersionId !== 'null' ? swapped.VersionId : undefined);
    try {
      const h = await begin({ intoDatabase: `lr_${id}_swapped`, timings: { pollIntervalMs: 500, abortAfterMs: 20000, remindAfterMs: 15000 } });
      const err = await h.result().then(
        () => assert.fail('a swapped dump must be refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        String((err.cause?.cause as Error | undefined)?.message),
        new RegExp(`^The encrypted object is bound to target app, backup lr-other-${id}, not to target app, backup ${backup.backupName} as expected: it was swapped or copied over another backup, so it is refused`),
      );
      assert.equal(await databaseExists(`lr_${id}_swapped`), false);
      // And lifeboat decrypt, told what the object must be, refuses it the same way.
      const fs = await import('node:fs');
      const os = await import('node:os');
      const path = await import('node:path');
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lr-')), 'object.enc');
      const body = await s3.send(new GetObjectCommand({ Bucket: lb.bucket, Key: backup.primary!.key }));
      fs.writeFileSync(file, Buffer.from(await body.Body!.transformToByteArray()));
      const r = await runLifeboat(['decrypt', '--key', lb.encryptionKey, '--in', file, '--target', 'app', '--backup', backup.backupName!]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^lifeboat: The encrypted object is bound to target app, backup lr-other-/);
      assert.equal(r.stdout, '');
    } finally {
      await copy(saved, backup.primary!.key);
      await pin(pinned);
    }
  });

  it('a cancel mid-restore removes the half-made database and nothing else', async function () {
    // Enough data that the restore is still streaming when the cancel lands.
    await onPrimary(stack, (c) => c.query(`CREATE TABLE ${big} AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS filler FROM generate_series(1, 1500000) g`));
    const bigBackup = await runBackup();
    const h = await begin({ backup: bigBackup.catalogId!, intoDatabase: `lr_${id}_cancelled` }, uniqueId('test-lr-cancel'));
    databases.push(`lr_${id}_cancelled`);
    await waitForGate(h, 'restore');
    await approveSigned(h, { by: BOB, reason: 'restore it', gate: 'restore' });
    await waitForStatus(h, 'the restore to stream', (s) => s.phase === 'restoring');
    // Cancelled while pg_restore writes into the attempt's working database (the destination's
    // name is only taken once the restore is whole).
    const writing = async () =>
      (await onPrimary(stack, (c) => c.query<{ datname: string }>("SELECT datname FROM pg_stat_activity WHERE application_name = 'lifeboat pg_restore' AND datname LIKE 'lifeboat\\_making\\_%'"))).rows;
    let working: Array<{ datname: string }> = [];
    for (let i = 0; i < 1200 && !working.length; i++) {
      working = await writing();
      if (!working.length) await delay(50);
    }
    assert.ok(working.length, 'pg_restore was writing into a working database');
    assert.equal(await databaseExists(`lr_${id}_cancelled`), false, 'the destination name is not taken before the restore is whole');
    await h.cancel();
    await h.result().then(
      () => assert.fail('a cancelled restore does not succeed'),
      () => undefined,
    );
    assert.equal(await databaseExists(working[0].datname), false, 'compensation dropped the half-made working database');
    assert.equal(await databaseExists(`lr_${id}_cancelled`), false);
    assert.deepEqual(await writing(), [], 'no pg_restore is left writing');
    assert.equal(await databaseExists('app'), true);
    const row = await ports.catalog.query<{ outcome: string; report: LogicalRestoreReport }>('SELECT outcome, report FROM restores WHERE workflow_id = $1', [h.workflowId]);
    assert.equal(row[0].outcome, 'cancelled');
    // The cancel reaches the activity with its next heartbeat: pg_restore is stopped and its working
    // database dropped, or, when pg_restore finished first, the database it had just renamed into place.
    assert.match(
      row[0].report.cleanup.join('\n'),
      new RegExp(`database lr_${id}_cancelled on .* was never made: nothing to remove; removed ${working[0].datname}, this run's half-made working database|removed database lr_${id}_cancelled on .*, made by this restore`),
    );
    await recordHistory(h, 'logicalRestore-v2-cancelled-mid-pg-restore');
  });
});
