/**
 * The worker's ports, built once from the config file: real clients for every system
 * activities talk to. Built lazily and cached, so a worker that never touches RDS never needs
 * AWS credentials. Tests pass their own ports to createActivities.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Catalog } from '../catalog/catalog';
import path from 'node:path';
import { findDatabaseTarget, LifeboatConfig, PgBackRestTarget, resolveSecret, resolveSecretUrl } from '../config';
import { LifeboatError } from '../domain/errors';
import { DatabaseEngine, TrafficRouter } from '../domain/ports';
import { LogAndWebhookNotifier, Notifier } from '../engines/notifier';
import { NotificationChannels } from '../engines/notify/channels';
import { RoutingNotifier, workflowLink } from '../engines/notify/routing';
import { raiseAlert } from './alerts';
import { PgBackRestEngine } from '../engines/pgbackrest';
import { PgTls, pgSslOption } from '../engines/pg-tls';
import { PgBackRestCli } from '../engines/pgbackrest/cli';
import { RdsEngine } from '../engines/rds';
import { PowerDnsRouter } from '../engines/powerdns';
import { Route53Router } from '../engines/route53';
import { createS3Client } from '../engines/s3';
import { TemporalRuns } from '../engines/temporal-runs';
import { defaultDbOsUser, postgresBinDir } from '../platform/host';

/** The TLS settings of a catalog or database target, for its connections. */
export function pgTlsOf(settings: { sslMode: PgTls['sslMode']; sslRootCert?: string }): PgTls {
  return { sslMode: settings.sslMode, ...(settings.sslRootCert ? { sslRootCert: settings.sslRootCert } : {}) };
}

/** The Temporal Web UI alerts link to: notifications.webUiUrl, else $LIFEBOAT_UI_URL, else port 8233 on the frontend's host. */
export function webUiBase(config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): string {
  const configured = config.notifications?.webUiUrl ?? env.LIFEBOAT_UI_URL;
  if (configured) return configured.replace(/\/+$/, '');
  const host = config.temporal.address.replace(/:\d+$/, '');
  return `http://${host}:8233`;
}

export interface Ports {
  config: LifeboatConfig;
  catalog: Catalog;
  notifier: Notifier;
  /** The configured notification channels (`notifications.channels`), for the alertEscalation workflow's deliveries. */
  alertChannels: NotificationChannels;
  objectStore(name: string): S3Client;
  router(name: string): TrafficRouter;
  pgbackrest(target: PgBackRestTarget): PgBackRestCli;
  /** The engine that backs up and restores a database target. */
  database(targetName: string): DatabaseEngine;
  /** What Temporal says of a workflow run (the drill sweeper asks about owners); connects on first use. */
  workflowRuns: Pick<TemporalRuns, 'runState'>;
  close(): Promise<void>;
}

function memo<T>(make: (name: string) => T): (name: string) => T {
  const cache = new Map<string, T>();
  return (name) => {
    let value = cache.get(name);
    if (value === undefined) {
      value = make(name);
      cache.set(name, value);
    }
    return value;
  };
}

export function createPorts(config: LifeboatConfig, options: { pgbackrestBinary?: string; pgBinDir?: string; log?: (line: string) => void } = {}): Ports {
  const catalogPassword = config.catalog.password;
  const catalog = new Catalog({
    host: config.catalog.host,
    port: config.catalog.port,
    database: config.catalog.database,
    user: config.catalog.user,
    password: catalogPassword ? () => resolveSecret(catalogPassword) : undefined,
    ssl: pgSslOption(pgTlsOf(config.catalog), config.catalog.host),
  });
  const webhook = config.notifications?.webhook;
  const logAndWebhook = new LogAndWebhookNotifier({
    // Resolved and checked at each notification: a rotated URL is used at once, a bad one is named by its reference.
    webhookUrl: webhook ? () => resolveSecretUrl(webhook.url, 'webhook URL', { allowInsecure: webhook.allowInsecure, allowInsecureKey: 'notifications.webhook.allowInsecure' }) : undefined,
    webhookReference: webhook?.url,
    log: options.log,
  });
  const alertChannels = new NotificationChannels(config.notifications?.channels ?? []);
  const routes: Partial<Record<'info' | 'warning' | 'critical', string[]>> = config.notifications?.routes ?? {};
  const escalates = (routes.critical?.length ?? 0) > 0 || (config.notifications?.escalation?.steps.length ?? 0) > 0;
  const uiBase = webUiBase(config);
  const notifier: Notifier = config.notifications?.channels?.length
    ? new RoutingNotifier({
        base: logAndWebhook,
        channels: alertChannels,
        routes,
        escalates,
        raise: (alert, occurrence) => raiseAlert(config, alert, occurrence),
        link: (workflowId) => workflowLink(uiBase, config.temporal.namespace, workflowId),
        log: options.log,
      })
    : logAndWebhook;
  const stores = new Map<string, S3Client>();

  const objectStore = (name: string): S3Client => {
    const existing = stores.get(name);
    if (existing) return existing;
    const store = config.objectStores.find((s) => s.name === name);
    if (!store) throw new LifeboatError(`object store "${name}" is not in the config: declare it under objectStores.`, 'UNKNOWN_STORE');
    const credentials = store.credentials;
    const client = createS3Client({
      region: store.region,
      endpoint: store.endpoint,
      caFile: store.caFile,
      readCredentials: store.credentials ? () => ({ accessKeyId: resolveSecret(credentials!.accessKeyId, process.env, { redact: false }), secretAccessKey: resolveSecret(credentials!.secretAccessKey) }) : undefined,
    });
    stores.set(name, client);
    return client;
  };

  const router = memo((name: string): TrafficRouter => {
    const r = config.trafficRouters.find((x) => x.name === name);
    if (!r) throw new LifeboatError(`traffic router "${name}" is not in the config: declare it under trafficRouters.`, 'UNKNOWN_ROUTER');
    if (r.kind === 'powerdns') {
      // A repair command printed for a person names where the key is, never the key.
      const apiKeyReference = r.apiKey.startsWith('env:') ? `$${r.apiKey.slice('env:'.length)}` : `$(cat '${r.apiKey.slice('file:'.length)}')`;
      return new PowerDnsRouter({ apiUrl: r.apiUrl, apiKey: () => resolveSecret(r.apiKey), zone: r.zone, dnsServer: r.dnsServer, serverId: r.serverId, apiKeyReference });
    }
    return new Route53Router({ hostedZoneId: r.hostedZoneId, region: r.region });
  });

  const pgbackrest = (target: PgBackRestTarget) =>
    new PgBackRestCli({
      binary: options.pgbackrestBinary ?? 'pgbackrest',
      configPath: target.configPath,
      stanza: target.stanza,
      osUser: target.osUser ?? defaultDbOsUser(),
    });

  const database = memo((targetName: string): DatabaseEngine => {
    const target = findDatabaseTarget(config, targetName);
    if (target.engine === 'rds') {
      return new RdsEngine({
        instanceId: target.instanceId,
        region: target.region,
        drRegion: target.drRegion,
        drKmsKeyId: target.drKmsKeyId,
        ...(target.primaryKmsKeyId ? { primaryKmsKeyId: target.primaryKmsKeyId } : {}),
        // Long RDS waits (snapshots, copies, fences) need no onPoll: the activities that ask run them inside withHeartbeats.
        restore: target.restore,
      });
    }
    const osUser = target.osUser ?? defaultDbOsUser();
    const targetPassword = target.password;
    return new PgBackRestEngine({
      cli: pgbackrest(target),
      source: {
        instanceId: target.name,
        host: target.host,
        port: target.port,
        database: target.database,
        user: target.user,
        password: targetPassword ? () => resolveSecret(targetPassword) : undefined,
        tls: pgTlsOf(target),
        dataDir: target.pgDataDir,
        socketDir: target.socketDir,
      },
      restoresDir: target.restoresDir,
      // Detached backups keep their pid and log files next to the restores, in lifeboat's own space.
      runDir: path.join(path.dirname(target.restoresDir), 'run'),
      osUser,
      pgBin: options.pgBinDir ?? postgresBinDir(),
      host: target.host,
      portRange: target.restorePorts,
      drillPortRange: target.drillPorts,
      primaryRepo: target.primaryRepo,
      drRepo: target.drRepo,
      drCopy: target.drCopy,
    });
  });

  const workflowRuns = new TemporalRuns(config.temporal);

  return {
    config,
    catalog,
    workflowRuns,
    database,
    notifier,
    alertChannels,
    objectStore,
    router,
    pgbackrest,
    async close() {
      for (const client of stores.values()) client.destroy();
      await workflowRuns.close();
      await catalog.close();
    },
  };
}
