/**
 * Secrets at run time (src/config/secrets.ts and its users), no server needed: secret files open
 * to others are refused, rotation is picked up at the next resolve, resolved values never leave
 * an activity or a notification, a webhook URL is checked when read, child processes see only
 * an allowlisted environment, http endpoints need allowInsecure, and the Postgres TLS policy.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { classifyFailures } from '../src/activities';
import { ConfigError, parseConfig, redactDeep, redactSecrets, resolveSecret, resolveSecretUrl } from '../src/config';
import { LifeboatError } from '../src/domain/errors';
import { LogAndWebhookNotifier } from '../src/engines/notifier';
import { libpqTlsEnv, pgSslOption } from '../src/engines/pg-tls';
import { childEnvironment, run, startStreaming } from '../src/platform/processes';
import { EXAMPLE_CONFIG } from './helpers/scratch';

describe('secrets at run time', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-secrets-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const secretFile = (name: string, value: string, mode = 0o600) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, value + '\n', { mode });
    fs.chmodSync(file, mode);
    return `file:${file}` as const;
  };

  describe('secret files', () => {
    it('refuses a file readable by group or others, in one sentence that says to chmod 600', () => {
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        const ref = secretFile(`open-${mode.toString(8)}`, 'a-password-1234', mode);
        assert.throws(
          () => resolveSecret(ref),
          (err: LifeboatError) => {
            assert.equal(err.code, 'SECRET_EXPOSED');
            assert.match(err.message, new RegExp(`^The secret file \\S+ \\(${ref}\\) is open to other users \\(mode ${mode.toString(8)}\\), so lifeboat refuses it: run chmod 600 \\S+\\.$`));
            assert.ok(!err.message.includes('a-password-1234'), 'the value is never in the message');
            return true;
          },
        );
      }
      assert.equal(resolveSecret(secretFile('owner-only', 'a-password-1234', 0o600)), 'a-password-1234');
      assert.equal(resolveSecret(secretFile('read-only', 'a-password-1234', 0o400)), 'a-password-1234');
    });

    it('picks up a rotated file or variable at the next resolve, without a restart', () => {
      const ref = secretFile('rotating', 'first-secret-value');
      assert.equal(resolveSecret(ref), 'first-secret-value');
      fs.writeFileSync(ref.slice('file:'.length), 'second-secret-value\n');
      assert.equal(resolveSecret(ref), 'second-secret-value');
      const env: NodeJS.ProcessEnv = { LB_ROTATING: 'env-value-one' };
      assert.equal(resolveSecret('env:LB_ROTATING', env), 'env-value-one');
      env.LB_ROTATING = 'env-value-two';
      assert.equal(resolveSecret('env:LB_ROTATING', env), 'env-value-two');
      // Both generations stay secret: an old value in a late error is still redacted.
      assert.equal(redactSecrets('old first-secret-value, new second-secret-value'), `old [secret from ${ref}], new [secret from ${ref}]`);
    });
  });

  describe('redaction', () => {
    it('replaces resolved values, in their URL-encoded and JSON forms too, with the name of their reference', () => {
      const ref = secretFile('token', 'tok/en with "quotes"');
      resolveSecret(ref);
      const label = `[secret from ${ref}]`;
      assert.equal(redactSecrets('said tok/en with "quotes" here'), `said ${label} here`);
      assert.equal(redactSecrets(`q=${encodeURIComponent('tok/en with "quotes"')}`), `q=${label}`);
      assert.equal(redactSecrets(JSON.stringify({ v: 'tok/en with "quotes"' })), `{"v":"${label}"}`);
      assert.deepEqual(redactDeep({ a: ['x tok/en with "quotes"'], n: 3, d: undefined }), { a: [`x ${label}`], n: 3, d: undefined });
      assert.equal(redactSecrets('nothing secret'), 'nothing secret');
    });

    it('scrubs what leaves an activity: the failure message, its stack and cause, and the result', async () => {
      const ref = secretFile('db-password', 'hunter2-database-password');
      const activities = classifyFailures({
        async fails() {
          const password = resolveSecret(ref);
          throw new LifeboatError(`could not log in with ${password}: check it`, 'LOGIN_FAILED');
        },
        async failsPlainly() {
          throw new Error('connect failed', { cause: new Error(`bad password ${resolveSecret(ref)}`) });
        },
        async returns() {
          return { detail: `used ${resolveSecret(ref)}` };
        },
      });
      await assert.rejects(activities.fails(), (err: ApplicationFailure) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, 'LOGIN_FAILED');
        assert.equal(err.message, `could not log in with [secret from ${ref}]: check it`);
        assert.ok(!JSON.stringify({ m: err.message, s: err.stack, c: (err.cause as Error).stack }).includes('hunter2'));
        return true;
      });
      await assert.rejects(activities.failsPlainly(), (err: Error) => {
        assert.equal((err.cause as Error).message, `bad password [secret from ${ref}]`);
        return true;
      });
      assert.deepEqual(await activities.returns(), { detail: `used [secret from ${ref}]` });
    });
  });

  describe('webhook URLs', () => {
    const check = (ref: `file:${string}`, allowInsecure = false) => resolveSecretUrl(ref, 'webhook URL', { allowInsecure, allowInsecureKey: 'notifications.webhook.allowInsecure' });

    it('accepts https, refuses http unless allowed, and names the reference, never the value', () => {
      assert.equal(check(secretFile('ok', 'https://hooks.example.com/T000/B000/XXXXsecrettoken')).hostname, 'hooks.example.com');
      const http = secretFile('http', 'http://hooks.example.com/T000/B000/XXXXsecrettoken');
      assert.throws(() => check(http), { message: `The webhook URL read from ${http} uses plain http: make it https, or set notifications.webhook.allowInsecure: true to allow this endpoint unencrypted.` });
      assert.equal(check(http, true).protocol, 'http:');
      const malformed = secretFile('malformed', 'hooks.example.com/T000/B000/XXXXsecrettoken');
      assert.throws(() => check(malformed), { message: `The webhook URL read from ${malformed} is not a valid URL: fix the secret (its value is not shown).` });
      const ftp = secretFile('ftp', 'ftp://hooks.example.com/XXXXsecrettoken');
      assert.throws(() => check(ftp), { message: `The webhook URL read from ${ftp} is not an http(s) URL: fix the secret (its value is not shown).` });
    });

    it('a malformed URL with its token reaches neither the log nor the outcome a workflow records', async () => {
      const ref = secretFile('hook', 'htps//hooks.example.com/services/T0/B0/malformedtoken123');
      const log: string[] = [];
      const notifier = new LogAndWebhookNotifier({ webhookUrl: () => check(ref), webhookReference: ref, log: (l) => log.push(l), delivery: { attempts: 2, backoffMs: 1, timeoutMs: 500 } });
      const outcome = await notifier.notify({ severity: 'critical', title: 'Backup failed: app', text: 'details' });
      assert.equal(outcome.delivered, false);
      assert.match(outcome.detail, new RegExp(`read from ${ref.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a valid URL`));
      for (const text of [outcome.detail, ...log]) assert.ok(!text.includes('malformedtoken123'), text);
    });

    it('a refused delivery names the reference, and the URL never shows in why', async () => {
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      await new Promise((r) => server.close(r));
      const ref = secretFile('closed', `http://127.0.0.1:${port}/hook/secret-path-token-42`);
      const log: string[] = [];
      const outcome = await new LogAndWebhookNotifier({
        webhookUrl: () => check(ref, true),
        webhookReference: ref,
        log: (l) => log.push(l),
        delivery: { attempts: 1, backoffMs: 1, timeoutMs: 500 },
      }).notify({ severity: 'info', title: 't', text: 'x' });
      assert.equal(outcome.delivered, false);
      assert.match(outcome.detail, new RegExp(`check the webhook URL \\(file:`));
      for (const text of [outcome.detail, ...log]) assert.ok(!text.includes('secret-path-token-42'), text);
    });

    it('delivers to an allowed http endpoint read from a rotated secret', async () => {
      const paths: string[] = [];
      const server = http.createServer((req, res) => {
        paths.push(req.url ?? '');
        req.resume();
        res.end('ok');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const ref = secretFile('rotated-hook', `http://127.0.0.1:${port}/first-token-abc`);
        const notifier = new LogAndWebhookNotifier({ webhookUrl: () => check(ref, true), webhookReference: ref, log: () => undefined });
        assert.equal((await notifier.notify({ severity: 'info', title: 'one', text: 'x' })).delivered, true);
        fs.writeFileSync(ref.slice('file:'.length), `http://127.0.0.1:${port}/second-token-def\n`);
        assert.equal((await notifier.notify({ severity: 'info', title: 'two', text: 'x' })).delivered, true);
        assert.deepEqual(paths, ['/first-token-abc', '/second-token-def']);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });
  });

  describe('child process environment', () => {
    it('keeps only the allowlist of the worker\'s environment, plus what the call sets', () => {
      const env = childEnvironment(
        { PGPASSWORD: 'set-for-this-call', PGSSLMODE: 'verify-full' },
        { PATH: '/usr/bin', HOME: '/home/x', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', LIFEBOAT_WEBHOOK_URL: 'https://secret', AWS_SECRET_ACCESS_KEY: 'k', PGPASSWORD: 'workers-own', PGBACKREST_REPO1_S3_KEY_SECRET: 's' },
      );
      assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/x', LANG: 'C.UTF-8', LC_ALL: 'C', TZ: 'UTC', PGPASSWORD: 'set-for-this-call', PGSSLMODE: 'verify-full' });
    });

    it('run and startStreaming give children no secret of the worker', async () => {
      process.env.LB_TEST_WORKER_SECRET = 'worker-only-secret';
      process.env.PGBACKREST_TEST_SETTING = 'not-for-children';
      try {
        const printEnv = `process.stdout.write(JSON.stringify(process.env))`;
        const seen = JSON.parse((await run(process.execPath, ['-e', printEnv], { env: { PGPORT: '5999' } })).stdout) as Record<string, string>;
        assert.equal(seen.LB_TEST_WORKER_SECRET, undefined);
        assert.equal(seen.PGBACKREST_TEST_SETTING, undefined);
        assert.equal(seen.PGPORT, '5999');
        assert.equal(seen.PATH, process.env.PATH);
        const streaming = startStreaming(process.execPath, ['-e', printEnv], { stdin: 'ignore', env: { PGHOST: 'h' } });
        let out = '';
        streaming.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        assert.equal((await streaming.exited).code, 0);
        const streamed = JSON.parse(out) as Record<string, string>;
        assert.equal(streamed.LB_TEST_WORKER_SECRET, undefined);
        assert.equal(streamed.PGHOST, 'h');
      } finally {
        delete process.env.LB_TEST_WORKER_SECRET;
        delete process.env.PGBACKREST_TEST_SETTING;
      }
    });
  });

  describe('endpoints need https unless allowInsecure', () => {
    const base = fs.readFileSync(EXAMPLE_CONFIG, 'utf8');
    const problems = (text: string) => {
      try {
        parseConfig(text, 'test.yaml', { dataDir: '/srv/lb', env: {} });
        return [];
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
    };

    it('the stack config marks only the PowerDNS API insecure, and passes', () => {
      assert.deepEqual(problems(base), []);
    });

    it('refuses an http PowerDNS API or S3 endpoint without allowInsecure, in one sentence', () => {
      const dns = base.replace(/\n\s+allowInsecure: true/, '');
      assert.deepEqual(problems(dns), ['trafficRouters[0].apiUrl: is plain http: use https, or set allowInsecure: true on this router to send its API key unencrypted']);
      const s3 = base.replace('endpoint: https://127.0.0.1:${LIFEBOAT_MINIO_PRIMARY_PORT:-9100}', 'endpoint: http://127.0.0.1:9100');
      assert.deepEqual(problems(s3), ['objectStores[0].endpoint: is plain http: use https, or set allowInsecure: true on this object store to accept an unencrypted endpoint']);
      assert.deepEqual(problems(s3.replace('endpoint: http://127.0.0.1:9100', 'endpoint: http://127.0.0.1:9100\n    allowInsecure: true')), []);
    });
  });

  describe('Postgres TLS policy', () => {
    it('maps sslmode to node-postgres options and libpq variables', () => {
      assert.equal(pgSslOption(undefined, 'db'), false);
      assert.equal(pgSslOption({ sslMode: 'disable' }, 'db'), false);
      assert.deepEqual(pgSslOption({ sslMode: 'require' }, 'db'), { rejectUnauthorized: false });
      const ca = secretFile('ca.crt', '-----BEGIN CERTIFICATE-----').slice('file:'.length);
      const full = pgSslOption({ sslMode: 'verify-full', sslRootCert: ca }, 'db.example.com');
      assert.ok(full);
      assert.equal(full.rejectUnauthorized, true);
      assert.equal(full.servername, 'db.example.com');
      assert.match(String(full.ca), /BEGIN CERTIFICATE/);
      // The CA is read when the connection copies the options: a renewed file is used at once.
      fs.writeFileSync(ca, 'renewed');
      assert.equal({ ...full }.ca, 'renewed');
      const byIp = pgSslOption({ sslMode: 'verify-full' }, '127.0.0.1');
      assert.ok(byIp && byIp.servername === undefined && typeof byIp.checkServerIdentity === 'function');
      const anyName = pgSslOption({ sslMode: 'verify-ca', sslRootCert: ca }, 'db');
      assert.ok(anyName && anyName.rejectUnauthorized === true && anyName.checkServerIdentity!('x', {} as never) === undefined);
      assert.deepEqual(libpqTlsEnv({ sslMode: 'verify-full', sslRootCert: '/ca.crt' }), { PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/ca.crt' });
      assert.deepEqual(libpqTlsEnv({ sslMode: 'disable', sslRootCert: '/ca.crt' }), { PGSSLMODE: 'disable' });
      assert.deepEqual(libpqTlsEnv(undefined), {});
    });

    it('defaults to verify-full, and refuses the plain-text fallbacks', () => {
      const base = fs.readFileSync(EXAMPLE_CONFIG, 'utf8').replace(/\n\s+sslMode: verify-full[^\n]*/g, '');
      const config = parseConfig(base, 'test.yaml', { dataDir: '/srv/lb', env: {} });
      assert.equal(config.catalog.sslMode, 'verify-full');
      assert.equal(config.catalog.sslRootCert, '/srv/lb/tls/ca.crt');
      assert.equal(config.targets.databases[0].sslMode, 'verify-full');
      assert.throws(() => parseConfig(base.replace('  sslRootCert: "{dataDir}/tls/ca.crt"', '  sslMode: prefer\n  sslRootCert: "{dataDir}/tls/ca.crt"'), 'test.yaml', { dataDir: '/srv/lb', env: {} }), /catalog\.sslMode: must be one of/);
    });
  });
});
