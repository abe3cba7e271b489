/**
 * `lifeboat stack` as a person meets it: a taken port is refused in one sentence with nothing
 * started, a missing tool is named, and the stack survives `down` then `up` with its data.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createStack, s3ClientFor, Stack, stackDown, stackStatus, stackUp } from '../src/stack/stack';
import { ENV, loadStackSettings } from '../src/stack/settings';
import { resolveTools } from '../src/stack/tools';
import { useStack } from './helpers/stack';
import { useTemporal } from './helpers/temporal';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('stack lifecycle', function () {
  this.timeout(600000);

  it('refuses a port already in use, naming it and the variable that moves it, and starts nothing', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ports-'));
    fs.rmSync(dataDir, { recursive: true });
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      // Every port free except the DNS API's, so the refusal is about exactly that one.
      const env: NodeJS.ProcessEnv = { [ENV.dataDir]: dataDir, [ENV.dnsApiPort]: String(taken) };
      for (const name of [ENV.temporalPort, ENV.temporalUiPort, ENV.codecServerPort, ENV.pgPrimaryPort, ENV.pgCatalogPort, ENV.dnsPort, ENV.appPort] as const) env[name] = String(await freePort());
      // MinIO uses port and port+1 (console): pick a free pair.
      for (const name of [ENV.minioPrimaryPort, ENV.minioDrPort] as const) {
        let p = await freePort();
        while (!(await isFree(p + 1))) p = await freePort();
        env[name] = String(p);
      }
      const stack = createStack(loadStackSettings(env));
      await assert.rejects(stackUp(stack), {
        message: `port ${taken} (PowerDNS HTTP API) is already in use by another process: stop that process or set ${ENV.dnsApiPort} to a free port.`,
      });
      assert.equal(fs.existsSync(dataDir), false, 'a refused `up` must not create its data directory');
      assert.ok((await stackStatus(stack)).every((s) => !s.running));
    } finally {
      blocker.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a port reserved for services this machine already runs (5432)', async () => {
    const stack = createStack(loadStackSettings({ [ENV.dataDir]: path.join(os.tmpdir(), `lifeboat-reserved-${randomUUID()}`), [ENV.pgCatalogPort]: '5432' }));
    await assert.rejects(stackUp(stack), /port 5432 \(PostgreSQL catalog\) belongs to a service this machine already runs: choose another with LIFEBOAT_PG_CATALOG_PORT\./);
  });

  it('names a missing tool and how to get it', () => {
    const saved = process.env.LIFEBOAT_TEMPORAL_BIN;
    process.env.LIFEBOAT_TEMPORAL_BIN = '/nonexistent/temporal';
    try {
      assert.throws(() => resolveTools(), { message: 'LIFEBOAT_TEMPORAL_BIN=/nonexistent/temporal does not exist: point it at a temporal binary or unset it.' });
    } finally {
      if (saved === undefined) delete process.env.LIFEBOAT_TEMPORAL_BIN;
      else process.env.LIFEBOAT_TEMPORAL_BIN = saved;
    }
  });

  it('refuses a port setting that is not a port', () => {
    assert.throws(() => loadStackSettings({ [ENV.temporalPort]: 'seven' }), { message: 'LIFEBOAT_TEMPORAL_PORT=seven is not a positive whole number: set it to a number (default 7233) or unset it.' });
  });

  describe('down then up', () => {
    let stack: Stack;
    before(async () => {
      stack = await useStack();
    });

    it('`up` on a healthy stack starts nothing and changes nothing', async () => {
      const result = await stackUp(stack);
      assert.deepEqual(result.started, []);
      assert.equal(result.alreadyRunning.length, stack.components.length);
    });

    it('keeps the data of every component across `down` and `up`', async () => {
      const { settings } = stack.ctx;
      const marker = `marker-${randomUUID()}`;
      await stack.primary.withClient(settings.postgres.appDatabase, async (c) => {
        await c.query('CREATE TABLE IF NOT EXISTS lifeboat_restart_markers (marker text PRIMARY KEY)');
        await c.query('INSERT INTO lifeboat_restart_markers VALUES ($1)', [marker]);
      });
      // A workflow on a task queue no worker polls stays running: durable state to look for after `up`.
      const parkedWorkflowId = `test-restart-${marker}`;
      await (await useTemporal()).client.workflow.start('preflight', { taskQueue: `parked-${marker}`, workflowId: parkedWorkflowId, args: [{}] });
      const s3 = s3ClientFor(settings, settings.minio.dr);
      await s3.send(new PutObjectCommand({ Bucket: settings.minio.dr.backupBucket, Key: `tests/restart/${marker}`, Body: marker }));
      s3.destroy();

      const stopped = await stackDown(stack);
      // Besides the components: a worker or restored instances other suites left running, if any.
      assert.deepEqual([...stopped].filter((n) => n !== 'worker' && !n.startsWith('restored instance ')).sort(), stack.components.map((c) => c.name).sort());
      const down = await stackStatus(stack);
      assert.ok(down.every((s) => !s.running && !s.healthy), JSON.stringify(down));

      const up = await stackUp(stack);
      assert.deepEqual([...up.started].sort(), stack.components.map((c) => c.name).sort());
      const status = await stackStatus(stack);
      assert.ok(status.every((s) => s.healthy), JSON.stringify(status));

      await stack.primary.withClient(settings.postgres.appDatabase, async (c) => {
        const rows = await c.query('SELECT marker FROM lifeboat_restart_markers WHERE marker = $1', [marker]);
        assert.equal(rows.rowCount, 1);
        await c.query('DELETE FROM lifeboat_restart_markers WHERE marker = $1', [marker]);
      });
      const s3again = s3ClientFor(settings, settings.minio.dr);
      const got = await s3again.send(new GetObjectCommand({ Bucket: settings.minio.dr.backupBucket, Key: `tests/restart/${marker}` }));
      assert.equal(await got.Body!.transformToString(), marker);
      s3again.destroy();
      // Temporal kept its state: the workflow started before `down` is still there, still running.
      const env = await useTemporal();
      const description = await env.client.workflow.getHandle(parkedWorkflowId).describe();
      assert.equal(description.status.name, 'RUNNING');
      await env.client.workflow.getHandle(parkedWorkflowId).terminate('restart test done');
    });
  });
});

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
