// One-shot set-up of the compose stack: what `lifeboat stack up` does besides starting servers
// (src/stack/stack.ts), done here because compose starts the servers. The catalog schema and
// the search attributes are left to the worker, which ensures both at every start. Every step
// adopts what already exists, so it runs again on each `docker compose up`.
// Runs in the worker image, inside the shared network namespace, with the worker's environment.
import fs from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { ensureBucket } from '../../lib/src/engines/s3.js';
import { localPgBackRest, writePgBackRestConfig } from '../../lib/src/stack/pgbackrest.js';
import { localDnsRouter } from '../../lib/src/stack/powerdns.js';
import { seedSampleApp } from '../../lib/src/stack/sample-app.js';
import { loadStackSettings, stackPaths } from '../../lib/src/stack/settings.js';
import { s3ClientFor, SAMPLE_OBJECTS } from '../../lib/src/stack/stack.js';

const settings = loadStackSettings(process.env);
const paths = stackPaths(settings);
const log = (line) => console.log(`stack-init: ${line}`);
// The two things of a StackContext the pgBackRest helpers use; the image has pgbackrest on PATH.
const ctx = { settings, paths, tools: { pgbackrest: 'pgbackrest' }, log };

/** Healthchecks say a server listens, not that it is ready for everything: retry each step a while. */
async function step(what, fn, attempts = 60) {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      log(`${what}: done`);
      return;
    } catch (err) {
      if (attempt >= attempts) throw new Error(`${what} failed ${attempts} times, last: ${err.message}`);
      if (attempt === 1 || attempt % 10 === 0) log(`${what}: ${err.message} (retrying)`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

async function withPg(port, database, fn) {
  const client = new pg.Client({ host: settings.host, port, user: settings.postgres.superuser, database, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// Same files as writeLocalSecrets() in src/stack/stack.ts: lifeboat.config.yaml refers to them.
function localSecrets() {
  const secrets = { 'minio-access-key': settings.minio.accessKey, 'minio-secret-key': settings.minio.secretKey, 'dns-api-key': settings.dns.apiKey };
  fs.mkdirSync(path.dirname(paths.secret('dns-api-key')), { recursive: true, mode: 0o700 });
  for (const [name, value] of Object.entries(secrets)) fs.writeFileSync(paths.secret(name), value + '\n', { mode: 0o600 });
}

// Same buckets as ensureBuckets() in src/stack/stack.ts.
async function buckets() {
  for (const region of [settings.minio.primary, settings.minio.dr]) {
    const s3 = s3ClientFor(settings, region);
    try {
      await ensureBucket(s3, { name: region.backupBucket, versioning: true });
      await ensureBucket(s3, { name: region.filesBucket, versioning: true });
      await ensureBucket(s3, { name: region.evidenceBucket, versioning: true, objectLockDays: 30 });
      if (region.region !== 'primary') continue;
      for (const o of SAMPLE_OBJECTS) {
        const exists = await s3.send(new HeadObjectCommand({ Bucket: region.filesBucket, Key: o.key })).then(() => true, () => false);
        if (!exists) await s3.send(new PutObjectCommand({ Bucket: region.filesBucket, Key: o.key, Body: o.body, ContentType: o.contentType }));
      }
    } finally {
      s3.destroy();
    }
  }
}

// Same zone as PowerDnsServer.start() in src/stack/powerdns.ts.
async function dnsZone() {
  const zone = settings.dns.zone;
  await localDnsRouter(settings).ensureZone(
    [
      { name: `ns1.${zone}`, type: 'A', ttl: 300, records: [settings.host] },
      { name: settings.dns.appDbName, type: 'A', ttl: 30, records: [settings.host] },
      { name: `_postgresql._tcp.${settings.dns.appDbName}`, type: 'SRV', ttl: 30, records: [`0 0 ${settings.postgres.primaryPort} ${settings.dns.appDbName}`] },
    ],
    `ns1.${zone}`,
  );
}

try {
  localSecrets();
  await step('buckets', buckets);
  await step('sample application', () => withPg(settings.postgres.primaryPort, settings.postgres.appDatabase, (c) => seedSampleApp(c, settings.postgres.seedRows)));
  await step('pgBackRest stanza', async () => {
    await writePgBackRestConfig(ctx);
    await localPgBackRest(ctx).stanzaCreate();
  });
  await step('DNS zone', dnsZone);
  log('the stack is ready');
} catch (err) {
  console.error(`stack-init: ${err.message}`);
  process.exit(1);
}
