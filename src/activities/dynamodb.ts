/**
 * Activities of the DynamoDB target kind (workflows dynamodbBackup, dynamodbRestore,
 * dynamodbDrill) over the DynamoDB engine (src/engines/dynamodb.ts): DynamoDB calls in the
 * target's regions, export objects through the configured object stores, rows in the catalog.
 *
 * Long waits poll through the engine and heartbeat each poll, so a dead worker is noticed within
 * the heartbeat timeout and a cancel arrives; the poll interval comes from the workflow input
 * (tests make it short).
 */
import { Context } from '@temporalio/activity';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { DynamoDbTarget, LifeboatConfig } from '../config';
import { describeError, LifeboatError } from '../domain/errors';
import {
  DYNAMODB_BACKUP_PREFIX,
  DYNAMODB_BACKUP_TYPE,
  drillTableName,
  DynamoDbBackupDetails,
  DynamoDbBackupInput,
  DynamoDbBackupPlan,
  DynamoDbBackupReport,
  DynamoDbExportDetails,
  DynamoDbExportVerification,
  DynamoDbRestoreInput,
  DynamoDbRestorePlan,
  DynamoDbRestoreReport,
  DynamoDbTableCheck,
  DynamoDbTableOwner,
  dynamoDbBackupName,
  dynamoDbDrillReport,
  dynamoDbExportToken,
  importClientToken,
  tableNameProblem,
} from '../domain/dynamodb';
import type { ComponentCheck } from '../domain/preflight';
import { planRetention, type RegionDeletion, type RetentionCandidate, type RetentionDecision } from '../domain/retention';
import { copyExport, DynamoDbEngine, ExportBucket, moveKey, verifyExport } from '../engines/dynamodb';
import type { DrillEvidence } from '../domain/drill';
import { recordBackupRow } from './catalog-records';
import { drillActivities } from './drills';
import { currentWorkflowId } from './context';
import { withHeartbeats } from './heartbeat';
import { Ports } from './ports';
import { deleteAllVersions } from './retention';

const refuse = (sentence: string) => new LifeboatError(sentence, 'RESTORE_REFUSED');

/** The DynamoDB target called `name`; an unknown name is one sentence listing the known ones. */
export function findDynamoDbTarget(config: LifeboatConfig, name: string): DynamoDbTarget {
  const found = config.targets.dynamodb.find((d) => d.name === name);
  if (found) return found;
  const known = config.targets.dynamodb.map((d) => d.name);
  throw new LifeboatError(`No DynamoDB target is named "${name}"; ${known.length ? `the config declares ${known.join(', ')}` : 'the config declares none'}.`, 'UNKNOWN_TARGET');
}

/** RPO and RTO in seconds of a DynamoDB target: its own overrides, else the database objectives. */
export function dynamoDbObjectives(config: LifeboatConfig, t: DynamoDbTarget): { rpo: number; rto: number } {
  return { rpo: t.rpo ?? config.objectives.database.rpo, rto: t.rto ?? config.objectives.database.rto };
}

export function isDynamoDbTarget(config: LifeboatConfig, name: string): boolean {
  return config.targets.dynamodb.some((d) => d.name === name);
}

/** The key prefix of one backup's export: `<configured prefix>/<backup name>`. */
function exportPrefix(configured: string, backupName: string): string {
  const base = configured.replace(/^\/+|\/+$/g, '');
  return base ? `${base}/${backupName}` : backupName;
}

/** The activity's own heartbeat, when it runs in one (engines are also used by the CLI and tests). */
function beat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    /* not inside an activity */
  }
}

function owner(): DynamoDbTableOwner {
  const run = Context.current().info.workflowExecution;
  if (!run) throw new Error('a DynamoDB restore activity ran outside a workflow; it needs one to mark the table it makes.');
  return { workflowId: run.workflowId, runId: run.runId };
}

interface CatalogBackup {
  id: string;
  engine_backup_id: string;
  locations: { primary?: { backupArn?: string; store?: string; bucket?: string; prefix?: string; exportFolder?: string }; dr?: { store?: string; bucket?: string; prefix?: string; exportFolder?: string } };
  details: { itemCount?: number; shape?: DynamoDbBackupPlan['shape'] };
  completed_at: Date | null;
}

export function dynamoDbActivities(ports: Ports) {
  const { config } = ports;

  const engineFor = (t: DynamoDbTarget, timings?: { pollIntervalMs?: number; waitTimeoutMs?: number }) =>
    new DynamoDbEngine({
      tableName: t.tableName,
      region: t.region,
      drRegion: t.drRegion,
      ...(t.kmsKeyId ? { kmsKeyId: t.kmsKeyId } : {}),
      ...(t.drKmsKeyId ? { drKmsKeyId: t.drKmsKeyId } : {}),
      ...(timings?.pollIntervalMs ? { pollIntervalMs: timings.pollIntervalMs } : {}),
      ...(timings?.waitTimeoutMs ? { waitTimeoutMs: timings.waitTimeoutMs } : {}),
      onPoll: (s) => beat(s),
    });

  const bucketOf = (loc: { store: string; bucket: string }): ExportBucket => ({ s3: ports.objectStore(loc.store), store: loc.store, bucket: loc.bucket });

  const planTimings = (plan: { pollIntervalMs: number; waitTimeoutMs: number }) => ({ pollIntervalMs: plan.pollIntervalMs, waitTimeoutMs: plan.waitTimeoutMs });

  return {
    // ------------------------------------------------------------ backup

    /** The backup's names and places; refuses a table without point-in-time recovery (exports need it). */
    async planDynamoDbBackup(input: DynamoDbBackupInput): Promise<DynamoDbBackupPlan> {
      const t = findDynamoDbTarget(config, input.target);
      const engine = engineFor(t);
      const table = await engine.sourceTable();
      const pitr = await engine.pitrStatus();
      if (!pitr.enabled) throw new LifeboatError(engine.pitrDisabledSentence(), 'PITR_NOT_ENABLED');
      const workflowId = currentWorkflowId();
      const backupName = dynamoDbBackupName(workflowId);
      return {
        target: t.name,
        environment: t.environment,
        region: t.region,
        drRegion: t.drRegion,
        tableName: t.tableName,
        tableArn: table.TableArn!,
        backupName,
        exportToken: dynamoDbExportToken(workflowId),
        shape: DynamoDbEngine.shapeOf(table),
        primary: { store: t.exports.primary.store, bucket: t.exports.primary.bucket, prefix: exportPrefix(t.exports.primary.prefix, backupName) },
        dr: { store: t.exports.dr.store, bucket: t.exports.dr.bucket, prefix: exportPrefix(t.exports.dr.prefix, backupName) },
        pollIntervalMs: input.timings?.pollIntervalMs ?? 20_000,
        waitTimeoutMs: input.timings?.waitTimeoutMs ?? 6 * 3600 * 1000,
      };
    },

    /** CreateBackup under the name from the workflow id, or the backup an earlier attempt made under it. */
    async createDynamoDbBackup(plan: DynamoDbBackupPlan): Promise<{ backupArn: string; adopted: boolean }> {
      return engineFor(findDynamoDbTarget(config, plan.target)).startBackup(plan.backupName);
    },

    /** Waits (polling, heartbeating each poll) until the backup is AVAILABLE. */
    async waitDynamoDbBackup(plan: DynamoDbBackupPlan, backupArn: string, adopted: boolean): Promise<DynamoDbBackupDetails> {
      return engineFor(findDynamoDbTarget(config, plan.target), planTimings(plan)).waitForBackup(backupArn, adopted);
    },

    /** Exports the table as at the backup's time to the primary export bucket (same client token on a retry: the same export). */
    async exportDynamoDbTable(plan: DynamoDbBackupPlan, backup: DynamoDbBackupDetails): Promise<string> {
      return engineFor(findDynamoDbTarget(config, plan.target)).startExport({ tableArn: plan.tableArn, exportTime: backup.createdAt, bucket: plan.primary.bucket, prefix: plan.primary.prefix, clientToken: plan.exportToken });
    },

    async waitDynamoDbExport(plan: DynamoDbBackupPlan, exportArn: string): Promise<DynamoDbExportDetails> {
      const e = await engineFor(findDynamoDbTarget(config, plan.target), planTimings(plan)).waitForExport(exportArn);
      if (!e.exportFolder.startsWith(`${plan.primary.prefix}/`)) {
        throw new LifeboatError(`The export ${exportArn} wrote its manifest to ${e.manifestKey}, outside ${plan.primary.prefix}/; lifeboat copies and deletes only under its own prefix, so take a new backup.`, 'EXPORT_INCOMPLETE');
      }
      return e;
    },

    /** The export in one region against its manifests: item counts, every data file's MD5. */
    async verifyDynamoDbExport(plan: DynamoDbBackupPlan, exp: DynamoDbExportDetails, region: 'primary' | 'dr'): Promise<DynamoDbExportVerification> {
      const loc = region === 'dr' ? plan.dr : plan.primary;
      const folder = region === 'dr' ? moveKey(exp.exportFolder, plan.primary.prefix, plan.dr.prefix) : exp.exportFolder;
      let progress = { files: 0, of: 0 };
      return withHeartbeats(
        () => ({ phase: `verifying the ${region} export`, ...progress }),
        () =>
          verifyExport(bucketOf(loc), {
            folder,
            expectedItems: exp.itemCount,
            region,
            ...(region === 'dr' ? { keyOf: (k: string) => moveKey(k, plan.primary.prefix, plan.dr.prefix) } : {}),
            onFile: (files, of) => (progress = { files, of }),
          }),
      );
    },

    /** Copies the export's objects to the DR bucket (manifests last); what is there already is skipped. */
    async copyDynamoDbExportToDr(plan: DynamoDbBackupPlan, exp: DynamoDbExportDetails): Promise<{ copied: number; skipped: number; bytes: number }> {
      let progress = { objects: 0, of: 0, bytes: 0 };
      return withHeartbeats(
        () => ({ phase: 'copying the export to the DR region', ...progress }),
        () =>
          copyExport(bucketOf(plan.primary), bucketOf(plan.dr), {
            folder: exp.exportFolder,
            fromPrefix: plan.primary.prefix,
            toPrefix: plan.dr.prefix,
            onProgress: (objects, of, bytes) => (progress = { objects, of, bytes }),
          }),
      );
    },

    /** The catalog row (backup_type and engine `dynamodb`) with both regions' verifications. */
    async recordDynamoDbBackup(plan: DynamoDbBackupPlan, report: DynamoDbBackupReport, startedAt: string): Promise<string> {
      const now = new Date().toISOString();
      const verified = report.outcome === 'verified';
      const primaryOk = report.verifications.some((v) => v.region === 'primary' && v.ok);
      const exp = report.export;
      return recordBackupRow(
        ports.catalog,
        {
          target: plan.target,
          environment: plan.environment,
          backupType: DYNAMODB_BACKUP_TYPE,
          engine: DYNAMODB_BACKUP_TYPE,
          engineBackupId: plan.backupName,
          status: verified ? 'verified' : 'failed',
          locations: {
            primary: { region: plan.region, ...plan.primary, ...(report.backup ?? report.started ? { backupArn: (report.backup ?? report.started)!.backupArn } : {}), ...(exp ? { exportArn: exp.exportArn, exportFolder: exp.exportFolder, manifestKey: exp.manifestKey } : {}), ...(primaryOk ? {} : { failed: true }) },
            dr: { region: plan.drRegion, ...plan.dr, ...(exp ? { exportFolder: moveKey(exp.exportFolder, plan.primary.prefix, plan.dr.prefix) } : {}), ...(verified ? {} : { failed: true }) },
          },
          sizeBytes: report.backup?.sizeBytes ?? exp?.billedSizeBytes,
          checksums: {},
          startedAt,
          completedAt: now,
          verifiedAt: verified ? now : undefined,
          workflowId: currentWorkflowId(),
          runId: Context.current().info.workflowExecution?.runId,
          failure: report.failure,
          details: {
            tableName: plan.tableName,
            tableArn: plan.tableArn,
            shape: plan.shape,
            ...(exp ? { itemCount: exp.itemCount, exportTime: exp.exportTime } : {}),
            ...(report.backup ? { backupCreatedAt: report.backup.createdAt, backupItemCount: report.backup.itemCount ?? null } : {}),
            ...(report.drCopy ? { drCopy: report.drCopy } : {}),
          },
        },
        report.verifications.map((v) => ({ subject: `dynamodb export ${v.region} ${v.store}:${v.bucket}`, result: { ok: v.ok, checks: v.checks } })),
      );
    },

    // ------------------------------------------------------------ restore and drill

    /**
     * Checks the request before anything exists: the new table's name (not the source, not an
     * existing table), the point (inside the window) or the backup (a verified one in the
     * catalog). A wrong request is one sentence (RESTORE_REFUSED).
     */
    async validateDynamoDbRestore(input: DynamoDbRestoreInput & { purpose?: 'restore' | 'drill' }, workflowId: string): Promise<DynamoDbRestorePlan> {
      const t = findDynamoDbTarget(config, input.target);
      const region = input.fromRegion ?? 'primary';
      const engine = engineFor(t);
      const intoTable = input.purpose === 'drill' ? drillTableName(t.tableName, workflowId) : input.intoTable;
      const nameProblem = tableNameProblem(intoTable);
      if (nameProblem) throw refuse(`${nameProblem}: give --into-table a new table name.`);
      if (intoTable === t.tableName) throw refuse(`--into-table ${intoTable} is the source table of ${t.name}; lifeboat restores only into a new table, so give another name.`);
      const regionName = region === 'dr' ? t.drRegion : t.region;
      if (await engine.findTable(intoTable, region)) {
        throw refuse(`The table ${intoTable} already exists in ${regionName}; lifeboat restores only into a new table and never writes over one, so give --into-table a name that is not taken.`);
      }
      const timings = {
        remindAfterMs: input.timings?.remindAfterMs ?? config.approvals.remindAfter * 1000,
        abortAfterMs: input.timings?.abortAfterMs ?? config.approvals.abortAfter * 1000,
        pollIntervalMs: input.timings?.pollIntervalMs ?? 20_000,
        waitTimeoutMs: input.timings?.waitTimeoutMs ?? 6 * 3600 * 1000,
      };
      const base = { target: t.name, environment: t.environment, region: regionName, sourceTable: t.tableName, intoTable, validatedAt: new Date().toISOString(), timings };
      const source = input.source;
      if (source.kind !== 'backup') {
        if (region === 'dr') throw refuse(`A restore in the DR region (${t.drRegion}) comes from a backup's DR export, not from a point in time: give --backup <id|latest> instead of --to.`);
        const pitr = await engine.pitrStatus();
        if (!pitr.enabled) throw refuse(engine.pitrDisabledSentence());
        const table = await engine.sourceTable();
        const shape = DynamoDbEngine.shapeOf(table);
        if (source.kind === 'latest') return { ...base, method: 'point-in-time', pointLabel: `latest (now ${pitr.latest ?? 'unknown'})`, sourceTableArn: table.TableArn, shape };
        const at = new Date(source.at);
        if (Number.isNaN(at.getTime())) throw refuse(`"${source.at}" is not a time: give an ISO-8601 time such as 2026-11-21T10:01:00Z.`);
        if ((pitr.earliest && at < new Date(pitr.earliest)) || (pitr.latest && at > new Date(pitr.latest))) {
          throw refuse(`${at.toISOString()} is outside the restorable window of ${t.tableName} (${pitr.earliest ?? '?'} to ${pitr.latest ?? '?'}); pick a time inside it.`);
        }
        return { ...base, method: 'point-in-time', pointLabel: at.toISOString(), restoreTime: at.toISOString(), sourceTableArn: table.TableArn, shape };
      }
      const wanted = source.backup.trim();
      const rows = await ports.catalog.query<CatalogBackup>(
        `SELECT id::text AS id, engine_backup_id, locations, details, completed_at FROM backups
          WHERE target = $1 AND backup_type = $2 AND status = 'verified' AND ($3 = 'latest' OR id::text = $3 OR engine_backup_id = $3)
          ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT 1`,
        [t.name, DYNAMODB_BACKUP_TYPE, wanted],
      );
      const row = rows[0];
      if (!row) {
        throw refuse(wanted === 'latest' ? `${t.name} has no verified backup in the catalog yet: take one with \`lifeboat backup ${t.name}\` first.` : `${t.name} has no verified backup "${wanted}" in the catalog: see \`lifeboat backups list --target ${t.name}\` for the ids.`);
      }
      const p = row.locations.primary ?? {};
      const d = row.locations.dr ?? {};
      const itemCount = row.details.itemCount ?? 0;
      if (region === 'dr') {
        if (!d.store || !d.bucket || !d.exportFolder || !row.details.shape) throw refuse(`Backup ${row.engine_backup_id} has no DR export on record, so it cannot be imported in ${t.drRegion}; pick another backup.`);
        return {
          ...base,
          method: 'import',
          pointLabel: `backup ${row.engine_backup_id} (DR export)`,
          backup: { catalogId: row.id, backupArn: p.backupArn ?? '', backupName: row.engine_backup_id, itemCount, export: { store: d.store, bucket: d.bucket, prefix: d.prefix ?? '', exportFolder: d.exportFolder } },
          shape: row.details.shape,
          expectedItems: itemCount,
        };
      }
      if (!p.backupArn) throw refuse(`Backup ${row.engine_backup_id} has no on-demand backup ARN on record; pick another backup.`);
      const b = await engine.describeBackup(p.backupArn);
      if (!b || b.BackupDetails?.BackupStatus !== 'AVAILABLE') throw refuse(`The on-demand backup ${row.engine_backup_id} is ${b ? b.BackupDetails?.BackupStatus : 'gone'} in ${t.region}; restore from its DR export with --from-region dr, or pick another backup.`);
      return {
        ...base,
        method: 'from-backup',
        pointLabel: `backup ${row.engine_backup_id}`,
        backup: { catalogId: row.id, backupArn: p.backupArn, backupName: row.engine_backup_id, itemCount },
        ...(row.details.shape ? { shape: row.details.shape } : {}),
        expectedItems: itemCount,
      };
    },

    /** Starts the restore (or import) into the new table and tags it with this run; adopts only a table this run made. */
    async restoreDynamoDbTable(plan: DynamoDbRestorePlan, purpose: 'restore' | 'drill'): Promise<{ tableArn?: string; importArn?: string }> {
      const t = findDynamoDbTarget(config, plan.target);
      const region = plan.method === 'import' ? 'dr' : 'primary';
      const exp = plan.backup?.export;
      const r = await engineFor(t).startRestore({
        intoTable: plan.intoTable,
        region,
        method: plan.method,
        ...(plan.restoreTime ? { restoreTime: plan.restoreTime } : {}),
        ...(plan.backup?.backupArn ? { backupArn: plan.backup.backupArn } : {}),
        ...(exp && plan.shape ? { importFrom: { bucket: exp.bucket, keyPrefix: `${exp.exportFolder}/data/`, shape: plan.shape, clientToken: importClientToken(currentWorkflowId(), plan.intoTable) } } : {}),
        owner: owner(),
        purpose,
        validatedAt: plan.validatedAt,
      });
      return { ...(r.tableArn ? { tableArn: r.tableArn } : {}), ...(r.importArn ? { importArn: r.importArn } : {}) };
    },

    /** Waits until the new table is ACTIVE (heartbeating each poll), then makes sure it carries this run's tags. */
    async waitDynamoDbTable(plan: DynamoDbRestorePlan, purpose: 'restore' | 'drill', importArn?: string): Promise<{ tableArn?: string; status: string }> {
      const t = findDynamoDbTarget(config, plan.target);
      const region = plan.method === 'import' ? 'dr' : 'primary';
      const engine = engineFor(t, plan.timings);
      await engine.waitForTable(plan.intoTable, region, importArn);
      const table = await engine.claimTable(plan.intoTable, region, { owner: owner(), purpose, validatedAt: plan.validatedAt, ...(plan.backup?.backupArn ? { backupArn: plan.backup.backupArn } : {}) });
      return { ...(table.TableArn ? { tableArn: table.TableArn } : {}), status: table.TableStatus ?? 'ACTIVE' };
    },

    /** Counts every item of the new table (Scan COUNT) against the backup's export, and checks its keys. */
    async verifyDynamoDbTable(plan: DynamoDbRestorePlan): Promise<DynamoDbTableCheck> {
      const t = findDynamoDbTarget(config, plan.target);
      const region = plan.method === 'import' ? 'dr' : 'primary';
      let counted = 0;
      return withHeartbeats(
        () => ({ phase: `counting the items of ${plan.intoTable}`, counted }),
        () => engineFor(t).checkTable(plan.intoTable, region, { ...(plan.expectedItems !== undefined ? { items: plan.expectedItems } : {}), ...(plan.shape ? { keySchema: plan.shape.keySchema } : {}) }, (n) => (counted = n)),
      );
    },

    /** Deletes the new table, only when its tags name this run (or it is this run's untagged table, made after validation). */
    async removeDynamoDbTable(plan: DynamoDbRestorePlan): Promise<string> {
      const t = findDynamoDbTarget(config, plan.target);
      const region = plan.method === 'import' ? 'dr' : 'primary';
      return engineFor(t, plan.timings).deleteOwnTable(plan.intoTable, region, owner(), { validatedAt: plan.validatedAt, ...(plan.backup?.backupArn ? { backupArn: plan.backup.backupArn } : {}) });
    },

    /**
     * A drill's report published like every drill's: JSON, Markdown and HTML in both evidence
     * buckets under object lock, a `drills` row with their hashes, the drilled backup marked
     * proven or not. Idempotent (the shared publisher adopts what a retry finds).
     */
    async publishDynamoDbDrill(report: DynamoDbRestoreReport, startedAt: string, asked: string): Promise<DrillEvidence[]> {
      const t = findDynamoDbTarget(config, report.target);
      const run = Context.current().info.workflowExecution;
      if (!run) throw new LifeboatError('a drill report is published on behalf of a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
      const drills = drillActivities(ports);
      const [row] = report.plan?.backup?.catalogId
        ? await ports.catalog.query<{ completed_at: Date | null; size_bytes: string | null }>('SELECT completed_at, size_bytes::text FROM backups WHERE id = $1', [report.plan.backup.catalogId])
        : [];
      const { report: drill, selection } = dynamoDbDrillReport(report, {
        runId: run.runId,
        startedAt,
        finishedAt: new Date().toISOString(),
        environment: t.environment,
        engineLabel: 'dynamodb',
        ...(row?.completed_at ? { backup: { takenAt: row.completed_at.toISOString(), ...(row.size_bytes ? { sizeBytes: Number(row.size_bytes) } : {}) } } : {}),
        objectives: dynamoDbObjectives(config, t),
        history: await drills.drillHistory(t.name),
        asked,
      });
      return drills.publishDrillReport(drill, selection, !!selection.catalogId);
    },

    /** The report in the catalog's restores table; one row per workflow, updated by a retry. */
    async recordDynamoDbRestore(report: DynamoDbRestoreReport): Promise<void> {
      await ports.catalog.query(
        `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
        [report.workflowId, report.target, report.outcome, report.plan?.pointLabel ?? 'unknown', report.table?.name ?? report.plan?.intoTable ?? null, report.requestedBy, JSON.stringify(report)],
      );
    },
  };
}

/**
 * The RPO of a DynamoDB table as point-in-time recovery gives it: the data a restore can reach
 * is as old as the latest restorable time (about five minutes behind), whatever the age of the
 * last backup. Undefined when point-in-time recovery is off: the last backup's age is the RPO then.
 */
export async function dynamoDbRecoveryPoint(ports: Ports, name: string, nowMs = Date.now()): Promise<{ breached: boolean; detail: string; lagSeconds: number } | undefined> {
  const t = findDynamoDbTarget(ports.config, name);
  const { rpo } = dynamoDbObjectives(ports.config, t);
  const pitr = await new DynamoDbEngine({ tableName: t.tableName, region: t.region, drRegion: t.drRegion }).pitrStatus();
  if (!pitr.enabled) return undefined;
  if (!pitr.latest) return { breached: true, lagSeconds: Number.NaN, detail: `point-in-time recovery of ${t.tableName} is on but DynamoDB gave no latest restorable time` };
  const lag = Math.max(0, Math.round((nowMs - Date.parse(pitr.latest)) / 1000));
  const breached = lag > rpo;
  return { breached, lagSeconds: lag, detail: `point-in-time recovery of ${t.tableName} restores to ${pitr.latest}, ${lag} s ago, ${breached ? 'beyond' : 'within'} the RPO of ${rpo} s` };
}

/** Preflight of a DynamoDB target: the table exists, point-in-time recovery is on, both export buckets answer. */
export async function dynamoDbPreflightChecks(ports: Ports, name: string): Promise<ComponentCheck[]> {
  const t = findDynamoDbTarget(ports.config, name);
  const engine = new DynamoDbEngine({ tableName: t.tableName, region: t.region, drRegion: t.drRegion });
  const checks: ComponentCheck[] = [];
  try {
    const table = await engine.sourceTable();
    checks.push({ component: `${name}: table`, ok: table.TableStatus === 'ACTIVE', detail: `${t.tableName} in ${t.region} is ${table.TableStatus ?? 'unknown'}${table.TableStatus === 'ACTIVE' ? '' : ', expected ACTIVE'}` });
    const pitr = await engine.pitrStatus();
    checks.push(pitr.enabled ? { component: `${name}: point-in-time recovery`, ok: true, detail: `enabled, restorable from ${pitr.earliest ?? '?'} to ${pitr.latest ?? '?'}` } : { component: `${name}: point-in-time recovery`, ok: false, detail: engine.pitrDisabledSentence() });
  } catch (err) {
    checks.push({ component: `${name}: table`, ok: false, detail: describeError(err) });
  }
  for (const [region, loc] of [['primary', t.exports.primary], ['dr', t.exports.dr]] as const) {
    try {
      await ports.objectStore(loc.store).send(new HeadBucketCommand({ Bucket: loc.bucket }));
      checks.push({ component: `${name}: ${region} export bucket`, ok: true, detail: `${loc.store}/${loc.bucket} is reachable` });
    } catch (err) {
      checks.push({ component: `${name}: ${region} export bucket`, ok: false, detail: `${loc.store}/${loc.bucket} is not reachable: ${describeError(err)}` });
    }
  }
  return checks;
}

/**
 * Retention's removal of a dynamodb backup: the on-demand backup (only one named `lifeboat-...`)
 * and the export under its prefix in both buckets. Called by the shared retention activities.
 */
export async function deleteDynamoDbBackup(ports: Ports, row: { target: string; engine_backup_id: string; locations: Record<string, unknown> }): Promise<RegionDeletion[]> {
  const t = findDynamoDbTarget(ports.config, row.target);
  const out: RegionDeletion[] = [];
  const p = (row.locations.primary ?? {}) as { backupArn?: string; store?: string; bucket?: string; prefix?: string };
  const d = (row.locations.dr ?? {}) as { store?: string; bucket?: string; prefix?: string };
  if (!row.engine_backup_id.startsWith(DYNAMODB_BACKUP_PREFIX)) {
    return [{ region: 'primary', outcome: 'refused', detail: `backup ${row.engine_backup_id} is not named ${DYNAMODB_BACKUP_PREFIX}..., so lifeboat did not make it and leaves it alone` }];
  }
  const parts: string[] = [];
  if (p.backupArn) {
    const engine = new DynamoDbEngine({ tableName: t.tableName, region: t.region, drRegion: t.drRegion });
    parts.push((await engine.deleteBackup(p.backupArn, row.engine_backup_id)) === 'deleted' ? `deleted on-demand backup ${row.engine_backup_id}` : `on-demand backup ${row.engine_backup_id} was already gone`);
  }
  const under = (prefix: string | undefined) => (prefix && prefix.endsWith(row.engine_backup_id) ? `${prefix}/` : undefined);
  const primaryPrefix = under(p.prefix);
  if (p.store && p.bucket && primaryPrefix) parts.push(`${await deleteAllVersions(ports.objectStore(p.store), p.bucket, { prefix: primaryPrefix })} export object versions under ${p.bucket}/${primaryPrefix}`);
  out.push({ region: 'primary', outcome: 'deleted', detail: parts.join('; ') || 'nothing was recorded' });
  const drPrefix = under(d.prefix);
  if (d.store && d.bucket && drPrefix) {
    out.push({ region: 'dr', outcome: 'deleted', detail: `${await deleteAllVersions(ports.objectStore(d.store), d.bucket, { prefix: drPrefix })} export object versions under ${d.bucket}/${drPrefix}` });
  }
  return out;
}

/**
 * Retention's decisions with each DynamoDB target's own `retention` (when it has one) in place
 * of the file-wide policy for that target's series; the rules are the same pure ones, so the
 * newest verified backup of a target is always kept.
 */
export function withDynamoDbPolicies(config: LifeboatConfig, candidates: RetentionCandidate[], decisions: RetentionDecision[], now: Date): RetentionDecision[] {
  let out = decisions;
  for (const t of config.targets.dynamodb) {
    if (!t.retention) continue;
    const series = `${t.name}/database:${DYNAMODB_BACKUP_TYPE}`;
    const own = candidates.filter((c) => c.series === series);
    if (!own.length) continue;
    const redecided = new Map(planRetention(own, t.retention, now).map((d) => [d.id, d]));
    out = out.map((d) => redecided.get(d.id) ?? d);
  }
  return out;
}
