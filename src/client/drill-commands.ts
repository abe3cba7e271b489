/**
 * `lifeboat drill run <target>` proves a backup restores (the restoreDrill workflow, followed to
 * its end); `lifeboat drill report <workflow-id>` prints a drill's report from the evidence
 * buckets, or with --verify reads every copy back against the hashes on record;
 * `lifeboat drills list` shows per target the last result, the RTO trend, the predicted RTO now
 * and the next scheduled drill.
 */
import type { Client } from '@temporalio/client';
import { createPorts } from '../activities/ports';
import { drillActivities, evidenceStoreFor } from '../activities/drills';
import { predictionActivities } from '../activities/rto-prediction';
import { dynamoDbObjectives, findDynamoDbTarget, isDynamoDbTarget } from '../activities/dynamodb';
import { objectivesFor } from '../config';
import type { BucketTarget, DatabaseTarget, DirectoryTarget, LifeboatConfig, SqliteTarget } from '../config';
import { closest } from '../config/fields';
import type { DrillEvidence, RestoreDrillInput, RestoreDrillResult } from '../domain/drill';
import { describeError, LifeboatError } from '../domain/errors';
import { formatDuration } from '../domain/format';
import type { RtoPrediction } from '../domain/rto-prediction';
import { UsageError } from './args';
import { failureOf, follow } from './backup-commands';
import { formatTable, line, printJson } from './output';
import { DEFAULT_SCHEDULE_PREFIX, SCHEDULED_WORKFLOWS } from './schedule-plan';
import { listSchedules } from './schedules';

const BACKUP_LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;
const FILES_SET_ID = /^\d{8}T\d{6}Z$/;

/** The kinds of target restoreDrill drills. */
type DrillTarget = DatabaseTarget | BucketTarget | DirectoryTarget | SqliteTarget;

/** The database, bucket, directory or SQLite target `name` (the kinds restoreDrill drills); an unknown name is one sentence listing them. */
export function findDrillTarget(config: LifeboatConfig, name: string): DrillTarget {
  const drillable: DrillTarget[] = [...config.targets.databases, ...config.targets.buckets, ...config.targets.directories, ...config.targets.sqlite];
  const found = drillable.find((t) => t.name === name);
  if (found) return found;
  const names = drillable.map((t) => t.name);
  const guess = closest(name, names);
  throw new LifeboatError(`No database, bucket, directory or SQLite target is named "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}; the config declares ${names.join(', ') || 'none'}.`, 'UNKNOWN_TARGET');
}

/** A directory target has a path on its host and critical files; a SQLite target a path only; databases and buckets neither. */
const isDirectory = (t: DrillTarget): t is DirectoryTarget => 'path' in t && 'criticalFiles' in t;
const isSqlite = (t: DrillTarget): t is SqliteTarget => !('engine' in t) && 'path' in t && !('criticalFiles' in t);

/** The target's kind as drill lists and reports name it. */
export function drillKindOf(target: DrillTarget): DrillListEntry['kind'] {
  return 'engine' in target ? 'database' : isDirectory(target) ? 'directory' : isSqlite(target) ? 'sqlite' : 'bucket';
}

export function prepareDrill(config: LifeboatConfig, o: { target: string; backup?: string; fromRegion?: string; workflowId?: string; requestedBy: string }): { input: RestoreDrillInput; workflowId: string } {
  const target = findDrillTarget(config, o.target);
  const backup = o.backup ?? 'latest';
  if (drillKindOf(target) === 'directory') {
    // A directory's archive ids are its backup workflow's; its drills read the primary region's copy.
    if (backup === 'random') throw new UsageError(`a directory target's drill takes latest or a backup's id, not random.`);
    if (o.fromRegion !== undefined && o.fromRegion !== 'primary') throw new UsageError(`a directory target's drill restores from the primary region's copy; leave out --from-region.`);
    // A SQLite backup is named by its catalog id or backup name; the drill says in one sentence when there is none such.
  } else if (backup !== 'latest' && backup !== 'random' && !isSqlite(target)) {
    // A bucket target's backups are files sets named by their time; a pgBackRest target's by their label.
    const isBucket = !('engine' in target);
    const wrong = 'engine' in target ? target.engine === 'pgbackrest' && !BACKUP_LABEL.test(backup) : !FILES_SET_ID.test(backup);
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

/** How many of a target's latest drills the RTO trend shows. */
export const TREND_LENGTH = 5;

export interface DrillListEntry {
  target: string;
  kind: 'database' | 'bucket' | 'directory' | 'sqlite' | 'dynamodb';
  rtoObjectiveSeconds: number;
  last?: { drillId: string; outcome: string; startedAt: string; rtoSeconds: number; backupId: string; region: string };
  /** The latest drills' RTOs, oldest first (failed ones marked). */
  trend: Array<{ drillId: string; outcome: string; rtoSeconds: number }>;
  prediction?: RtoPrediction;
  predictionProblem?: string;
  nextDrill?: { at: string; scheduleId: string; paused: boolean };
  nextDrillProblem?: string;
}

/** "8 s → 9 s → 12 s", a failed drill's RTO marked "(failed)". */
export function trendText(trend: DrillListEntry['trend']): string {
  if (!trend.length) return 'no drills yet';
  return trend.map((t) => `${formatDuration(t.rtoSeconds)}${t.outcome === 'passed' ? '' : ` (${t.outcome})`}`).join(' → ');
}

export async function drillsList(
  config: LifeboatConfig,
  o: { target?: string; prefix?: string; client?: () => Promise<Client> },
): Promise<DrillListEntry[]> {
  // DynamoDB tables are drilled by dynamodbDrill, on the same catalog table and evidence store.
  type Listed = { name: string; kind: DrillListEntry['kind']; rto: number; drillWorkflow: string };
  const listed = (t: DrillTarget): Listed => ({ name: t.name, kind: drillKindOf(t), rto: objectivesFor(config, t).rto, drillWorkflow: SCHEDULED_WORKFLOWS.restoreDrill });
  const table = (t: LifeboatConfig['targets']['dynamodb'][number]): Listed => ({ name: t.name, kind: 'dynamodb', rto: dynamoDbObjectives(config, t).rto, drillWorkflow: SCHEDULED_WORKFLOWS.dynamodbDrill });
  const targets: Listed[] = o.target
    ? [isDynamoDbTarget(config, o.target) ? table(findDynamoDbTarget(config, o.target)) : listed(findDrillTarget(config, o.target))]
    : [...config.targets.databases.map(listed), ...config.targets.buckets.map(listed), ...config.targets.directories.map(listed), ...config.targets.sqlite.map(listed), ...config.targets.dynamodb.map(table)];
  const ports = createPorts(config);
  let schedules: Awaited<ReturnType<typeof listSchedules>> | undefined;
  let scheduleProblem: string | undefined;
  if (o.client) {
    try {
      const client = await o.client();
      try {
        schedules = await listSchedules(client, o.prefix ?? DEFAULT_SCHEDULE_PREFIX);
      } finally {
        await client.connection.close();
      }
    } catch (err) {
      scheduleProblem = `the schedules could not be read from Temporal (${describeError(err)})`;
    }
  }
  try {
    const predict = predictionActivities(ports).predictRestore;
    const out: DrillListEntry[] = [];
    for (const target of targets) {
      const rows = await ports.catalog.query<{ workflow_id: string; outcome: string; started_at: Date; rto_seconds: number; backup_id: string; region: string }>(
        'SELECT workflow_id, outcome, started_at, rto_seconds, backup_id, region FROM drills WHERE target = $1 ORDER BY started_at DESC LIMIT $2',
        [target.name, TREND_LENGTH],
      );
      const entry: DrillListEntry = {
        target: target.name,
        kind: target.kind,
        rtoObjectiveSeconds: target.rto,
        trend: [...rows].reverse().map((r) => ({ drillId: r.workflow_id, outcome: r.outcome, rtoSeconds: r.rto_seconds })),
      };
      const last = rows[0];
      if (last) entry.last = { drillId: last.workflow_id, outcome: last.outcome, startedAt: last.started_at.toISOString(), rtoSeconds: last.rto_seconds, backupId: last.backup_id, region: last.region };
      try {
        // The prediction models database restores and file sets; a directory's or SQLite file's restore time is its drills' measure.
        if (entry.kind === 'directory') entry.predictionProblem = 'not predicted for directory targets: the RTO trend is the measure';
        else if (entry.kind === 'sqlite') entry.predictionProblem = "RTO predictions model pgBackRest and RDS restores; a SQLite target's measured drill RTO is its evidence";
        else entry.prediction = await predict(target.name);
      } catch (err) {
        entry.predictionProblem = describeError(err);
      }
      if (schedules) {
        const mine = schedules
          .filter((s) => s.workflowType === target.drillWorkflow && (s.args[0] as { target?: string } | undefined)?.target === target.name)
          .map((s) => ({ scheduleId: s.scheduleId, paused: s.paused, at: s.nextRuns[0] }))
          .filter((s): s is { scheduleId: string; paused: boolean; at: string } => s.at !== undefined)
          .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
        if (mine[0]) entry.nextDrill = mine[0];
        else entry.nextDrillProblem = `no drill schedule of ${target.name}: \`lifeboat schedules apply\` creates it`;
      } else entry.nextDrillProblem = scheduleProblem ?? 'Temporal was not asked';
      out.push(entry);
    }
    return out;
  } finally {
    await ports.close();
  }
}

export async function drillsListCommand(config: LifeboatConfig, o: { target?: string; prefix?: string; json: boolean; client: () => Promise<Client> }): Promise<number> {
  if (o.target !== undefined && !isDynamoDbTarget(config, o.target)) findDrillTarget(config, o.target);
  const entries = await drillsList(config, o);
  if (o.json) {
    printJson(entries);
    return 0;
  }
  const rows: string[][] = [['target', 'last drill', 'RTO trend', 'predicted RTO now', 'next drill']];
  for (const e of entries) {
    rows.push([
      e.target,
      e.last ? `${e.last.outcome} ${e.last.startedAt.slice(0, 16).replace('T', ' ')}` : 'never',
      trendText(e.trend),
      e.prediction?.predictedSeconds !== undefined ? `${formatDuration(e.prediction.predictedSeconds)} (objective ${formatDuration(e.rtoObjectiveSeconds)})${e.prediction.status === 'breach' ? ' OVER' : ''}` : 'unknown',
      e.nextDrill ? `${e.nextDrill.at.slice(0, 16).replace('T', ' ')} UTC${e.nextDrill.paused ? ' (paused)' : ''}` : 'none scheduled',
    ]);
  }
  for (const text of formatTable(rows)) line(text);
  for (const e of entries) {
    line();
    line(`${e.target}: ${e.prediction ? e.prediction.summary : `no prediction: ${e.predictionProblem}`}`);
    if (e.last) line(`  last drill ${e.last.drillId}: ${e.last.outcome}, RTO ${formatDuration(e.last.rtoSeconds)}, backup ${e.last.backupId} (${e.last.region} region)`);
    if (!e.nextDrill) line(`  next drill: ${e.nextDrillProblem}`);
  }
  return 0;
}
