/** A restore drill: which backup is proven, and what the run came to. */
import type { DrillReport, DrillStep } from './drill-report';
import type { DirectoryDrillSource } from './directory-drill';
import type { FilesDrillSource } from './files-drill';
import type { SqliteDrillSource } from './sqlite-drill';

/** `latest`, `random` (within `randomWithinDays`, default 30), or a backup's id. */
export type DrillBackupChoice = 'latest' | 'random' | (string & {});

export interface RestoreDrillInput {
  target: string;
  backup?: DrillBackupChoice;
  /** Which region's copy is restored (default primary); drills alternate so both are proven. */
  fromRegion?: 'primary' | 'dr';
  randomWithinDays?: number;
  requestedBy?: string;
  /** keepForMs overrides the target's `drill.keepFor` (tests make the validation window short). */
  timings?: { pollIntervalMs?: number; keepForMs?: number };
}

/** The backup a drill proves, as the catalog recorded it. */
export interface DrillSelection {
  /** What kind of backup: a database's, a bucket's files (a set of objects), a configuration directory's archive, or a SQLite database's copy. Absent: database (histories from before files drills). */
  kind?: 'database' | 'files' | 'directory' | 'sqlite';
  backupId: string;
  catalogId: string;
  type: string;
  region: 'primary' | 'dr';
  takenAt: string;
  sizeBytes?: number;
  selectedBy: string;
  /** How many verified backups were eligible. */
  candidates: number;
  target: { name: string; engine: string; environment: string };
  rpoObjectiveSeconds: number;
  /** Files drills only: where the set lives in the region drilled, and how the drill checks it. */
  files?: FilesDrillSource;
  /** Directory drills only: the archive drilled and the RTO objective (src/domain/directory-drill.ts). */
  directory?: DirectoryDrillSource;
  /** SQLite drills only: the backup's object and recorded facts, and how the drill checks it. */
  sqlite?: SqliteDrillSource;
}

/** Where one rendering of the report lives, with the hash the catalog keeps. */
export interface DrillEvidence {
  format: 'json' | 'md' | 'html';
  key: string;
  sha256: string;
  bytes: number;
  copies: Array<{ region: string; bucket: string; versionId: string; retainUntil: string }>;
  /** Regions whose evidence bucket could not take this rendering yet (their copy is retried), with why. */
  missing?: Array<{ region: string; bucket: string; problem: string }>;
}

/** The regions some rendering of the report is still missing from. */
export function missingEvidenceCopies(evidence: DrillEvidence[]): string[] {
  return [...new Set(evidence.flatMap((e) => (e.missing ?? []).map((m) => m.region)))];
}

/** What a drill that failed before its restore had attempted, for its report. */
export interface EarlyDrillFailure {
  input: RestoreDrillInput;
  startedAt: string;
  steps: DrillStep[];
  failure: string;
  /** The backup chosen, when selection got that far. */
  selection?: DrillSelection;
}

export interface RestoreDrillResult {
  report: DrillReport;
  evidence: DrillEvidence[];
}

/** The drill's instance: named after the run, recognisably a drill, never a production name. */
export function drillInstanceName(workflowId: string): string {
  const cleaned = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  const name = cleaned.startsWith('drill-') ? cleaned : `drill-${cleaned}`;
  return name.slice(0, 60).replace(/-$/, '');
}
