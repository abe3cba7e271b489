/**
 * The record lifeboat keeps next to each restored cluster (`<restoresDir>/<name>.json`) and where
 * that instance's files live. The record is what makes a directory lifeboat's: it names the
 * workflow run that made the instance (only that run may adopt or delete it), the port, the point
 * restored to, and whether it has served traffic (then it is never removed automatically).
 */
import path from 'node:path';
import { LifeboatError } from '../../domain/errors';
import { describeOwner, isSameRun } from '../../domain/ownership';
import type { ResourceOwner, RestorePoint, RunIdentity } from '../../domain/ports';
import { localName, readJsonFile } from './files';
import type { Region } from './options';

/** What lifeboat records next to a restored cluster. */
export interface RestoreRecord {
  instanceId: string;
  name: string;
  createdBy: 'lifeboat';
  createdAt: string;
  repo: number;
  fromRegion: Region;
  point: RestorePoint;
  /** The pgBackRest recovery arguments actually used (a time past the last archived commit becomes an LSN). */
  recovery: string[];
  note?: string;
  port: number;
  dataDir: string;
  socketDir: string;
  logFile: string;
  /** The workflow run that made it; records written before owners were recorded have none and are never adopted or deleted. */
  owner?: ResourceOwner;
  /** Set when a cutover pointed traffic at it: never removed automatically from then on. */
  servedTraffic?: boolean;
  servedTrafficAt?: string;
  /**
   * Set once the instance is readied to take a target's traffic: from then on it starts with
   * archive_mode on. `held`: WAL is kept but not pushed; `on`: pushed to the target's repositories.
   */
  archiving?: { state: 'held' | 'on'; since: string; owner?: { workflowId: string; runId: string } };
}

export interface InstanceFiles {
  name: string;
  dataDir: string;
  record: string;
  log: string;
  pid: string;
  /** Held while one attempt decides and starts the restore. */
  claim: string;
  script: string;
  tablespaces: string;
}

/** Where the files of a restored instance live: all under the restores directory, named by its local name. */
export function instanceFiles(restoresDir: string, instanceId: string): InstanceFiles {
  const name = localName(instanceId);
  const base = path.join(restoresDir, name);
  return {
    name,
    dataDir: base,
    record: `${base}.json`,
    log: `${base}.log`,
    pid: `${base}.restore.pid`,
    claim: `${base}.starting`,
    script: `${base}.restore.sh`,
    tablespaces: `${base}.tablespaces`,
  };
}

/** The record in `file`, when there is one and lifeboat wrote it. */
export function readRecord(file: string): RestoreRecord | undefined {
  const record = readJsonFile<RestoreRecord>(file);
  return record?.createdBy === 'lifeboat' ? record : undefined;
}

/** Deletion is for the run that made the instance, and never for one that has served traffic. */
export function refuseUnlessOwnedBy(instanceId: string, record: RestoreRecord, by: RunIdentity): void {
  if (!record.owner) {
    throw new LifeboatError(
      `Refusing to delete ${instanceId}: it was restored before lifeboat recorded owners, so no workflow run can prove it made it; remove it by hand if it really is unwanted.`,
      'NOT_OWNER',
    );
  }
  if (!isSameRun(record.owner, by)) {
    throw new LifeboatError(
      `Refusing to delete ${instanceId}: it belongs to ${describeOwner(record.owner)}, not to workflow ${by.workflowId} run ${by.runId}; remove it by hand if it really is unwanted.`,
      'NOT_OWNER',
    );
  }
  if (record.servedTraffic) {
    throw new LifeboatError(
      `Refusing to delete ${instanceId}: it has served traffic since ${record.servedTrafficAt ?? 'a cutover'}, and lifeboat never removes such an instance automatically; move traffic elsewhere and remove it by hand when it is no longer needed.`,
      'SERVED_TRAFFIC',
    );
  }
}

/** A restore point as a person reads it. */
export function pointLabel(point: RestorePoint): string {
  switch (point.kind) {
    case 'time':
      return point.at;
    case 'latest':
      return 'the latest archived point';
    case 'lsn':
      return `LSN ${point.lsn}`;
    case 'name':
      return `restore point "${point.name}"`;
    case 'backup':
      return `the end of backup ${point.backupId}`;
  }
}
