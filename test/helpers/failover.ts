/**
 * Shared by the drFailover suites: who declares and who approves, short gate timings, approving a
 * gate with as many commanders as its policy asks, production as the test itself reads it, a
 * run's instances and its catalog row.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowHandle } from '@temporalio/client';
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import type { Ports } from '../../src/activities/ports';
import type { LifeboatConfig } from '../../src/config';
import { WorkflowStatus } from '../../src/domain/approval';
import type { FailoverReport } from '../../src/domain/failover';
import type { InstanceDescription } from '../../src/domain/ports';
import { localPgBackRest } from '../../src/stack/pgbackrest';
import { localDnsRouter } from '../../src/stack/powerdns';
import { Stack } from '../../src/stack/stack';
import { statusQuery } from '../../src/workflows/messages';
import { historyToJson, recordableHistory } from './history-json';
import { HISTORIES_DIR, onPrimary, waitForGate } from './pitr';
import { approveSigned } from './signing';

export const REQUESTER = 'dave@example.com';
/** Both incident commanders: production may ask for two people at the declare gate. */
export const COMMANDERS = ['alice@example.com', 'bob@example.com'];
/** Gates that never remind or expire during a test; polls short. */
export const FAILOVER_TIMINGS = { remindAfterMs: 120000, abortAfterMs: 240000, pollIntervalMs: 250, appCheckIntervalMs: 500 };

/** Approves a gate with as many commanders as it takes (one today, two where the policy asks for two). */
export async function approveGate(handle: WorkflowHandle, gate: 'failover' | 'cutover' | 'failback' | 'retire'): Promise<void> {
  await waitForGate(handle, gate);
  for (const by of COMMANDERS) {
    const status = (await handle.query(statusQuery)) as WorkflowStatus;
    if (status.pendingGate?.gate !== gate || status.pendingGate.prompt === undefined) return;
    try {
      await approveSigned(handle, { by, reason: `test: ${gate} confirmed on the bridge`, gate });
    } catch (err) {
      // The first approval was enough: the gate closed before this one.
      if (/no approval is pending|pending gate is/.test(String((err as Error).message) + String((err as { cause?: Error }).cause?.message))) return;
      throw err;
    }
  }
}

/**
 * Production as the test itself reads it (not through the drill's fingerprint): the name's
 * records, the critical tables' rows and checksums, both repositories' backups, both buckets'
 * object versions. Needs the primary region up.
 */
export async function readProduction(stack: Stack, config: LifeboatConfig, ports: Ports) {
  const target = config.targets.databases.find((d) => d.name === 'app')!;
  const tables = target.engine === 'pgbackrest' ? target.criticalTables : [];
  const database = await onPrimary(stack, async (c) => {
    const out: Record<string, { rows: string; checksum: string }> = {};
    for (const table of tables) {
      out[table] = (await c.query<{ rows: string; checksum: string }>(`SELECT count(*)::text AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS checksum FROM ${table} t`)).rows[0];
    }
    return out;
  });
  const repositories: Record<string, unknown> = {};
  for (const repo of [1, 2]) {
    const info = JSON.parse((await localPgBackRest(stack.ctx).exec('info', ['--output=json', `--repo=${repo}`])).stdout) as Array<{ backup: Array<{ label: string; timestamp: { stop: number }; database: { 'repo-key': number } }> }>;
    repositories[`repo${repo}`] = info[0].backup.filter((b) => b.database['repo-key'] === repo).map((b) => [b.label, b.timestamp.stop]);
  }
  const buckets: Record<string, unknown> = {};
  for (const where of [
    { store: 'primary', bucket: 'app-files' },
    { store: 'dr', bucket: 'app-files-replica' },
  ]) {
    const versions: string[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const page = await ports.objectStore(where.store).send(new ListObjectVersionsCommand({ Bucket: where.bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      versions.push(...(page.Versions ?? []).map((v) => `${v.Key} ${v.VersionId} ${v.ETag}`), ...(page.DeleteMarkers ?? []).map((m) => `${m.Key} ${m.VersionId} delete-marker`));
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
    buckets[`${where.store}/${where.bucket}`] = versions.sort();
  }
  return { dns: (await localDnsRouter(stack.ctx.settings).snapshot(stack.ctx.settings.dns.appDbName)).records, database, repositories, buckets };
}

/** The instances a failover run's children restored (their owner is `<failover id>.<step>`). */
export async function failoverInstancesOf(engine: { listInstances(): Promise<InstanceDescription[]> }, workflowId: string): Promise<InstanceDescription[]> {
  return (await engine.listInstances()).filter((i) => i.owner?.workflowId.startsWith(`${workflowId}.`));
}

/** The failover's row in the catalog, with its report. */
export async function readFailoverRow(ports: Ports, workflowId: string) {
  return (await ports.catalog.query<{ outcome: string; report: FailoverReport; evidence: Array<{ key: string }>; lessons: unknown[] }>('SELECT outcome, report, evidence, lessons FROM failovers WHERE workflow_id = $1', [workflowId]))[0];
}

/**
 * With LIFEBOAT_RECORD_HISTORIES=1, writes the run's history for the replay suite, with its
 * workflow id: a failover's children are named from it, so replay must run under the same id.
 */
export async function recordFailoverHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (!process.env.LIFEBOAT_RECORD_HISTORIES) return;
  const file = path.join(HISTORIES_DIR, `${name}.json`);
  if (fs.existsSync(file)) return;
  const history = JSON.parse(historyToJson(await recordableHistory(handle))) as unknown;
  fs.writeFileSync(file, `${JSON.stringify({ workflowId: handle.workflowId, history })}\n`, { flag: 'wx' });
}
