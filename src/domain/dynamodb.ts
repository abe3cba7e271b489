/**
 * DynamoDB tables as a target kind: the inputs, plans and reports of the dynamodbBackup,
 * dynamodbRestore and dynamodbDrill workflows, and the names lifeboat gives what it makes.
 * JSON-safe and free of I/O (workflow code imports it).
 *
 * What lifeboat makes, and how it knows it is its own:
 *   on-demand backups   named `lifeboat-<workflow id>` (BackupName): DynamoDB backups take no
 *                       tags, so the name prefix is the mark; retention deletes only those.
 *   exports             under `<prefix>/<backup name>/` in the export bucket of each region.
 *   restored tables     tagged `lifeboat:workflow-id` and `lifeboat:run-id` with the run that
 *                       made them; lifeboat deletes a table only when those tags name its run.
 */
import type { DrillEvidence, DrillSelection } from './drill';
import type { DrillHistoryEntry, DrillReport, DrillStep, DrillValidation } from './drill-report';
import type { BackupVerification } from './ports';

/** The mark on every on-demand backup lifeboat makes: retention deletes only backups named so. */
export const DYNAMODB_BACKUP_PREFIX = 'lifeboat-';
/** backup_type and engine of dynamodb rows in the catalog. */
export const DYNAMODB_BACKUP_TYPE = 'dynamodb';

/** Tags lifeboat puts on the tables it restores. */
export const DYNAMODB_TAGS = {
  managed: 'lifeboat:managed',
  workflowId: 'lifeboat:workflow-id',
  runId: 'lifeboat:run-id',
  restoredFrom: 'lifeboat:restored-from',
  purpose: 'lifeboat:purpose',
} as const;

/** DynamoDB table and backup names: 3 to 255 of letters, digits, `_`, `-` and `.`. */
export const DYNAMODB_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
export const DYNAMODB_NAME_RULE = '3 to 255 letters, digits, underscores, hyphens and dots';

/** Why `name` cannot be a DynamoDB table name, or undefined when it can. */
export function tableNameProblem(name: string): string | undefined {
  return DYNAMODB_NAME.test(name) ? undefined : `"${name}" is not a DynamoDB table name (${DYNAMODB_NAME_RULE})`;
}

/** The client token of the import a workflow run starts into `intoTable`: a retry of the same run sends the same one, and only that run's import carries it. */
export function importClientToken(workflowId: string, intoTable: string): string {
  return `lb-${shortHash(`${workflowId}:import`)}${shortHash(intoTable)}`;
}

/** A stable 32-bit FNV-1a hash in hex: deterministic names without node:crypto (workflow-safe). */
export function shortHash(value: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The on-demand backup's name from the workflow id: a retried activity, or a retried workflow
 * with the same id, looks this name up and adopts the backup instead of making a second one.
 */
export function dynamoDbBackupName(workflowId: string): string {
  const clean = workflowId.replace(/[^A-Za-z0-9_.-]+/g, '-');
  const name = `${DYNAMODB_BACKUP_PREFIX}${clean}`;
  if (name.length <= 255 && clean === workflowId) return name;
  return `${name.slice(0, 255 - 9)}-${shortHash(workflowId)}`;
}

/** The export's client token (DynamoDB makes a repeated request with it a no-op for 8 hours). */
export function dynamoDbExportToken(workflowId: string): string {
  return `lb-${shortHash(`${workflowId}:export`)}${shortHash(`export:${workflowId}`)}`;
}

/** A drill's table: named after the drill run, so a retried activity finds the same one. */
export function drillTableName(tableName: string, workflowId: string): string {
  const base = `${tableName}-drill-${shortHash(workflowId)}`;
  return base.length <= 255 ? base : `${tableName.slice(0, 255 - 15)}-drill-${shortHash(workflowId)}`;
}

/** Whether `name` has the form drillTableName gives a drill table of `tableName`: the sweeper looks at no other table. */
export function isDrillTableName(name: string, tableName: string): boolean {
  const m = /^(.+)-drill-[0-9a-f]{8}$/.exec(name);
  return !!m && (m[1] === tableName || (name.length === 255 && m[1] === tableName.slice(0, 255 - 15)));
}

export interface ExportLocation {
  /** The object store (objectStores) lifeboat reads and writes the export through. */
  store: string;
  bucket: string;
  /** Key prefix of this backup's export: `<configured prefix>/<backup name>`. */
  prefix: string;
}

/** What a table needs to be created again from an export (ImportTable in the DR region). */
export interface TableShape {
  keySchema: Array<{ AttributeName: string; KeyType: string }>;
  attributeDefinitions: Array<{ AttributeName: string; AttributeType: string }>;
  billingMode: string;
}

export interface DynamoDbBackupInput {
  target: string;
  requestedBy?: string;
  /** Injectable waits (tests): time between DescribeBackup/DescribeExport polls and the give-up time. */
  timings?: { pollIntervalMs?: number; waitTimeoutMs?: number };
}

export interface DynamoDbBackupPlan {
  target: string;
  environment: string;
  region: string;
  drRegion: string;
  tableName: string;
  tableArn: string;
  backupName: string;
  exportToken: string;
  shape: TableShape;
  primary: ExportLocation;
  dr: ExportLocation;
  pollIntervalMs: number;
  waitTimeoutMs: number;
}

export interface DynamoDbBackupDetails {
  backupArn: string;
  backupName: string;
  status: string;
  sizeBytes: number;
  /** DynamoDB's item count of the source table (refreshed about every 6 hours: approximate). */
  itemCount?: number;
  createdAt: string;
  adopted: boolean;
}

export interface DynamoDbExportDetails {
  exportArn: string;
  status: string;
  exportTime: string;
  /** Key of manifest-summary.json in the primary export bucket. */
  manifestKey: string;
  /** The folder holding manifests and data/: `<prefix>/AWSDynamoDB/<export id>`. */
  exportFolder: string;
  itemCount: number;
  billedSizeBytes: number;
}

export interface DynamoDbExportVerification extends BackupVerification {
  region: 'primary' | 'dr';
  store: string;
  bucket: string;
  itemCount: number;
  files: number;
  bytes: number;
}

export interface DynamoDbBackupReport {
  workflowId: string;
  target: string;
  outcome: 'verified' | 'failed' | 'cancelled';
  plan?: DynamoDbBackupPlan;
  /** The on-demand backup as soon as it was asked for: retention finds it even when waiting for it failed. */
  started?: { backupArn: string; adopted: boolean };
  backup?: DynamoDbBackupDetails;
  export?: DynamoDbExportDetails;
  drCopy?: { copied: number; skipped: number; bytes: number };
  verifications: DynamoDbExportVerification[];
  catalogId?: string;
  failure?: string;
}

export type DynamoDbRestoreSource = { kind: 'time'; at: string } | { kind: 'latest' } | { kind: 'backup'; backup: string };

export interface DynamoDbRestoreInput {
  target: string;
  source: DynamoDbRestoreSource;
  /** The NEW table; refused if it exists or is the source. */
  intoTable: string;
  /** `dr`: ImportTable in the DR region from the DR copy of a backup's export. */
  fromRegion?: 'primary' | 'dr';
  requestedBy: string;
  reason: string;
  timings?: { remindAfterMs?: number; abortAfterMs?: number; pollIntervalMs?: number; waitTimeoutMs?: number };
}

export type DynamoDbRestoreMethod = 'point-in-time' | 'from-backup' | 'import';

export interface DynamoDbRestorePlan {
  target: string;
  environment: string;
  region: string;
  sourceTable: string;
  sourceTableArn?: string;
  intoTable: string;
  method: DynamoDbRestoreMethod;
  /** What is restored, for people: `2026-12-01T06:00:00.000Z`, `latest`, `backup lifeboat-...`. */
  pointLabel: string;
  restoreTime?: string;
  backup?: { catalogId: string; backupArn: string; backupName: string; itemCount: number; export?: ExportLocation & { exportFolder: string } };
  shape?: TableShape;
  /** The item count the restored table must have (the backup's export), when known. */
  expectedItems?: number;
  /** When validation saw the destination absent: a table there made before this was not made by this run. */
  validatedAt: string;
  timings: { remindAfterMs: number; abortAfterMs: number; pollIntervalMs: number; waitTimeoutMs: number };
}

export interface DynamoDbTableCheck {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  itemCount: number;
}

export type DynamoDbRestoreOutcome = 'restored' | 'rejected' | 'expired' | 'verification-failed' | 'failed' | 'cancelled';

export interface DynamoDbRestoreReport {
  workflowId: string;
  outcome: DynamoDbRestoreOutcome;
  target: string;
  requestedBy: string;
  reason: string;
  purpose: 'restore' | 'drill';
  plan?: DynamoDbRestorePlan;
  table?: { name: string; arn?: string; region: string };
  verification?: DynamoDbTableCheck;
  phases: { validation: number; waitingForApproval: number; restore: number; verify: number; cleanup: number };
  cleanup: string[];
  failure?: string;
  /** A drill's report as published to the evidence buckets (drills from before 'dynamodb-drill-evidence' have none). */
  evidence?: DrillEvidence[];
}

export interface DynamoDbDrillInput {
  target: string;
  /** A catalog id, a backup name, or latest (default). */
  backup?: string;
  fromRegion?: 'primary' | 'dr';
  requestedBy: string;
  timings?: DynamoDbRestoreInput['timings'];
}

/** A table lifeboat made, as the activities that delete it must prove. */
export interface DynamoDbTableOwner {
  workflowId: string;
  runId: string;
}

/** The primary and DR cells of a dynamodb row in `lifeboat backups list`: the on-demand backup and the DR copy of its export. */
export function dynamoDbListCells(backupName: string, locations: Record<string, { bucket?: string; exportFolder?: string } | undefined>): { primary?: string; dr?: string } {
  const dr = locations.dr;
  return { primary: backupName, ...(dr?.bucket && dr.exportFolder ? { dr: `s3://${dr.bucket}/${dr.exportFolder}` } : {}) };
}

/** What the drill's report needs beyond the workflow's own report: read from the catalog and the config when it is published. */
export interface DynamoDbDrillFacts {
  runId: string;
  startedAt: string;
  finishedAt: string;
  environment: string;
  engineLabel: string;
  /** The backup drilled as the catalog has it (absent when validation chose none). */
  backup?: { takenAt: string; sizeBytes?: number };
  objectives: { rpo: number; rto: number };
  history: DrillHistoryEntry[];
  /** What the drill asked for: latest or a backup's id. */
  asked: string;
}

/** How each check of a restored table is made, in words, for the report's validation table. */
const CHECK_METHODS: Record<string, string> = {
  active: 'DescribeTable: the table is ACTIVE',
  'key-schema': "the table's key schema against the source table's",
  'item-count': "Scan with Select COUNT over every page, against the item count of the backup's export manifest",
};

/**
 * A DynamoDB drill as a restore drill's report (the one model every drill publishes: JSON,
 * Markdown, HTML in the evidence buckets, a row in `drills`), and the selection that row names.
 * Pure, so the activity that publishes it and the unit tests build the same thing.
 */
export function dynamoDbDrillReport(r: DynamoDbRestoreReport, f: DynamoDbDrillFacts): { report: DrillReport; selection: DrillSelection } {
  const plan = r.plan;
  const region: 'primary' | 'dr' = plan?.method === 'import' ? 'dr' : 'primary';
  const outcome: DrillReport['outcome'] = r.outcome === 'restored' ? 'passed' : r.outcome === 'cancelled' ? 'cancelled' : 'failed';
  const backupId = plan?.backup?.backupName ?? 'none';
  const selectedBy = f.asked === 'latest' ? 'as the newest verified backup' : `by its id (${f.asked})`;
  const selection: DrillSelection = {
    backupId,
    catalogId: plan?.backup?.catalogId ?? '',
    type: DYNAMODB_BACKUP_TYPE,
    region,
    takenAt: f.backup?.takenAt ?? 'never: no backup was chosen',
    ...(f.backup?.sizeBytes !== undefined ? { sizeBytes: f.backup.sizeBytes } : {}),
    selectedBy: plan?.backup ? selectedBy : `nowhere: ${f.asked} was asked for and none could be chosen`,
    candidates: plan?.backup ? 1 : 0,
    target: { name: r.target, engine: f.engineLabel, environment: f.environment },
    rpoObjectiveSeconds: f.objectives.rpo,
  };
  // Steps from the phases the workflow timed, laid end to end from the drill's start.
  const steps: DrillStep[] = [];
  let at = Date.parse(f.startedAt);
  const how = plan?.method === 'import' ? `ImportTable in ${plan.region} from the DR copy of the export` : plan?.method === 'from-backup' ? `RestoreTableFromBackup in ${plan.region}` : `a restore in ${plan?.region ?? 'the table\'s region'}`;
  const phases: Array<[string, number, string, boolean]> = [
    ['validating', r.phases.validation, plan ? `chose ${plan.pointLabel}; ${plan.intoTable} was free in ${plan.region}` : `the request was refused: ${r.failure ?? 'see the failure'}`, true],
    ['restoring', r.phases.restore, plan ? `${how} into ${plan.intoTable}, tagged with this run` : '', !!plan && (r.phases.restore > 0 || !!r.verification)],
    ['verifying', r.phases.verify, r.verification ? `${r.verification.itemCount} items counted` : '', !!r.verification],
    ['cleaning-up', r.phases.cleanup, r.cleanup.join('; '), r.cleanup.length > 0],
  ];
  for (const [phase, seconds, detail, happened] of phases) {
    if (!happened) continue;
    steps.push({ phase, startedAt: new Date(at).toISOString(), seconds, detail });
    at += seconds * 1000;
  }
  const validations: DrillValidation[] = (r.verification?.checks ?? []).map((c) => ({ name: c.name, method: CHECK_METHODS[c.name] ?? c.name, ok: c.ok, detail: c.detail }));
  const rtoSeconds = r.phases.validation + r.phases.restore + r.phases.verify;
  const rpoSeconds = f.backup ? Math.max(0, Math.round((Date.parse(f.startedAt) - Date.parse(f.backup.takenAt)) / 1000)) : 0;
  const issues: string[] = [];
  if (r.failure && outcome !== 'passed') issues.push(r.failure);
  for (const c of r.cleanup) if (!/^deleted table /.test(c)) issues.push(c);
  const recommendations: string[] = [];
  if (outcome === 'failed') recommendations.push(plan?.backup ? `Do not count on backup ${backupId} until a drill of it passes: fix what the issue says, then drill it again (lifeboat drill run ${r.target} --backup ${backupId}${region === 'dr' ? ' --from-region dr' : ''}).` : `${r.target} has no backup lifeboat could drill: take one (lifeboat backup ${r.target}) and drill again.`);
  if (outcome === 'passed' && rtoSeconds > f.objectives.rto) recommendations.push(`The drill took ${rtoSeconds} s to prove the table, over the RTO objective of ${f.objectives.rto} s: drill from the other region, or revisit the objective.`);
  if (f.backup && rpoSeconds > f.objectives.rpo) recommendations.push(`The backup drilled was ${rpoSeconds} s old, over the RPO objective of ${f.objectives.rpo} s; point-in-time recovery covers the gap for a restore in ${plan?.region ?? 'the primary region'}, not for the DR region, whose copy is as old as the last backup.`);
  const report: DrillReport = {
    drillId: r.workflowId,
    runId: f.runId,
    startedAt: f.startedAt,
    finishedAt: f.finishedAt,
    outcome,
    target: { name: r.target, kind: 'dynamodb', engine: f.engineLabel, environment: f.environment },
    backup: { id: backupId, type: DYNAMODB_BACKUP_TYPE, takenAt: selection.takenAt, region, ...(f.backup?.sizeBytes !== undefined ? { sizeBytes: f.backup.sizeBytes } : {}), selectedBy: selection.selectedBy },
    restoredInto: {
      name: plan?.intoTable ?? r.table?.name ?? 'none',
      detail: plan ? `a new table in ${plan.region} (${how}), tagged lifeboat:workflow-id/lifeboat:run-id with this run; ${r.cleanup.length ? r.cleanup.join('; ') : 'not deleted'}` : 'never created: the drill failed before its restore',
    },
    requestedBy: r.requestedBy,
    steps,
    validations,
    rto: { seconds: rtoSeconds, objectiveSeconds: f.objectives.rto },
    rpo: { seconds: rpoSeconds, objectiveSeconds: f.objectives.rpo },
    issues,
    recommendations,
    history: f.history,
  };
  return { report, selection };
}
