/** Point-in-time restore: what an incident commander asks for, and what they get back. */
import { Decision } from './approval';
import { InstanceDescription, RestorePoint, RestoreWindow } from './ports';
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
  /** Overrides of the config's gate timings and the polling interval, in ms (tests, drills). */
  timings?: { remindAfterMs?: number; abortAfterMs?: number; pollIntervalMs?: number };
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
  timings: { remindAfterMs: number; abortAfterMs: number; pollIntervalMs: number };
  cutover?: { dnsName: string; router: string; ttlSeconds: number };
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
  /** Request to verified, and each phase, in seconds. */
  rto?: { seconds: number; targetSeconds: number; withinTarget: boolean; phases: PhaseDurations };
  /** Data between the restore point and the latest recoverable point at the time of the request. */
  rpo?: { restorePoint: string; latestRecoverable: string; seconds: number };
  decisions: Decision[];
  /** What compensation removed, or kept on request. */
  cleanup: string[];
  failure?: string;
}
