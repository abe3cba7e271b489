/**
 * Restore drills: choosing the backup to prove, the drill history of a target, and publishing
 * the report as evidence (both regions' write-once buckets, hashes in the catalog).
 */
import { resolveAlerts } from './alerts';
import { RESOLVED_BY_PASSED_DRILL } from '../domain/alerts';
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, objectivesFor } from '../config';
import type { BackupLocation } from '../domain/backup';
import { drillInstanceName, DrillEvidence, DrillSelection, EarlyDrillFailure, RestoreDrillInput } from '../domain/drill';
import { DrillHistoryEntry, DrillReport, DrillStep, drillReportHtml, drillReportJson, drillReportMarkdown, rtoPhases } from '../domain/drill-report';
import { LifeboatError } from '../domain/errors';
import { EvidenceLocation, EvidenceStore } from '../engines/evidence-store';
import { selectDirectoryDrillBackup } from './directory-drill';
import { selectFilesDrillBackup } from './files-drill';
import { selectSqliteDrillBackup } from './sqlite-drill';
import { Ports } from './ports';

interface BackupRow {
  id: string;
  engine_backup_id: string;
  backup_type: string;
  size_bytes: string | null;
  completed_at: Date | null;
  locations: { primary?: BackupLocation; dr?: BackupLocation };
}

const DAY_MS = 86400000;
/** The last drills a report's chart shows. */
const HISTORY = 11;

/** The write-once evidence buckets the config names: the primary region's, and the DR region's when set. */
export function evidenceStoreFor(config: Ports['config'], ports: Pick<Ports, 'objectStore'>): EvidenceStore {
  const e = config.evidence;
  const regionOf = (store: string) => config.objectStores.find((s) => s.name === store)?.region ?? store;
  const locations: EvidenceLocation[] = [{ region: regionOf(e.store), bucket: e.bucket, s3: ports.objectStore(e.store) }];
  if (e.drStore && e.drBucket) locations.push({ region: regionOf(e.drStore), bucket: e.drBucket, s3: ports.objectStore(e.drStore) });
  return new EvidenceStore(locations, { retentionDays: e.retentionDays, mode: e.lockMode });
}

export function drillActivities(ports: Ports) {
  const { config } = ports;

  const evidenceStore = () => evidenceStoreFor(config, ports);

  const activities = {
    /** The verified backup a drill proves: the newest, one at random within a window, or one by id. */
    async selectDrillBackup(input: RestoreDrillInput): Promise<DrillSelection> {
      // A bucket target's drill proves a files backup (kind: 'files', src/activities/files-drill.ts).
      if (config.targets.buckets.some((b) => b.name === input.target)) return selectFilesDrillBackup(ports, input);
      // A directory target's drill proves its newest (or named) archive (kind: 'directory', src/activities/directory-drill.ts).
      if (config.targets.directories.some((d) => d.name === input.target)) return selectDirectoryDrillBackup(ports, input);
      // A SQLite target's drill restores into a scratch file on its host (kind: 'sqlite', src/activities/sqlite-drill.ts).
      if (config.targets.sqlite.some((q) => q.name === input.target)) return selectSqliteDrillBackup(ports, input);
      const target = findDatabaseTarget(config, input.target);
      const region = input.fromRegion ?? 'primary';
      const rows = await ports.catalog.query<BackupRow>(
        "SELECT id::text, engine_backup_id, backup_type, size_bytes::text, completed_at, locations FROM backups WHERE target = $1 AND status = 'verified' ORDER BY completed_at DESC NULLS LAST",
        [target.name],
      );
      const usable = rows
        .map((row) => ({ row, location: row.locations[region] }))
        .filter((c): c is { row: BackupRow; location: BackupLocation } => !!c.location?.handle && c.location.verified !== false && !c.location.failed && !!(c.location.completedAt ?? c.row.completed_at));
      const choice = input.backup ?? 'latest';
      const describe = (c: { row: BackupRow; location: BackupLocation }, selectedBy: string, candidates: number): DrillSelection => ({
        backupId: c.location.handle.backupId,
        catalogId: c.row.id,
        type: c.row.backup_type,
        region,
        takenAt: c.location.completedAt ?? c.row.completed_at!.toISOString(),
        ...(c.location.sizeBytes ?? c.row.size_bytes ? { sizeBytes: Number(c.location.sizeBytes ?? c.row.size_bytes) } : {}),
        selectedBy,
        candidates,
        target: { name: target.name, engine: target.engine, environment: target.environment },
        rpoObjectiveSeconds: objectivesFor(config, target).rpo,
      });
      if (!usable.length) {
        throw new LifeboatError(`${target.name} has no verified backup in the ${region} region to drill; take one (lifeboat backup ${target.name}) and drill again.`, 'NO_BACKUP_TO_DRILL');
      }
      if (choice === 'latest') return describe(usable[0], 'as the newest verified backup', usable.length);
      if (choice === 'random') {
        const days = input.randomWithinDays ?? 30;
        const recent = usable.filter((c) => Date.now() - Date.parse(c.location.completedAt ?? c.row.completed_at!.toISOString()) <= days * DAY_MS);
        if (!recent.length) {
          throw new LifeboatError(`${target.name} has no verified backup from the last ${days} days in the ${region} region to drill at random; take a backup, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
        }
        // Chosen here, once: the workflow's history keeps the choice, so a replay restores the same one.
        return describe(recent[Math.floor(Math.random() * recent.length)], `at random among the ${recent.length} verified backups of the last ${days} days`, recent.length);
      }
      const named = usable.find((c) => c.location.handle.backupId === choice || c.location.handle.name === choice || c.row.engine_backup_id === choice);
      if (!named) {
        throw new LifeboatError(`${target.name} has no verified backup "${choice}" in the ${region} region; pick one from \`lifeboat backups list --target ${target.name}\`, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
      }
      return describe(named, 'by its id', usable.length);
    },

    /** The target's earlier drills, oldest first, for the report's RTO chart. */
    async drillHistory(targetName: string): Promise<DrillHistoryEntry[]> {
      const rows = await ports.catalog.query<{ workflow_id: string; started_at: Date; outcome: string; phases: Array<{ phase: string; seconds: number }> }>(
        'SELECT workflow_id, started_at, outcome, phases FROM drills WHERE target = $1 ORDER BY started_at DESC LIMIT $2',
        [targetName, HISTORY],
      );
      return rows.reverse().map((r) => ({ drillId: r.workflow_id, at: r.started_at.toISOString(), passed: r.outcome === 'passed', phases: r.phases }));
    },

    /**
     * Writes the report (JSON, Markdown, HTML) to every evidence bucket under object lock, then
     * records the drill with each rendering's SHA-256, and what it found of the backup it drilled.
     * Idempotent: a retry adopts the copies it wrote and the row it recorded.
     */
    async publishDrillReport(report: DrillReport, selection: DrillSelection, marksBackup = true): Promise<DrillEvidence[]> {
      const run = Context.current().info.workflowExecution;
      if (!run) throw new LifeboatError('a drill report is published on behalf of a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
      const store = evidenceStore();
      const base = `${config.evidence.prefix}drills/${report.target.name}/${report.drillId}`;
      const renderings: Array<[DrillEvidence['format'], string, string]> = [
        ['json', drillReportJson(report), 'application/json'],
        ['md', drillReportMarkdown(report), 'text/markdown; charset=utf-8'],
        ['html', drillReportHtml(report), 'text/html; charset=utf-8'],
      ];
      const evidence: DrillEvidence[] = [];
      for (const [format, text, contentType] of renderings) {
        Context.current().heartbeat({ writing: format });
        // A region that cannot take it now is recorded as missing and copied later (completeDrillEvidence).
        const receipt = await store.putWherePossible(`${base}/report.${format}`, Buffer.from(text, 'utf8'), contentType);
        evidence.push({
          format,
          key: receipt.key,
          sha256: receipt.sha256,
          bytes: receipt.bytes,
          copies: receipt.copies.map(({ region, bucket, versionId, retainUntil }) => ({ region, bucket, versionId, retainUntil })),
          ...(receipt.missing.length ? { missing: receipt.missing } : {}),
        });
      }
      await ports.catalog.query(
        `INSERT INTO drills (workflow_id, run_id, target, backup_id, backup_catalog_id, region, outcome, rto_seconds, rpo_seconds, phases, evidence, report, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (workflow_id, run_id) DO NOTHING`,
        [
          report.drillId,
          run.runId,
          report.target.name,
          selection.backupId,
          selection.catalogId || null,
          selection.region,
          report.outcome,
          report.rto.seconds,
          report.rpo.seconds,
          JSON.stringify(rtoPhases(report.steps)),
          JSON.stringify(evidence),
          JSON.stringify(report),
          report.startedAt,
          report.finishedAt,
        ],
      );
      if (report.outcome !== 'cancelled' && selection.catalogId && marksBackup) {
        await ports.catalog.query('UPDATE backups SET drill_outcome = $2, drilled_at = $3 WHERE id = $1', [selection.catalogId, report.outcome === 'passed' ? 'proven' : 'restore failed', report.finishedAt]);
      }
      // A passed drill clears an open "restore drill failed" alert of the target.
      if (report.outcome === 'passed') await resolveAlerts(ports.config, report.target.name, RESOLVED_BY_PASSED_DRILL, `drill ${report.drillId} of ${report.target.name} passed`);
      return evidence;
    },

    /**
     * The report of a drill that failed before its restore (no backup to drill, the restore
     * refused): what was asked, what was chosen if anything, each step up to the failure, and
     * the failure as the issue found. Published and recorded like any drill's, linked to the
     * backup chosen; that backup is not marked "restore failed", since its data was never tried
     * (a refusal is often about the request: the report says which, and the backup stays unproven).
     */
    async publishEarlyDrillFailure(attempt: EarlyDrillFailure): Promise<DrillEvidence[]> {
      const run = Context.current().info.workflowExecution;
      if (!run) throw new LifeboatError('a drill report is published on behalf of a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
      const { input, selection } = attempt;
      const region = selection?.region ?? input.fromRegion ?? 'primary';
      const directory = config.targets.directories.find((d) => d.name === input.target);
      const database = config.targets.databases.find((d) => d.name === input.target);
      const known = database ?? directory;
      const objectives = known ? objectivesFor(config, known) : config.objectives.database;
      const finishedAt = new Date().toISOString();
      const asked = input.backup ?? 'latest';
      const chosen: DrillSelection = selection ?? {
        backupId: 'none',
        catalogId: '',
        type: 'none',
        region,
        takenAt: 'never: no backup was chosen',
        selectedBy: `nowhere: the ${asked} verified backup in the ${region} region was asked for and none could be chosen`,
        candidates: 0,
        target: { name: input.target, engine: database?.engine ?? (directory ? 'directory-archive' : 'unknown (not in the config)'), environment: known?.environment ?? 'unknown' },
        rpoObjectiveSeconds: objectives.rpo,
      };
      const rpoSeconds = selection ? Math.max(0, Math.round((Date.parse(attempt.startedAt) - Date.parse(selection.takenAt)) / 1000)) : 0;
      const steps: DrillStep[] = attempt.steps;
      const report: DrillReport = {
        drillId: run.workflowId,
        runId: run.runId,
        startedAt: attempt.startedAt,
        finishedAt,
        outcome: 'failed',
        target: { name: chosen.target.name, kind: directory ? 'directory' : 'database', engine: chosen.target.engine, environment: chosen.target.environment },
        backup: { id: chosen.backupId, type: chosen.type, takenAt: chosen.takenAt, region, ...(chosen.sizeBytes !== undefined ? { sizeBytes: chosen.sizeBytes } : {}), selectedBy: chosen.selectedBy },
        restoredInto: { name: directory ? 'a scratch directory' : drillInstanceName(run.workflowId), detail: 'never created: the drill failed before its restore' },
        requestedBy: input.requestedBy ?? 'lifeboat drill',
        steps,
        validations: [],
        rto: { seconds: Math.round((Date.parse(finishedAt) - Date.parse(attempt.startedAt)) / 1000), objectiveSeconds: objectives.rto },
        rpo: { seconds: rpoSeconds, objectiveSeconds: chosen.rpoObjectiveSeconds },
        issues: [`the drill failed before its restore, at ${steps.at(-1)?.phase ?? 'its start'}: ${attempt.failure}`, 'nothing was restored, so no data was validated: the RTO shown is the time to this failure, not a restore time'],
        recommendations: selection
          ? [`Do not count on backup ${selection.backupId} until a drill of it passes: fix what refused the restore, then drill it again (lifeboat drill run ${input.target} --backup ${selection.backupId}${region === 'dr' ? ' --from-region dr' : ''}).`]
          : [`${input.target} has no backup lifeboat can prove in the ${region} region: take one (lifeboat backup ${input.target}), check that it is verified, and drill again.`],
        history: known ? await activities.drillHistory(input.target) : [],
      };
      return activities.publishDrillReport(report, chosen, false);
    },

    /**
     * Copies each rendering of a drill's report to the regions it is missing from (an evidence
     * bucket that was down when the drill published), from a copy that reads back as recorded,
     * and records the copies in the catalog. Fails (and is retried) while a region still refuses.
     */
    async completeDrillEvidence(workflowId: string): Promise<DrillEvidence[]> {
      const [row] = await ports.catalog.query<{ id: string; evidence: DrillEvidence[] }>('SELECT id::text, evidence FROM drills WHERE workflow_id = $1 ORDER BY recorded_at DESC LIMIT 1', [workflowId]);
      if (!row) throw new LifeboatError(`no drill with the workflow id "${workflowId}" is on record, so its evidence cannot be completed.`, 'UNKNOWN_DRILL');
      const store = evidenceStore();
      const types: Record<DrillEvidence['format'], string> = { json: 'application/json', md: 'text/markdown; charset=utf-8', html: 'text/html; charset=utf-8' };
      const evidence: DrillEvidence[] = [];
      for (const e of row.evidence) {
        Context.current().heartbeat({ copying: e.format });
        const done = await store.complete({ key: e.key, sha256: e.sha256, bytes: e.bytes, contentType: types[e.format], copies: e.copies.map((c) => ({ ...c, key: e.key, mode: config.evidence.lockMode })) });
        evidence.push({ format: e.format, key: e.key, sha256: e.sha256, bytes: e.bytes, copies: done.copies.map(({ region, bucket, versionId, retainUntil }) => ({ region, bucket, versionId, retainUntil })) });
      }
      await ports.catalog.query('UPDATE drills SET evidence = $2 WHERE id = $1', [row.id, JSON.stringify(evidence)]);
      return evidence;
    },

    /** Reads every copy of a drill's report back and checks it against the hashes on record. */
    async verifyDrillEvidence(workflowId: string): Promise<Array<{ format: string; region: string; ok: boolean; detail: string }>> {
      const [row] = await ports.catalog.query<{ evidence: DrillEvidence[] }>('SELECT evidence FROM drills WHERE workflow_id = $1 ORDER BY recorded_at DESC LIMIT 1', [workflowId]);
      if (!row) throw new LifeboatError(`no drill with the workflow id "${workflowId}" is on record: check the id with \`lifeboat drills list\`.`, 'UNKNOWN_DRILL');
      const store = evidenceStore();
      const out: Array<{ format: string; region: string; ok: boolean; detail: string }> = [];
      for (const e of row.evidence) {
        const checks = await store.verify({ key: e.key, sha256: e.sha256, bytes: e.bytes, contentType: '', copies: e.copies.map((c) => ({ ...c, key: e.key, mode: config.evidence.lockMode })) });
        for (const c of checks) out.push({ format: e.format, region: c.region, ok: c.ok, detail: c.detail });
        // A copy a region could not take yet is evidence missing, not evidence checked.
        for (const m of e.missing ?? []) out.push({ format: e.format, region: m.region, ok: false, detail: `${m.bucket} (${m.region}) holds no copy yet (${m.problem}); the drill's run copies it there when the region answers.` });
      }
      return out;
    },
  };
  return activities;
}
