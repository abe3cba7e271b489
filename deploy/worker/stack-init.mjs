// One-shot set-up of the compose stack: what `lifeboat stack up` does besides starting servers
// (src/stack/stack.ts), done here because compose starts the servers. The catalog schema and
// the search attributes are left to the worker, which ensures both at every start. Every step
// adopts what already exists, so it runs again on each `docker compose up`.
// Runs in the worker image, inside the shared network namespace, with the worker's environment.
import fs from 'node:fs';
import pg from 'pg';
import { localPgBackRest, writePgBackRestConfig } from '../../lib/src/stack/pgbackrest.js';
import { appZoneRecords, localDnsRouter } from '../../lib/src/stack/powerdns.js';
import { seedSampleApp } from '../../lib/src/stack/sample-app.js';
import { loadStackSettings, stackPaths } from '../../lib/src/stack/settings.js';
import { ensureBuckets, writeLocalSecrets } from '../../lib/src/stack/stack.js';

const settings = loadStackSettings(process.env);
const paths = stackPaths(settings);
const log = (line) => console.log(`stack-init: ${line}`);
// The two things of a StackContext the pgBackRest helpers use; the image has pgbackrest on PATH.
const ctx = { settings, paths, tools: { pgbackrest: 'pgbackrest' }, log };
// The Web UI's codec endpoint carries the codec server's token in its path (that UI has no login):
// the UI container gets this one file through the `ui-codec` volume, not the data volume.
const UI_CODEC_TOKEN = '/var/lib/lifeboat-ui/codec-token';

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

try {
  writeLocalSecrets(settings, paths);
  // Readable by the UI's own user (another uid); it is the value the UI hands every browser anyway.
  fs.writeFileSync(UI_CODEC_TOKEN, fs.readFileSync(paths.secret('codec-server-token'), 'utf8'));
  fs.chmodSync(UI_CODEC_TOKEN, 0o644);
  await step('buckets', () => ensureBuckets(settings));
  await step('sample application', () => withPg(settings.postgres.primaryPort, settings.postgres.appDatabase, (c) => seedSampleApp(c, settings.postgres.seedRows)));
  await step('pgBackRest stanza', async () => {
    await writePgBackRestConfig(ctx);
    await localPgBackRest(ctx).stanzaCreate();
  });
  await step('DNS zone', () => localDnsRouter(settings).ensureZone(appZoneRecords(settings), `ns1.${settings.dns.zone}`));
  log('the stack is ready');
} catch (err) {
  console.error(`stack-init: ${err.message}`);
  process.exit(1);
}
