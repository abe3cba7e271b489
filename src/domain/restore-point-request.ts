/** Making a named restore point on a source (`lifeboat restore-point`): what is asked and what came of it. */
import type { RecordedRestorePoint } from './restore-point';

export interface RestorePointRequest {
  target: string;
  name: string;
  requestedBy: string;
  reason: string;
  /** How long to wait for the point's WAL to reach the primary repository (default 2 min). */
  archiveWaitMs?: number;
}

export interface RestorePointResult extends RecordedRestorePoint {
  walFile: string;
  /** Whether the WAL holding the point was archived within the wait: restorable from now on. */
  archived: boolean;
  detail: string;
}
