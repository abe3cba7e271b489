/**
 * TLS to the stack's Postgres servers, for real: the catalog pool and a source connection built
 * from the config (verify-full with the stack's CA) are encrypted, as is psql given the same
 * policy; verify-full refuses a certificate from another CA and a server reached under a name
 * its certificate does not carry (through a loopback forwarder on 127.0.0.2).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createPorts, pgTlsOf, Ports } from '../src/activities/ports';
import { findDatabaseTarget, loadConfig } from '../src/config';
import { newPgClient } from '../src/engines/pg-client';
import { libpqTlsEnv, PgTls } from '../src/engines/pg-tls';
import { run } from '../src/platform/processes';
import { Stack } from '../src/stack/stack';
import { useStack } from './helpers/stack';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');
const SSL_IN_USE = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';

describe('TLS to Postgres (stack)', function () {
  this.timeout(300000);
  const config = loadConfig(CONFIG_FILE);
  const target = findDatabaseTarget(config, 'app');
  if (target.engine !== 'pgbackrest') throw new Error('the stack config\'s app target is a pgBackRest target');
  let stack: Stack;
  let ports: Ports;
  let scratch: string;

  before(async () => {
    stack = await useStack();
    ports = createPorts(config);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-pg-tls-'));
  });
  after(async () => {
    await ports?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  const sslOf = async (host: string, port: number, tls: PgTls) => {
    const client = newPgClient({ host, port, user: target.user, database: target.database, tls, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return (await client.query<{ ssl: boolean }>(SSL_IN_USE)).rows[0].ssl;
    } finally {
      await client.end();
    }
  };

  it('the config asks for verify-full with the stack CA, and the catalog and source connections are encrypted', async () => {
    assert.equal(config.catalog.sslMode, 'verify-full');
    assert.equal(config.catalog.sslRootCert, stack.ctx.paths.caCert);
    const catalogRow = await ports.catalog.withClient(async (c) => (await c.query<{ ssl: boolean }>(SSL_IN_USE)).rows[0]);
    assert.equal(catalogRow.ssl, true);
    assert.equal(await sslOf(target.host, target.port, pgTlsOf(target)), true);
    // disable really is plain text: the check above is not vacuous.
    assert.equal(await sslOf(target.host, target.port, { sslMode: 'disable' }), false);
  });

  it('psql given the same policy (PGSSLMODE, PGSSLROOTCERT) is encrypted and verified', async () => {
    const psql = stack.ctx.tools.pgBin('psql');
    const out = await run(psql, ['-h', target.host, '-p', String(target.port), '-U', target.user, '-d', target.database, '-At', '-c', SSL_IN_USE], { env: libpqTlsEnv(pgTlsOf(target)) });
    assert.equal(out.stdout.trim(), 't');
    const otherCa = await makeOtherCa(stack, scratch);
    const refused = await run(psql, ['-h', target.host, '-p', String(target.port), '-U', target.user, '-d', target.database, '-At', '-c', 'SELECT 1'], {
      env: libpqTlsEnv({ sslMode: 'verify-full', sslRootCert: otherCa }),
      check: false,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /certificate verify failed/);
  });

  it('verify-full refuses a certificate from another CA', async () => {
    const otherCa = await makeOtherCa(stack, scratch);
    await assert.rejects(sslOf(target.host, target.port, { sslMode: 'verify-full', sslRootCert: otherCa }), /self[- ]signed certificate|unable to verify|unable to get local issuer/i);
  });

  it('verify-full refuses a host name the certificate does not carry; require (no check) gets through', async () => {
    // 127.0.0.2 is loopback too, but not in the certificate (127.0.0.1 and localhost are).
    const forwarder = net.createServer((socket) => {
      const upstream = net.connect({ host: target.host, port: target.port });
      socket.pipe(upstream).pipe(socket);
      const end = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', end);
      upstream.on('error', end);
    });
    await new Promise<void>((resolve, reject) => forwarder.once('error', reject).listen(0, '127.0.0.2', resolve));
    const port = (forwarder.address() as net.AddressInfo).port;
    try {
      await assert.rejects(sslOf('127.0.0.2', port, pgTlsOf(target)), /IP: 127\.0\.0\.2 is not in the cert's list/);
      assert.equal(await sslOf('127.0.0.2', port, { sslMode: 'verify-ca', sslRootCert: target.sslRootCert }), true);
      assert.equal(await sslOf('127.0.0.2', port, { sslMode: 'require' }), true);
    } finally {
      forwarder.close();
    }
  });
});

/** A second, unrelated CA certificate (made once per run). */
async function makeOtherCa(stack: Stack, dir: string): Promise<string> {
  const cert = path.join(dir, 'other-ca.crt');
  if (fs.existsSync(cert)) return cert;
  await run(stack.ctx.tools.openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=not the lifeboat CA', '-keyout', path.join(dir, 'other-ca.key'), '-out', cert]);
  return cert;
}
