/**
 * The embedded stack, component by component, for real: pgBackRest against both MinIO regions,
 * S3 round trips over verified TLS, PowerDNS over DNS and its API, the catalog's migrations.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import { migrateCatalog, MIGRATIONS } from '../src/catalog/migrations';
import { localDnsRouter } from '../src/stack/powerdns';
import { localPgBackRest } from '../src/stack/pgbackrest';
import { s3ClientFor, Stack } from '../src/stack/stack';
import { useStack } from './helpers/stack';

describe('embedded stack', function () {
  let stack: Stack;
  before(async function () {
    this.timeout(600000);
    stack = await useStack();
  });

  it('pgBackRest archives WAL into both MinIO regions and its check passes for each repository', async () => {
    const results = await localPgBackRest(stack.ctx).checkEachRepo([1, 2]);
    assert.deepEqual(results.map((r) => [r.repo, r.ok]), [[1, true], [2, true]], JSON.stringify(results));
    // The same segment name lands in both repositories: WAL for PITR exists in each region.
    const segment = (d: string) => d.match(/WAL segment (\S+)/)?.[1];
    assert.equal(segment(results[0].detail), segment(results[1].detail));
  });

  for (const regionName of ['primary', 'dr'] as const) {
    it(`an object round-trips through the ${regionName} region's MinIO over verified TLS`, async () => {
      const region = stack.ctx.settings.minio[regionName];
      const s3 = s3ClientFor(stack.ctx.settings, region);
      const key = `tests/round-trip/${randomUUID()}.bin`;
      const body = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) % 256));
      try {
        await s3.send(new PutObjectCommand({ Bucket: region.backupBucket, Key: key, Body: body }));
        const got = await s3.send(new GetObjectCommand({ Bucket: region.backupBucket, Key: key }));
        assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
      } finally {
        const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: region.backupBucket, Prefix: key }));
        for (const v of [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]) {
          await s3.send(new DeleteObjectCommand({ Bucket: region.backupBucket, Key: key, VersionId: v.VersionId }));
        }
        s3.destroy();
      }
    });
  }

  it('MinIO really serves TLS: a client that does not trust the local CA is refused', async () => {
    const { settings } = stack.ctx;
    const untrusting = new S3Client({
      region: 'primary',
      endpoint: `https://${settings.host}:${settings.minio.primary.port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: settings.minio.accessKey, secretAccessKey: settings.minio.secretKey },
      maxAttempts: 1,
    });
    await assert.rejects(untrusting.send(new GetObjectCommand({ Bucket: settings.minio.primary.filesBucket, Key: 'invoices/2026/INV-0001.json' })), /certificate/i);
    untrusting.destroy();
  });

  it('PowerDNS answers the application database name over DNS and serves a change made through its API', async () => {
    const { settings } = stack.ctx;
    const dns = localDnsRouter(settings);
    assert.deepEqual(await dns.currentTarget(settings.dns.appDbName), { host: settings.host, port: settings.postgres.primaryPort, ttl: 30 });
    const name = `test-${randomUUID().slice(0, 8)}.${settings.dns.zone}`;
    try {
      await dns.pointAt(name, { host: '127.0.0.9', port: 6543 }, 5);
      assert.deepEqual(await dns.currentTarget(name), { host: '127.0.0.9', port: 6543, ttl: 5 });
      await dns.pointAt(name, { host: '127.0.0.10', port: 6544 }, 5);
      assert.deepEqual(await dns.currentTarget(name), { host: '127.0.0.10', port: 6544, ttl: 5 });
    } finally {
      await dns.removeName(name);
    }
    assert.equal(await dns.currentTarget(name), undefined);
  });

  it('the catalog schema migrates from empty, and migrating twice is harmless', async () => {
    const scratch = `catalog_migrate_${randomUUID().slice(0, 8)}`;
    await stack.catalog.withClient('postgres', (c) => c.query(`CREATE DATABASE ${scratch}`));
    const client: Client = stack.catalog.connect(scratch);
    await client.connect();
    try {
      const first = await migrateCatalog(client);
      assert.deepEqual(first.applied, MIGRATIONS.map((m) => m.version));
      const second = await migrateCatalog(client);
      assert.deepEqual(second.applied, []);
      const tables = await client.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
      assert.deepEqual(tables.rows.map((r) => r.table_name), ['alerts', 'approvals', 'backups', 'compliance_reports', 'drills', 'failbacks', 'failovers', 'preflight_checks', 'restore_points', 'restored_instances', 'restores', 'schema_migrations', 'source_fences', 'target_sources', 'traffic_changes', 'verifications', 'workflow_events']);
      const versions = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(versions.rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
    } finally {
      await client.end();
      await stack.catalog.withClient('postgres', (c) => c.query(`DROP DATABASE ${scratch}`));
    }
  });

  it('the catalog lives in its own cluster, not in the primary it must outlive', async () => {
    const { settings } = stack.ctx;
    assert.notEqual(settings.postgres.catalogPort, settings.postgres.primaryPort);
    const sysid = (cluster: typeof stack.primary) =>
      cluster.withClient('postgres', async (c) => (await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0].id);
    assert.notEqual(await sysid(stack.catalog), await sysid(stack.primary));
  });

  it('the sample application has related tables with seeded rows and intact foreign keys', async () => {
    await stack.primary.withClient(stack.ctx.settings.postgres.appDatabase, async (c) => {
      const counts = await c.query<{ customers: string; orders: string; items: string; orphans: string }>(`
        SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM orders) AS orders,
               (SELECT count(*) FROM order_items) AS items,
               (SELECT count(*) FROM order_items i LEFT JOIN orders o ON o.id = i.order_id WHERE o.id IS NULL) AS orphans`);
      const row = counts.rows[0];
      assert.ok(Number(row.orders) >= 10, `orders: ${row.orders}`);
      assert.equal(Number(row.items), Number(row.orders) * 2);
      assert.equal(Number(row.orphans), 0);
      const fks = await c.query("SELECT conname FROM pg_constraint WHERE contype = 'f'");
      assert.ok(fks.rowCount! >= 3);
    });
  });
});
