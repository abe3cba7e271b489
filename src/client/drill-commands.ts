/**
 * `lifeboat drill run <target>` proves a backup restores (the restoreDrill workflow, followed to
 * its end); `lifeboat drill report <workflow-id>` prints a drill's report from the evidence
 * buckets, or with --verify reads every copy back against the hashes on record.
 */
import type { Client } from '@temporalio/client';
import { createPorts } from '../activities/ports';
import { drillActivities, evidenceStoreFor } from '../activities/drills';
import { findTarget } from '../config';
import type { LifeboatConfig } from '../config';
import type { DrillEvidence, RestoreDrillInput, RestoreDrillResult } from '../domain/drill';
import { formatDuration } from '../domain/format';
import { UsageError } from './args';
import { failureOf, follow } from './backup-commands';
import { line, printJson } from './output';

const BACKUP_LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;
const FILES_SET_ID = /^\d{8}T\d{6}Z$/;

export function prepareDrill(config: LifeboatConfig, o: { target: string; backup?: string; fromRegion?: string; workflowId?: string; requestedBy: string }): { input: RestoreDrillInput; workflowId: string } {
  const target = findTarget(config, o.target);
  const backup = o.backup ?? 'latest';
  if (backup !== 'latest' && backup !== 'random') {
    // A bucket target's backups are files sets named by their time; a pgBackRest target's by their label.
    const isBucket = !('engine' in target);
    const wrong = isBucket ? !FILES_SET_ID.test(backup) : target.engine === 'pgbackrest' && !BACKUP_LABEL.test(backup);
    if (wrong) throw new UsageError(`--backup takes latest, random or a backup's id (like ${isBucket ? '20260104T040000Z' : '20261130-085650F'}, see \`lifeboat backups list\`), not "${backup}".`);
  }
  if (o.fromRegion !== undefined && o.fromRegion !== 'primary' && o.fromRegion !== 'dr') throw new UsageError(`--from-region takes primary or dr, not "${o.fromRegion}".`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();
  const input: RestoreDrillInput = { target: target.name, backup, requestedBy: o.requestedBy, ...(o.fromRegion ? { fromRegion: o.fromRegion as 'primary' | 'dr' } : {}) };
  return { input, workflowId: o.workflowId ?? `drill-${target.name}-${stamp}` };
}

export async function drillRunCommand(config: LifeboatConfig, client: Client, prepared: { input: RestoreDrillInput; workflowId: string }, json: boolean): Promise<number> {
  const { input, workflowId } = prepared;
  const handle = await client.workflow.start('restoreDrill', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    staticSummary: `restore drill of ${input.target} (${input.backup ?? 'latest'} backup${input.fromRegion === 'dr' ? ', DR region' : ''})`,
    staticDetails: `Requested by ${input.requestedBy ?? 'lifeboat drill'} from the lifeboat CLI.`,
  });
  if (!json) line(`drill ${workflowId}: restore drill of ${input.target} started`);
  let result: RestoreDrillResult;
  try {
    result = await follow<RestoreDrillResult>(client, handle, json);
  } catch (err) {
    if (json) printJson({ workflowId, ok: false, failure: failureOf(err) });
    else {
      line(`Restore drill FAILED before its restore: ${failureOf(err)}`);
      line(`  its report (a drill that fails before the restore writes one too): lifeboat drill report ${workflowId}`);
    }
    return 1;
  }
  const r = result.report;
  if (json) printJson(result);
  else {
    line(`Restore drill ${r.outcome.toUpperCase()}: ${r.target.name}, backup ${r.backup.id} (${r.backup.type}, ${r.backup.region} region, chosen ${r.backup.selectedBy})`);
    line(`  RTO ${formatDuration(r.rto.seconds)} (objective ${formatDuration(r.rto.objectiveSeconds)}); backup age ${formatDuration(r.rpo.seconds)} (RPO objective ${formatDuration(r.rpo.objectiveSeconds)})`);
    line(`  validations: ${r.validations.filter((v) => v.ok).length} of ${r.validations.length} passed`);
    for (const issue of r.issues) line(`  issue: ${issue}`);
    const json0 = result.evidence.find((e) => e.format === 'json');
    if (json0) line(`  report: ${json0.key.replace(/\.json$/, '.{json,md,html}')} in ${json0.copies.map((c) => `${c.bucket} (${c.region})`).join(' and ')}; SHA-256 of the JSON ${json0.sha256}`);
    line(`  print it: lifeboat drill report ${workflowId} [--format md|json|html] [--verify]`);
  }
  return r.outcome === 'passed' ? 0 : 1;
}

export async function drillReportCommand(config: LifeboatConfig, o: { workflowId: string; format?: string; verify: boolean; json: boolean }): Promise<number> {
  const format = o.format ?? 'md';
  if (!['md', 'json', 'html'].includes(format)) throw new UsageError(`--format takes md, json or html, not "${format}".`);
  const ports = createPorts(config);
  try {
    const [row] = await ports.catalog.query<{ evidence: DrillEvidence[] }>('SELECT evidence FROM drills WHERE workflow_id = $1 ORDER BY recorded_at DESC LIMIT 1', [o.workflowId]);
    if (!row) throw new UsageError(`no drill with the workflow id "${o.workflowId}" is on record: check the id with \`lifeboat list\`.`);
    if (o.verify) {
      const checks = await drillActivities(ports).verifyDrillEvidence(o.workflowId);
      if (o.json) printJson(checks);
      else for (const c of checks) line(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.format.padEnd(4)}  ${c.detail}`);
      return checks.every((c) => c.ok) ? 0 : 1;
    }
    const e = row.evidence.find((x) => x.format === format)!;
    const store = evidenceStoreFor(config, ports);
    const body = await store.read({ key: e.key, sha256: e.sha256, bytes: e.bytes, contentType: '', copies: e.copies.map((c) => ({ ...c, key: e.key, mode: config.evidence.lockMode })) });
    process.stdout.write(body);
    return 0;
  } finally {
    await ports.close();
  }
}
