/**
 * pgBackRest's configuration for the local stack: repo1 in the primary region's MinIO,
 * repo2 in the DR region's, both over TLS verified against the local CA. Retention is left
 * to lifeboat's retention workflow, which knows which backup is the last verified one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PgBackRestCli } from '../engines/pgbackrest/cli';
import { StackContext } from './component';
import { ensureDir, run } from '../platform/processes';
import { RegionSettings } from './settings';

function repoSection(index: number, region: RegionSettings, ctx: StackContext): string[] {
  const { settings, paths } = ctx;
  const r = `repo${index}`;
  return [
    `${r}-type=s3`,
    `${r}-path=/pgbackrest`,
    `${r}-s3-bucket=${region.backupBucket}`,
    // pgBackRest matches the host it connects to against the certificate's DNS names only
    // (IP SANs do not count), so it reaches MinIO as `localhost`, which the certificate names.
    `${r}-s3-endpoint=localhost`,
    `${r}-storage-port=${region.port}`,
    `${r}-s3-region=${region.region}`,
    `${r}-s3-key=${settings.minio.accessKey}`,
    `${r}-s3-key-secret=${settings.minio.secretKey}`,
    `${r}-s3-uri-style=path`,
    `${r}-storage-verify-tls=y`,
    `${r}-storage-ca-file=${paths.caCert}`,
    // Expiry is lifeboat's decision (never the last verified backup); pgBackRest keeps everything.
    `${r}-retention-full-type=count`,
    `${r}-retention-full=9999999`,
    `${r}-bundle=y`,
  ];
}

export function pgbackrestConfigText(ctx: StackContext): string {
  const { settings, paths } = ctx;
  const dir = paths.pgbackrestDir;
  const global = [
    '[global]',
    ...repoSection(1, settings.minio.primary, ctx),
    ...repoSection(2, settings.minio.dr, ctx),
    `log-path=${path.join(dir, 'log')}`,
    `lock-path=${path.join(dir, 'lock')}`,
    `spool-path=${path.join(dir, 'spool')}`,
    'compress-type=zst',
    'start-fast=y',
    'process-max=2',
    'log-level-console=info',
    'log-level-file=detail',
    'archive-check=y',
  ];
  const stanza = [
    `[${settings.pgbackrest.stanza}]`,
    `pg1-path=${paths.pgData('primary')}`,
    `pg1-port=${settings.postgres.primaryPort}`,
    `pg1-socket-path=${paths.pgSocketDir}`,
    `pg1-user=${settings.postgres.superuser}`,
  ];
  return `# Written by \`lifeboat stack up\`; local-stack credentials only.\n${global.join('\n')}\n\n${stanza.join('\n')}\n`;
}

/** Writes the config (mode 600: it holds the local S3 keys) owned by the database's OS user. */
export async function writePgBackRestConfig(ctx: StackContext): Promise<void> {
  const { paths, settings } = ctx;
  const owner = settings.postgres.osUser;
  await ensureDir(paths.pgbackrestDir, { owner, mode: 0o750 });
  for (const sub of ['log', 'lock', 'spool']) await ensureDir(path.join(paths.pgbackrestDir, sub), { owner, mode: 0o750 });
  fs.writeFileSync(paths.pgbackrestConf, pgbackrestConfigText(ctx), { mode: 0o600 });
  fs.chmodSync(paths.pgbackrestConf, 0o600);
  await run('chown', [`${owner}:`, paths.pgbackrestConf]).catch(() => undefined);
}

export function localPgBackRest(ctx: StackContext): PgBackRestCli {
  return new PgBackRestCli({
    binary: ctx.tools.pgbackrest,
    configPath: ctx.paths.pgbackrestConf,
    stanza: ctx.settings.pgbackrest.stanza,
    osUser: ctx.settings.postgres.osUser,
  });
}
