/**
 * The sample application's HTTP service on the real stack: it answers from the cluster the DNS
 * name points at, follows a repointed name without a restart, answers 503 with a clear error
 * while that cluster is stopped and recovers by itself, and its counter follows the writes.
 * The other cluster is a throwaway one initialised for this suite (a restore would share the
 * primary's system identifier, which is exactly what must differ here).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { newPgClient } from '../src/engines/pg-client';
import { ensureDir, livePid, portIsFree, run } from '../src/platform/processes';
import { localDnsRouter } from '../src/stack/powerdns';
import { seedSampleApp } from '../src/stack/sample-app';
import { startSampleAppService } from '../src/stack/sample-app-service';
import { Stack } from '../src/stack/stack';
import { runNode } from './helpers/cli';
import { useStack } from './helpers/stack';

interface Answer {
  status: number;
  body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(baseUrl: string, method: 'GET' | 'POST', urlPath: string): Promise<Answer> {
  const res = await fetch(`${baseUrl}${urlPath}`, { method, signal: AbortSignal.timeout(30000) });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

/** A PostgreSQL cluster of its own (initdb), on the first free port of the stack's restore range. */
class ThrowawayCluster {
  port = 0;
  constructor(
    private readonly stack: Stack,
    readonly dataDir: string,
  ) {}

  private get asUser(): string {
    return this.stack.ctx.settings.postgres.osUser;
  }

  async create(): Promise<void> {
    const { settings, tools, paths } = this.stack.ctx;
    await ensureDir(paths.restoresDir, { owner: this.asUser, mode: 0o755 });
    for (let p = settings.postgres.restorePorts.from; p <= settings.postgres.restorePorts.to && !this.port; p++) if (await portIsFree(settings.host, p)) this.port = p;
    assert.ok(this.port, 'a free port in the restore range');
    await run(tools.pgBin('initdb'), ['-D', this.dataDir, '-U', settings.postgres.superuser, '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8'], { asUser: this.asUser });
    await this.start();
    const admin = this.client('postgres');
    await admin.connect();
    await admin.query(`CREATE DATABASE "${settings.postgres.appDatabase}"`).finally(() => admin.end());
    const app = this.client(settings.postgres.appDatabase);
    await app.connect();
    await seedSampleApp(app, 20).finally(() => app.end());
  }

  client(database: string) {
    const { settings } = this.stack.ctx;
    return newPgClient({ host: settings.host, port: this.port, user: settings.postgres.superuser, database, connectionTimeoutMillis: 5000 });
  }

  async start(): Promise<void> {
    const { settings, tools, paths } = this.stack.ctx;
    const options = `-p ${this.port} -k ${paths.pgSocketDir} -c listen_addresses=${settings.host}`;
    await run(tools.pgBin('pg_ctl'), ['-D', this.dataDir, '-l', path.join(this.dataDir, 'server.log'), '-o', options, '-w', '-t', '60', 'start'], { asUser: this.asUser });
  }

  async stop(): Promise<void> {
    if (!livePid(path.join(this.dataDir, 'postmaster.pid'), this.dataDir)) return;
    await run(this.stack.ctx.tools.pgBin('pg_ctl'), ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], { asUser: this.asUser });
  }

  async systemIdentifier(): Promise<string> {
    const c = this.client('postgres');
    await c.connect();
    try {
      return (await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0].id;
    } finally {
      await c.end();
    }
  }

  async remove(): Promise<void> {
    await this.stop().catch(() => undefined);
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

describe('sample application service', function () {
  this.timeout(600000);
  let stack: Stack;
  let appUrl: string;
  let primarySystemId: string;

  before(async () => {
    stack = await useStack();
    const { settings } = stack.ctx;
    appUrl = `http://${settings.host}:${settings.app.port}`;
    primarySystemId = await stack.primary.withClient('postgres', async (c) => (await c.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0].id);
  });

  it('runs with the stack: GET /health reads and writes through the name and names the primary cluster that answered', async () => {
    const { settings } = stack.ctx;
    const r = await call(appUrl, 'GET', '/health');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.ok, true);
    assert.deepEqual(r.body.database, { host: settings.host, port: settings.postgres.primaryPort, systemIdentifier: primarySystemId, inRecovery: false, serverVersion: r.body.database.serverVersion });
    assert.match(r.body.database.serverVersion, /^\d+/);
    assert.equal(r.body.resolvedFrom, settings.dns.appDbName);
    assert.ok(Math.abs(Date.parse(r.body.at) - Date.now()) < 60000, r.body.at);
    // The health write is a real committed row, written by the stack's copy of the service.
    const row = await stack.primary.withClient(settings.postgres.appDatabase, (c) => c.query<{ written_by: string }>('SELECT written_by FROM app_writes WHERE id = $1', [r.body.lastWriteId]));
    assert.deepEqual(row.rows, [{ written_by: `sample-app:${settings.app.port}` }]);
  });

  it('serves the recent orders, and /writes/last follows every committed write', async () => {
    const { settings } = stack.ctx;
    const orders = await call(appUrl, 'GET', '/orders/recent?limit=3');
    assert.equal(orders.status, 200, JSON.stringify(orders.body));
    const newest = await stack.primary.withClient(settings.postgres.appDatabase, (c) => c.query<{ id: string }>('SELECT id FROM orders ORDER BY placed_at DESC, id DESC LIMIT 3'));
    assert.deepEqual(orders.body.orders.map((o: { id: number }) => o.id), newest.rows.map((o) => Number(o.id)));
    assert.equal((await call(appUrl, 'GET', '/orders/recent?limit=500')).status, 400);

    const first = await call(appUrl, 'POST', '/writes');
    const second = await call(appUrl, 'POST', '/writes');
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.ok(second.body.id > first.body.id, `${second.body.id} after ${first.body.id}`);
    const last = await call(appUrl, 'GET', '/writes/last');
    assert.equal(last.status, 200);
    const committed = await stack.primary.withClient(settings.postgres.appDatabase, (c) => c.query<{ id: string }>('SELECT max(id) AS id FROM app_writes'));
    assert.equal(last.body.lastWriteId, Number(committed.rows[0].id));
    assert.ok(last.body.lastWriteId >= second.body.id);

    const wrong = await call(appUrl, 'GET', '/writes');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.error, '/writes takes POST, not GET.');
    assert.equal((await call(appUrl, 'GET', '/nothing-here')).status, 404);
  });

  describe('following the DNS name', () => {
    let other: ThrowawayCluster;
    let otherSystemId: string;

    before(async () => {
      other = new ThrowawayCluster(stack, path.join(stack.ctx.paths.restoresDir, `test-sample-app-${randomUUID().slice(0, 8)}`));
      await other.create();
      otherSystemId = await other.systemIdentifier();
      assert.notEqual(otherSystemId, primarySystemId);
    });

    after(async () => {
      await other?.remove();
    });

    it('answers from the cluster the name is repointed to without a restart, 503 while it is stopped, and recovers by itself', async () => {
      const { settings } = stack.ctx;
      const name = settings.dns.appDbName;
      const router = localDnsRouter(settings);
      const servicePid = livePid(path.join(stack.ctx.paths.run, 'sample-app.pid'), 'sample-app-service.js');
      assert.ok(servicePid, 'the stack runs the sample application');
      // Connections to the primary are in the service's pool now: the repoint must not reuse them.
      assert.equal((await call(appUrl, 'GET', '/health')).body.database.systemIdentifier, primarySystemId);
      const primaryLastWrite = (await call(appUrl, 'GET', '/writes/last')).body.lastWriteId as number;
      const before = await router.snapshot(name);
      try {
        await router.pointAt(name, { host: settings.host, port: other.port }, 5);
        const moved = await call(appUrl, 'GET', '/health');
        assert.equal(moved.status, 200, JSON.stringify(moved.body));
        assert.deepEqual([moved.body.database.systemIdentifier, moved.body.database.port], [otherSystemId, other.port]);

        const write = await call(appUrl, 'POST', '/writes');
        assert.equal(write.status, 201, JSON.stringify(write.body));
        assert.equal((await call(appUrl, 'GET', '/writes/last')).body.lastWriteId, write.body.id);
        const onOther = other.client(settings.postgres.appDatabase);
        await onOther.connect();
        const otherMax = await onOther.query<{ id: string }>('SELECT max(id) AS id FROM app_writes').finally(() => onOther.end());
        assert.equal(Number(otherMax.rows[0].id), write.body.id);

        await other.stop();
        const down = await call(appUrl, 'GET', '/health');
        assert.equal(down.status, 503, JSON.stringify(down.body));
        assert.equal(down.body.ok, false);
        assert.match(down.body.error, new RegExp(`^cannot connect to ${name.replace(/\./g, '\\.')} \\(${settings.host.replace(/\./g, '\\.')}:${other.port}\\): .*ECONNREFUSED.*\\.$`));
        assert.equal(down.body.database, undefined);

        await other.start();
        const back = await call(appUrl, 'GET', '/health');
        assert.equal(back.status, 200, JSON.stringify(back.body));
        assert.equal(back.body.database.systemIdentifier, otherSystemId);
      } finally {
        await router.restoreSnapshot(before);
      }
      const home = await call(appUrl, 'GET', '/health');
      assert.equal(home.status, 200, JSON.stringify(home.body));
      assert.equal(home.body.database.systemIdentifier, primarySystemId);
      // The primary's counter went on from where it was: the writes made elsewhere are not in it.
      assert.ok(home.body.lastWriteId > primaryLastWrite);
      assert.equal(livePid(path.join(stack.ctx.paths.run, 'sample-app.pid'), 'sample-app-service.js'), servicePid, 'the same process answered throughout');
    });
  });

  it('a copy started on its own port follows a name of its own: 503 while the name does not exist, 200 once it does', async () => {
    const { settings } = stack.ctx;
    const router = localDnsRouter(settings);
    const name = `test-app-${randomUUID().slice(0, 8)}.${settings.dns.zone}`;
    const service = await startSampleAppService({
      port: 0,
      host: settings.host,
      dbName: name,
      dnsServer: { host: settings.host, port: settings.dns.port },
      database: settings.postgres.appDatabase,
      user: settings.postgres.superuser,
      instance: 'test-standalone',
    });
    try {
      const missing = await call(service.url, 'GET', '/health');
      assert.equal(missing.status, 503);
      assert.equal(missing.body.error, `cannot resolve ${name} at the DNS server ${settings.host}:${settings.dns.port}: ENOTFOUND.`);
      await router.pointAt(name, { host: settings.host, port: settings.postgres.primaryPort }, 5);
      const found = await call(service.url, 'GET', '/health');
      assert.equal(found.status, 200, JSON.stringify(found.body));
      assert.equal(found.body.database.systemIdentifier, primarySystemId);
      assert.equal(found.body.resolvedFrom, name);
      const by = await stack.primary.withClient(settings.postgres.appDatabase, (c) => c.query<{ written_by: string }>('SELECT written_by FROM app_writes WHERE id = $1', [found.body.lastWriteId]));
      assert.equal(by.rows[0].written_by, 'test-standalone');
    } finally {
      await service.close();
      await router.removeName(name);
    }
  });

  it('its standalone entry refuses a bad option in one sentence with exit 2, before listening', async () => {
    const entry = path.resolve(__dirname, '../src/stack/sample-app-service.js');
    const cases: Array<[string[], string]> = [
      [['--port', '18999', '--db-name', 'db.app.lifeboat.test.'], 'sample app: the sample application needs --dns: see the usage at the top of sample-app-service.ts or the README.\n'],
      [['--port', 'eighty', '--db-name', 'x.', '--dns', '127.0.0.1:53'], 'sample app: --port eighty is not a whole number from 0 to 65535: give one.\n'],
      [['--port', '18999', '--db-name', 'x.', '--dns', 'nowhere'], 'sample app: --dns nowhere is not host:port: give the DNS server that serves the name, e.g. 127.0.0.1:10053.\n'],
      [['--port', '18999', '--colour', 'blue'], 'sample app: "--colour" is not an option of the sample application: it takes --port, --host, --db-name, --dns, --database, --user, --instance, --pool-size.\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await runNode(entry, args);
      assert.deepEqual([r.code, r.stderr, r.stdout], [2, stderr, ''], args.join(' '));
    }
  });
});
