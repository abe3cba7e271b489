/**
 * Every metric lifeboat itself exposes, with its type, labels and help: the one list the
 * collector, docs/metrics.md and the tests of the alert rules and the dashboard are checked
 * against. Label values are bounded: target names come from the config, the rest from fixed sets.
 */
import type { MetricType } from './exposition';

export interface MetricDefinition {
  name: string;
  type: MetricType;
  labels: readonly string[];
  help: string;
}

/** Upper bounds of the duration histograms, in seconds: from a small test database to a day-long full backup. */
export const DURATION_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400];

/** Phases of a backup whose durations the catalog keeps (see docs/metrics.md for where each comes from). */
export const BACKUP_PHASES = ['backup', 'verify', 'dr-copy', 'dr-verify', 'total'] as const;

const define = <N extends string>(name: N, type: MetricType, labels: readonly string[], help: string) => ({ name, type, labels, help }) as const;

export const METRICS = {
  backups: define('lifeboat_backups_total', 'counter', ['target', 'kind', 'region', 'outcome'], 'Finished backups recorded in the catalog, per copy: outcome success or failure; region primary, dr, or none for a backup that failed before any copy was made.'),
  lastBackupSuccess: define('lifeboat_last_backup_success', 'gauge', ['target', 'kind'], 'Whether the newest finished backup of the target and kind succeeded in every region: 1, or 0 when it failed or one of its copies did.'),
  backupBytes: define('lifeboat_backup_bytes_total', 'counter', ['target', 'region'], 'Bytes of successful backup copies recorded in the catalog, per region.'),
  storedBytes: define('lifeboat_backup_stored_bytes', 'gauge', ['target', 'region'], 'Bytes of the backups that are live now (verified or complete, not expired or deleted), per region.'),
  phaseDuration: define('lifeboat_backup_phase_duration_seconds', 'histogram', ['target', 'kind', 'phase'], 'Duration of each phase of successful backups: backup, verify, dr-copy, dr-verify, total.'),
  lastVerifiedAge: define('lifeboat_last_verified_backup_age_seconds', 'gauge', ['target'], 'Age of the newest verified backup of the target (+Inf when it has none).'),
  drCopyLag: define('lifeboat_backup_dr_copy_lag_seconds', 'gauge', ['target', 'mode'], "The newest verified DR copy's lag: seconds from its primary copy's completion to the DR copy's verification (absent until a backup records one); mode is how it was made (repository-copy or second-backup)."),
  lastVerifiedTimestamp: define('lifeboat_last_verified_backup_timestamp_seconds', 'gauge', ['target'], 'When the newest verified backup of the target finished (Unix time; absent when it has none).'),
  recoveryPointLag: define('lifeboat_recovery_point_lag_seconds', 'gauge', ['target'], 'Writes the target would lose if its source failed now: the age of the newest WAL segment in the primary repository (0 when every write is archived), or for RDS the time since LatestRestorableTime. Served by the process that runs the target\'s pgBackRest (its agent, else the central workers).'),
  continuousArchiving: define('lifeboat_continuous_archiving', 'gauge', ['target'], 'Whether the target\'s RPO is kept by continuous archiving (1: its recovery point lag is the RPO figure) or by backups alone (0: the last verified backup\'s age is). pgBackRest targets: 1, from the config (central workers); RDS: whether automated backups are on, as last read.'),
  rpoObjective: define('lifeboat_rpo_objective_seconds', 'gauge', ['target'], "The target's recovery point objective from the config."),
  rtoObjective: define('lifeboat_rto_objective_seconds', 'gauge', ['target'], "The target's recovery time objective from the config."),
  drills: define('lifeboat_drills_total', 'counter', ['target', 'outcome'], 'Restore drills recorded in the catalog: outcome passed, failed or cancelled.'),
  drillLastSuccess: define('lifeboat_drill_last_success', 'gauge', ['target'], 'Whether the newest finished (not cancelled) drill of the target passed: 1, or 0 when it failed; absent before the first drill.'),
  drillLastPassedAge: define('lifeboat_drill_last_passed_age_seconds', 'gauge', ['target'], 'Age of the newest passed drill of the target (+Inf when none passed).'),
  drillCadence: define('lifeboat_drill_cadence_seconds', 'gauge', ['target'], "How often the target must be drilled: its drill.cadence, else its kind's default (monthly for databases and DynamoDB tables, quarterly for buckets and configuration directories)."),
  drillPhaseDuration: define('lifeboat_drill_phase_duration_seconds', 'histogram', ['target', 'phase'], 'Duration of each phase of passed restore drills, as their reports measured it (selecting, restoring, replaying-wal, starting, validating, ...).'),
  drillMeasuredRto: define('lifeboat_drill_measured_rto_seconds', 'gauge', ['target'], 'RTO measured by the newest passed drill of the target.'),
  predictedRto: define('lifeboat_rto_predicted_seconds', 'gauge', ['target'], 'RTO a restore would take now, as predicted by the newest drill report that made a prediction.'),
  restores: define('lifeboat_restores_total', 'counter', ['target', 'outcome'], 'Point-in-time restores recorded in the catalog, by outcome (restored, restored-and-cut-over, rejected, expired, verification-failed, failed, cancelled).'),
  restorePhaseDuration: define('lifeboat_restore_phase_duration_seconds', 'histogram', ['target', 'phase'], "Duration of each phase of point-in-time restores that measured their RTO (validation, waitingForApproval, restore, walReplay, verification, cutover), and their whole RTO (phase total)."),
  approvalsPending: define('lifeboat_approvals_pending', 'gauge', ['kind', 'target', 'gate'], 'Running workflows waiting at an approval gate.'),
  approvalOldestAge: define('lifeboat_approval_pending_oldest_age_seconds', 'gauge', ['kind', 'target', 'gate'], 'How long the longest-waiting of those workflows has waited at its gate.'),
  retentionDeletions: define('lifeboat_retention_deletions_total', 'counter', ['target', 'outcome'], 'Retention decisions on record: a backup expired (outcome expired), or one it had to leave although due (outcome refused: object lock, legal hold, dependants; counted at each retention run that leaves it).'),
  backupDeletions: define('lifeboat_backup_deletions_total', 'counter', ['target', 'outcome'], 'Requests of `lifeboat backups delete`: the backup deleted (outcome deleted), or the request refused (outcome refused).'),
  replicaLag: define('lifeboat_replica_lag_seconds', 'gauge', ['target'], "How far the target's newest successful backup copy in the DR region is behind its newest successful one in the primary region, by the time each backup was taken (0: the DR region holds the newest; +Inf: no DR copy succeeded). From the catalog; targets without DR copies are absent."),
  replicaLagLimit: define('lifeboat_replica_lag_limit_seconds', 'gauge', [], 'storage.replicaLagLimit from the config: the lag LifeboatReplicaLagOverLimit fires beyond.'),
  storageGrowth: define('lifeboat_storage_growth_bytes_per_day', 'gauge', ['region', 'window'], "Growth of the live backup bytes the catalog records, per region (primary, dr, all): the slope of a least-squares line through the daily figures of the last 7 days (window 7d) or 90 days (window 90d)."),
  storageBudget: define('lifeboat_storage_budget_bytes', 'gauge', ['region'], 'The storage budget from the config: storage.regionBudgetBytes per region, storage.budgetBytes as region all.'),
  storageBytes: define('lifeboat_storage_bytes', 'gauge', ['target', 'region', 'storage_class'], "Bytes the target's backups take in the object stores (every object version under its prefixes: backup sets, pgBackRest WAL, noncurrent versions), per region and S3 storage class. Listed every storage.objectStoreSeconds."),
  storageBudgetReached: define('lifeboat_storage_budget_reached_seconds', 'gauge', ['region'], 'Seconds until the region\'s budget (region all: the global one) is reached at the 90-day growth rate, from what the object stores hold now (0: already over; +Inf: not growing). Absent without a budget or history.'),
  retentionSteadyState: define('lifeboat_storage_retention_steady_state_bytes', 'gauge', ['region'], 'Bytes the retention policy keeps in steady state at the observed backup cadence and sizes, WAL included (see `lifeboat storage`).'),
  retentionMonthlyCost: define('lifeboat_storage_retention_monthly_cost', 'gauge', ['region'], 'What that steady state costs a month at storage.pricePerGbMonth (in the prices\' currency); absent without prices.'),
  sourceUp: define('lifeboat_metrics_source_up', 'gauge', ['source'], 'Whether the last reading of a source succeeded: catalog, catalog-durations (the duration histograms), temporal (pending approvals), recovery-point (the WAL archives), object-stores (the storage listing), temporal-sdk (the SDK metrics appended).'),
} as const;

export const METRIC_NAMES: readonly string[] = Object.values(METRICS).map((m) => m.name);

/** The series names a family exposes (a histogram's _bucket, _sum and _count). */
export function seriesNames(def: Pick<MetricDefinition, 'name' | 'type'>): string[] {
  return def.type === 'histogram' ? [`${def.name}_bucket`, `${def.name}_sum`, `${def.name}_count`] : [def.name];
}
