/**
 * The compliance report's I/O: the facts of each target (catalog, the engine's RPO measure, the
 * config's objectives, cadences and retention), and publishing the judged report to both
 * regions' write-once evidence buckets with its SHA-256 in the catalog (compliance_reports).
 */
import { Context } from '@temporalio/activity';
import { drillCalendarOf, findTarget, objectivesFor } from '../config';
import { cadenceSeconds, ComplianceEvidence, ComplianceReport, complianceReportJson, complianceReportMarkdown, ComplianceTargetKind, ScheduleCalendar, scheduleGapDays, TargetFacts } from '../domain/compliance';
import { describeError, LifeboatError } from '../domain/errors';
import { rpoStatus } from './backup';
import { dynamoDbObjectives, dynamoDbRecoveryPoint, findDynamoDbTarget, isDynamoDbTarget } from './dynamodb';
import { evidenceStoreFor } from './drills';
import { Ports } from './ports';

interface LiveBackupRow {
  id: string;
  engine: string;
  engine_backup_id: string;
  status: string;
  completed_at: Date;
  legal_hold: boolean;
  details: Record<string, unknown>;
}

/** The physical/logical/file family a backup belongs to, as retention judges series. */
const familyOf = (engine: string) => (engine === 'pg_dump' ? 'logical' : engine === 'file-backup' ? 'files' : engine === 'directory-archive' ? 'directory' : 'physical');

/** The longest gap a backup calendar leaves between runs, plus an hour for the run itself: the RPO a scheduled SQLite target is judged by. */
export function scheduleGapSeconds(s: ScheduleCalendar): number {
  return scheduleGapDays(s) * 86400 + 3600;
}

export function complianceActivities(ports: Ports) {
  const { config } = ports;

  return {
    /** Every target the config declares, databases first, DynamoDB tables last. */
    async complianceTargets(): Promise<Array<{ target: string; kind: ComplianceTargetKind }>> {
      return [
        ...config.targets.databases.map((d) => ({ target: d.name, kind: 'database' as const })),
        ...config.targets.buckets.map((b) => ({ target: b.name, kind: 'bucket' as const })),
        ...config.targets.directories.map((d) => ({ target: d.name, kind: 'directory' as const })),
        ...config.targets.sqlite.map((q) => ({ target: q.name, kind: 'sqlite' as const })),
        ...config.targets.dynamodb.map((d) => ({ target: d.name, kind: 'dynamodb' as const })),
      ];
    },

    /** What the compliance report judges of one target, read now. */
    async complianceFacts(targetName: string): Promise<TargetFacts> {
      const table = isDynamoDbTarget(config, targetName) ? findDynamoDbTarget(config, targetName) : undefined;
      const directory = table ? undefined : config.targets.directories.find((d) => d.name === targetName);
      const sqlite = table || directory ? undefined : config.targets.sqlite.find((q) => q.name === targetName);
      const target = table ?? directory ?? sqlite ?? findTarget(config, targetName);
      const kind: ComplianceTargetKind = table ? 'dynamodb' : directory ? 'directory' : sqlite ? 'sqlite' : 'engine' in target ? 'database' : 'bucket';
      const objectives = table ? dynamoDbObjectives(config, table) : objectivesFor(config, directory ?? sqlite ?? findTarget(config, targetName));
      const engines = kind === 'database' ? ['pgbackrest', 'rds'] : kind === 'dynamodb' ? ['dynamodb'] : kind === 'directory' ? ['directory-archive'] : kind === 'sqlite' ? ['sqlite3'] : ['file-backup'];
      const policy = table?.retention ?? config.retention;
      // A SQLite target is backed up before risky operations: without a schedule no RPO is judged
      // (only that a verified backup exists); with one, the longest gap its calendar leaves.
      if (sqlite?.schedule) objectives.rpo = scheduleGapSeconds(sqlite.schedule);
      const onDemand = !!sqlite && !sqlite.schedule;

      const [lastVerified] = await ports.catalog.query<{ at: Date }>(
        `SELECT coalesce(completed_at, verified_at) AS at FROM backups WHERE target = $1 AND engine = ANY($2) AND status = 'verified' AND coalesce(completed_at, verified_at) IS NOT NULL
         ORDER BY 1 DESC LIMIT 1`,
        [target.name, engines],
      );
      let measured: TargetFacts['recoveryPoint']['measured'] = onDemand ? { breached: false, detail: `backed up on demand before risky operations (no schedule), so no RPO is judged; \`lifeboat backup ${targetName} --wait\` takes one` } : undefined;
      if (kind === 'database') {
        try {
          const rpo = await rpoStatus(ports, target.name);
          if (rpo.basis === 'wal-archive') measured = { breached: rpo.breached, detail: rpo.detail };
        } catch (err) {
          measured = { breached: true, detail: `the RPO could not be measured (${describeError(err)})` };
        }
      } else if (table) {
        // Point-in-time recovery, where enabled, is the RPO; off, the last backup's age is.
        try {
          const pitr = await dynamoDbRecoveryPoint(ports, table.name);
          if (pitr) measured = { breached: pitr.breached, detail: pitr.detail };
        } catch (err) {
          measured = { breached: true, detail: `point-in-time recovery of ${table.tableName} could not be read (${describeError(err)})` };
        }
      }

      // The drill cadence: the target's own calendar (drill.cadence), else its kind's drill schedule.
      const { calendar, source } = drillCalendarOf(config, target, kind);
      const cadence = cadenceSeconds(calendar, kind, source);
      const [lastPassed] = await ports.catalog.query<{ workflow_id: string; finished_at: Date }>(
        "SELECT workflow_id, finished_at FROM drills WHERE target = $1 AND outcome = 'passed' ORDER BY finished_at DESC LIMIT 1",
        [target.name],
      );

      const live = await ports.catalog.query<LiveBackupRow>(
        `SELECT id::text AS id, engine, engine_backup_id, status, completed_at, legal_hold, details FROM backups
         WHERE target = $1 AND status IN ('complete','verified') AND completed_at IS NOT NULL`,
        [target.name],
      );

      const failedBackups = await ports.catalog.query<{ engine_backup_id: string; at: Date; failure: string | null }>(
        `SELECT engine_backup_id, coalesce(completed_at, started_at, created_at) AS at, failure FROM backups f
         WHERE target = $1 AND engine = ANY($2) AND status = 'failed'
           AND coalesce(completed_at, started_at, created_at) > coalesce((SELECT max(coalesce(completed_at, verified_at)) FROM backups v WHERE v.target = f.target AND v.engine = ANY($2) AND v.status = 'verified'), '-infinity')
         ORDER BY 2`,
        [target.name, engines],
      );
      const failedDrills = await ports.catalog.query<{ workflow_id: string; finished_at: Date; issue: string | null }>(
        `SELECT workflow_id, finished_at, report->'issues'->>0 AS issue FROM drills f
         WHERE target = $1 AND outcome = 'failed'
           AND finished_at > coalesce((SELECT max(finished_at) FROM drills p WHERE p.target = f.target AND p.outcome = 'passed'), '-infinity')
         ORDER BY finished_at`,
        [target.name],
      );

      return {
        target: target.name,
        kind,
        environment: target.environment,
        recoveryPoint: { objectiveSeconds: objectives.rpo, ...(lastVerified ? { lastVerifiedBackupAt: lastVerified.at.toISOString() } : {}), ...(measured ? { measured } : {}) },
        drill: { cadenceSeconds: cadence.seconds, cadence: cadence.cadence, ...(lastPassed ? { lastPassedAt: lastPassed.finished_at.toISOString(), lastPassedId: lastPassed.workflow_id } : {}) },
        retention: {
          policy: { daily: policy.daily, weekly: policy.weekly, monthly: policy.monthly },
          ...(onDemand ? { onDemand } : {}),
          backups: live.map((r) => ({
            id: r.id,
            name: r.engine_backup_id,
            completedAt: r.completed_at.toISOString(),
            verified: r.status === 'verified',
            series: familyOf(r.engine),
            ...(r.legal_hold ? { legalHold: true } : {}),
            ...(Array.isArray(r.details?.dependsOn) ? { dependsOn: (r.details.dependsOn as unknown[]).map(String) } : {}),
          })),
        },
        openFailures: {
          backups: failedBackups.map((b) => ({ id: b.engine_backup_id, at: b.at.toISOString(), failure: b.failure ?? 'no reason recorded' })),
          drills: failedDrills.map((d) => ({ id: d.workflow_id, at: d.finished_at.toISOString(), issue: d.issue ?? 'see its report' })),
        },
      };
    },

    /**
     * Writes the report (JSON, Markdown) to every evidence bucket under object lock and records
     * it with each rendering's SHA-256. Idempotent: a retry adopts what it wrote.
     */
    async publishComplianceReport(report: ComplianceReport): Promise<ComplianceEvidence[]> {
      const run = Context.current().info.workflowExecution;
      if (!run) throw new LifeboatError('a compliance report is published on behalf of a workflow run, and this activity was called outside one.', 'NO_WORKFLOW_RUN');
      const store = evidenceStoreFor(config, ports);
      const base = `${config.evidence.prefix}compliance/${report.reportId}`;
      const evidence: ComplianceEvidence[] = [];
      for (const [format, text, contentType] of [
        ['json', complianceReportJson(report), 'application/json'],
        ['md', complianceReportMarkdown(report), 'text/markdown; charset=utf-8'],
      ] as const) {
        Context.current().heartbeat({ writing: format });
        const receipt = await store.put(`${base}/report.${format}`, Buffer.from(text, 'utf8'), contentType);
        evidence.push({ format, key: receipt.key, sha256: receipt.sha256, bytes: receipt.bytes, copies: receipt.copies.map(({ region, bucket, versionId, retainUntil }) => ({ region, bucket, versionId, retainUntil })) });
      }
      await ports.catalog.query(
        `INSERT INTO compliance_reports (workflow_id, run_id, generated_at, ok, breaches, report, evidence)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workflow_id, run_id) DO NOTHING`,
        [report.reportId, run.runId, report.generatedAt, report.ok, report.breaches, JSON.stringify(report), JSON.stringify(evidence)],
      );
      return evidence;
    },
  };
}
