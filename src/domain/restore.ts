/** Point-in-time restore: what an incident commander asks for, and what they get back. */
import { Decision } from './approval';
import { DnsSnapshot, InstanceDescription, NewPrimaryProtection, RestorePoint, RestoreWindow, SourceFence } from './ports';
import { VerificationSummary } from './verification';

export interface PitrRestoreInput {
  target: string;
  /** ISO-8601 with an explicit zone (`2026-11-21T10:01:00Z`, `...+01:00`), `latest`, `lsn:<lsn>` or `name:<restore point>` (pgBackRest). */
  restorePoint: string;
  reason: string;
  incidentId?: string;
  requestedBy: string;
  mode: 'standard' | 'emergency';
  /** Name of the new instance; default derived from the workflow id. */
  destination?: string;
  /** Move the application's DNS name to the restored instance, behind a second gate. */
  cutover?: boolean;
  /** Keep what was created when the workflow fails or is cancelled (for forensics). */
  keep?: boolean;
  /** Restore from the DR region's copies. */
  fromRegion?: 'primary' | 'dr';
  /**
   * Overrides of the config's gate timings and the polling interval, in ms (tests, drills).
   * settleAfterCutoverMs: how long the name stays pointed before it is verified through DNS, so
   * that resolvers holding the old answer drop it (default 0: the authoritative answer is checked).
   * rollbackRetryMs: the wait before the first retry of a rollback of the name that failed
   * (default 2 s; each retry waits twice the last, five attempts in all).
   */
  timings?: { remindAfterMs?: number; abortAfterMs?: number; pollIntervalMs?: number; settleAfterCutoverMs?: number; rollbackRetryMs?: number };
  /** `drill`: the restore of a restore drill; its instance is labelled as a drill's and takes a port from the drill range. */
  purpose?: 'drill';
}

/** A DNS change as recorded before it is made: what it replaces, and how to put that back by hand. */
export interface TrafficChange {
  router: string;
  name: string;
  previous: DnsSnapshot;
  next: { host: string; port?: number; ttl: number };
  repairCommand: string;
  recordedAt: string;
}

/** What happened to traffic in a run with a cutover: in the report, the catalog and history. */
export interface TrafficOutcome {
  name: string;
  /** Where the name pointed before (host:port), or "nothing" when it did not exist. */
  previous: string;
  state: 'applied' | 'rolled-back' | 'rollback-failed';
  detail?: string;
  fence?: SourceFence;
  unfenced?: string;
  protection?: NewPrimaryProtection;
  /** When the rollback failed: what to run to point the name back by hand. */
  repairCommand?: string;
}

/** Everything validation established before any side effect. */
export interface ValidatedRestore {
  target: string;
  environment: string;
  engine: string;
  point: RestorePoint;
  /** The point as a time, when it is one (for RPO). */
  pointTime?: string;
  window: RestoreWindow;
  destinationId: string;
  source: InstanceDescription;
  rtoTargetSeconds: number;
  timings: { remindAfterMs: number; abortAfterMs: number; pollIntervalMs: number; settleAfterCutoverMs?: number };
  cutover?: { dnsName: string; router: string; ttlSeconds: number };
  purpose?: 'drill';
}

export type RestoreOutcome = 'restored' | 'restored-and-cut-over' | 'rejected' | 'expired' | 'verification-failed' | 'failed' | 'cancelled';

export interface PhaseDurations {
  validation: number;
  waitingForApproval: number;
  restore: number;
  walReplay: number;
  verification: number;
  cutover: number;
}

export interface PitrRestoreReport {
  workflowId: string;
  outcome: RestoreOutcome;
  target: string;
  requestedBy: string;
  reason: string;
  incidentId?: string;
  restorePoint: string;
  destination?: { instanceId: string; endpoint?: { host: string; port: number } };
  verification?: VerificationSummary;
  cutover?: { dnsName: string; pointsAt: string; verifiedThroughDns: boolean };
  /** Runs with an undoable cutover: the change, the fence and the protection, or their rollback. */
  traffic?: TrafficOutcome;
  /** A report or notification that could not be delivered after the work was done (never undoes it). */
  undelivered?: string[];
  /** Request to verified, and each phase, in seconds. */
  rto?: { seconds: number; targetSeconds: number; withinTarget: boolean; phases: PhaseDurations };
  /** Data between the restore point and the latest recoverable point at the time of the request. */
  rpo?: { restorePoint: string; latestRecoverable: string; seconds: number };
  decisions: Decision[];
  /** What compensation removed, or kept on request. */
  cleanup: string[];
  failure?: string;
}
