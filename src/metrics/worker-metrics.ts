/**
 * What a worker or an agent serves on `metrics.port`: a central worker serves lifeboat's metrics
 * (catalog, pending approvals, the recovery point of targets without an agent) and the SDK's; an
 * agent the recovery point of its own targets (its pgBackRest reads them) and the SDK's. The
 * catalog's figures come from the central workers alone: every one of them reports the same.
 */
import net from 'node:net';
import type { Client } from '@temporalio/client';
import type { Catalog } from '../catalog/catalog';
import { LifeboatConfig } from '../config';
import type { DatabaseEngine } from '../domain/ports';
import { approvalFamilies, listPendingApprovals } from './approval-metrics';
import { collectCatalogDurations, collectCatalogMetrics } from './catalog-metrics';
import { collectRecoveryPointMetrics, recoveryPointTargets } from './recovery-point-metrics';
import { MetricSource, MetricsServer, startMetricsServer } from './server';
import { collectStorageMetrics } from './storage-metrics';
import type { S3Client } from '@aws-sdk/client-s3';

/**
 * The duration histograms are read once per this many cache periods (5 min by default): they
 * change only when a run ends, and at 100 000 backup rows they cost about 1.4 s of the catalog's
 * time per reading (bench/README.md, "Metrics").
 */
export const DURATIONS_CACHE_FACTOR = 20;

/** The port to serve on: $LIFEBOAT_METRICS_PORT, else `metrics.port`, else none (no endpoint). */
export function metricsPortFrom(config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.LIFEBOAT_METRICS_PORT;
  if (raw === undefined || raw === '') return config.metrics.port;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    throw Object.assign(new Error(`LIFEBOAT_METRICS_PORT is ${JSON.stringify(raw)}, which is not a port: set it to a number from 1 to 65535, or unset it to use metrics.port.`), { exitCode: 2 });
  }
  return port;
}

/** A free loopback port for the SDK's own exporter (asked of the kernel, then handed to the SDK). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface WorkerMetricsOptions {
  config: LifeboatConfig;
  port: number;
  /** Central workers: the catalog and a Temporal client; an agent passes neither. */
  catalog?: Pick<Catalog, 'query'>;
  client?: Client;
  /** The object stores (central workers), for the storage listing. */
  objectStore?: (name: string) => S3Client;
  /** The engines of the database targets (the worker's ports), for their recovery point lag. */
  engineOf?: (target: string) => DatabaseEngine;
  /** Running as this agent. */
  agent?: string;
  sdkMetricsUrl?: string;
  log?: (line: string) => void;
}

export function lifeboatMetricSources(o: Omit<WorkerMetricsOptions, 'port' | 'sdkMetricsUrl' | 'log'>): MetricSource[] {
  const { config, catalog, client, engineOf, objectStore } = o;
  const sources: MetricSource[] = [];
  if (catalog) {
    sources.push({ name: 'catalog', collect: () => collectCatalogMetrics(catalog, config) });
    sources.push({ name: 'catalog-durations', cacheMs: config.metrics.cacheSeconds * 1000 * DURATIONS_CACHE_FACTOR, collect: () => collectCatalogDurations(catalog) });
  }
  if (catalog && objectStore) {
    sources.push({ name: 'object-stores', cacheMs: config.storage.objectStoreSeconds * 1000, collect: () => collectStorageMetrics(config, catalog, objectStore) });
  }
  if (client) sources.push({ name: 'temporal', collect: async () => approvalFamilies(await listPendingApprovals(client)) });
  const lagTargets = recoveryPointTargets(config.targets.databases, o.agent);
  if (engineOf && lagTargets.length > 0) {
    sources.push({ name: 'recovery-point', cacheMs: config.metrics.recoveryPointSeconds * 1000, collect: () => collectRecoveryPointMetrics(lagTargets, engineOf) });
  }
  return sources;
}

export function startWorkerMetrics(o: WorkerMetricsOptions): Promise<MetricsServer> {
  return startMetricsServer({
    host: o.config.metrics.host,
    port: o.port,
    cacheMs: o.config.metrics.cacheSeconds * 1000,
    sources: lifeboatMetricSources(o),
    ...(o.sdkMetricsUrl ? { sdkMetricsUrl: o.sdkMetricsUrl } : {}),
    onSourceProblem: (source, problem) => o.log?.(problem === undefined ? `lifeboat worker: metrics: ${source} answers again\n` : `lifeboat worker: metrics: ${source} could not be read: ${problem}\n`),
  });
}
