/**
 * `lifeboat backup <target> --wait`, and the same as a library call (`verifiedBackup`), for
 * CI/CD before a risky change: takes the backup the target's kind calls for and blocks until it
 * is verified in BOTH regions. Only then does it print the backup's id (the catalog id that
 * `lifeboat backups list` shows) as the one line on stdout, and exit 0; progress and the reason
 * of a failure go to stderr, and any outcome short of verified in both regions is nonzero.
 */
import { Client } from '@temporalio/client';
import { findDatabaseTarget, LifeboatConfig, sqliteTargetNamed } from '../config';
import { runSqliteBackup } from './sqlite-commands';
import { findDynamoDbTarget, isDynamoDbTarget } from '../activities/dynamodb';
import { DynamoDbBackupInput, DynamoDbBackupReport } from '../domain/dynamodb';
import { DatabaseBackupInput, DatabaseBackupResult } from '../domain/backup';
import { LifeboatError } from '../domain/errors';
import { FilesBackupInput, FilesBackupReport } from '../domain/files-backup';
import { LogicalBackupInput, LogicalBackupReport } from '../domain/logical-backup';
import { failureOf, follow, parseBackupKind } from './backup-commands';

export interface VerifiedBackupRequest {
  target: string;
  /** full, diff or incr for a database; full or incr for a bucket. */
  kind?: string;
  logical?: boolean;
  workflowId?: string;
  requestedBy?: string;
  /** Each progress line (the phase and the running activity's progress), as it changes. */
  onProgress?: (text: string) => void;
}

export interface VerifiedBackup {
  target: string;
  /** The catalog id (`lifeboat backups list`, `lifeboat backups delete`, `restore --backup` of a bucket target). */
  id: string;
  /** The engine's own name for it (pgBackRest label, snapshot id, dump key, files set timestamp, DynamoDB backup name). */
  name: string;
  workflowId: string;
}

/** The backup is not verified in both regions: the sentence says why. */
export class BackupNotVerifiedError extends LifeboatError {
  constructor(
    message: string,
    readonly workflowId: string,
  ) {
    super(message, 'BACKUP_NOT_VERIFIED');
  }
}

/** Takes a backup of `target` and resolves once it is verified in both regions; rejects with BackupNotVerifiedError otherwise. */
export async function verifiedBackup(config: LifeboatConfig, client: Client, o: VerifiedBackupRequest): Promise<VerifiedBackup> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();
  const requestedBy = o.requestedBy ?? process.env.LIFEBOAT_USER ?? 'cli';
  const bucket = config.targets.buckets.find((b) => b.name === o.target);
  const taskQueue = config.temporal.taskQueue;
  let workflowId: string;
  let run: () => Promise<VerifiedBackup>;
  const show = o.onProgress;
  const sqlite = sqliteTargetNamed(config, o.target);
  if (isDynamoDbTarget(config, o.target)) {
    const table = findDynamoDbTarget(config, o.target);
    workflowId = o.workflowId ?? `backup-dynamodb-${table.name}-${stamp}`;
    const id = workflowId;
    const input: DynamoDbBackupInput = { target: table.name, requestedBy };
    run = async () => {
      const handle = await client.workflow.start('dynamodbBackup', { taskQueue, workflowId: id, args: [input], staticSummary: `DynamoDB backup of ${table.name} (--wait)` });
      const r = await follow<DynamoDbBackupReport>(client, handle, !show, 1000, show);
      // Verified in both regions means the primary export and its DR copy each read back against the manifest.
      const both = ['primary', 'dr'].every((region) => r.verifications.some((v) => v.region === region && v.ok));
      if (r.outcome !== 'verified' || !both || !r.catalogId) throw new BackupNotVerifiedError(`DynamoDB backup ${id} of ${table.name} ended ${r.outcome}${both ? '' : ' without its export verified in both regions'}${r.failure ? `: ${r.failure}` : ''}`, id);
      return { target: table.name, id: r.catalogId, name: r.backup?.backupName ?? r.plan?.backupName ?? id, workflowId: id };
    };
  } else if (sqlite) {
    workflowId = o.workflowId ?? `sqlite-backup-${sqlite.name}-${stamp}`;
    const id = workflowId;
    run = async () => {
      const started = await runSqliteBackup(config, client, { target: sqlite.name, workflowId: id, requestedBy, json: !show, show });
      const r = await started.report;
      const bothOk = r.verifications.length === 2 && r.verifications.every((v) => v.ok);
      if (r.outcome !== 'verified' || !r.dr || !bothOk || !r.catalogId) throw new BackupNotVerifiedError(`SQLite backup ${id} of ${sqlite.name} ended ${r.outcome}${r.failure ? `: ${r.failure}` : ''}`, id);
      return { target: sqlite.name, id: r.catalogId, name: r.backupName ?? id, workflowId: id };
    };
  } else if (bucket) {
    const input: FilesBackupInput = { target: bucket.name, ...(o.kind ? { mode: o.kind === 'full' ? 'full' : 'incremental' } : {}) };
    workflowId = o.workflowId ?? `files-backup-${bucket.name}-${stamp}`;
    const id = workflowId;
    run = async () => {
      const handle = await client.workflow.start('filesBackup', { taskQueue, workflowId: id, args: [input], staticSummary: `files backup of ${bucket.name} (--wait)` });
      const r = await follow<FilesBackupReport>(client, handle, !show, 1000, show);
      const drOk = r.verifications.some((v) => v.store === r.plan?.dr.store && v.ok);
      if (r.outcome !== 'verified' || !drOk || !r.catalogId) throw new BackupNotVerifiedError(`files backup ${id} of ${bucket.name} ended ${r.outcome}${r.failure ? `: ${r.failure}` : ''}`, id);
      return { target: bucket.name, id: r.catalogId, name: r.plan!.timestamp, workflowId: id };
    };
  } else {
    const target = findDatabaseTarget(config, o.target);
    if (o.logical) {
      workflowId = o.workflowId ?? `logical-backup-${target.name}-${stamp}`;
      const id = workflowId;
      run = async () => {
        const handle = await client.workflow.start('logicalBackup', { taskQueue, workflowId: id, args: [{ target: target.name } satisfies LogicalBackupInput], staticSummary: `logical backup (pg_dump) of ${target.name} (--wait)` });
        const r = await follow<LogicalBackupReport>(client, handle, !show, 1000, show);
        if (r.outcome !== 'verified' || !r.dr || !r.catalogId) throw new BackupNotVerifiedError(`logical backup ${id} of ${target.name} ended ${r.outcome}${r.dr ? '' : ' without its DR copy'}${r.failure ? `: ${r.failure}` : ''}`, id);
        return { target: target.name, id: r.catalogId, name: r.primary?.key ?? id, workflowId: id };
      };
    } else {
      const kind = parseBackupKind(o.kind);
      workflowId = o.workflowId ?? `backup-${target.name}-${stamp}`;
      const id = workflowId;
      const input: DatabaseBackupInput = { target: target.name, requestedBy, ...(kind ? { kind } : {}) };
      run = async () => {
        const handle = await client.workflow.start('databaseBackup', { taskQueue, workflowId: id, args: [input], staticSummary: `${kind ?? 'full'} backup of ${target.name} (--wait)`, staticDetails: `Requested by ${requestedBy} from the lifeboat CLI.` });
        const r = await follow<DatabaseBackupResult>(client, handle, !show, 1000, show);
        // The workflow returns only once both copies are verified; the check says so rather than trusting it.
        if (r.status !== 'verified' || !r.verifications.primary.ok || !r.verifications.dr.ok) throw new BackupNotVerifiedError(`backup ${id} of ${target.name} is not verified in both regions`, id);
        return { target: target.name, id: r.catalogId, name: r.name, workflowId: id };
      };
    }
  }
  try {
    return await run();
  } catch (err) {
    if (err instanceof BackupNotVerifiedError) throw err;
    throw new BackupNotVerifiedError(`backup ${workflowId} of ${o.target} was not verified in both regions: ${failureOf(err)}`, workflowId);
  }
}

/** The CLI's `--wait`: the id alone on stdout once verified in both regions (exit 0); progress and any failure on stderr (exit 1). */
export async function backupWaitCommand(config: LifeboatConfig, client: Client, o: Omit<VerifiedBackupRequest, 'onProgress'>): Promise<number> {
  let last = '';
  const toStderr = (text: string) => {
    if (text === last) return;
    last = text;
    process.stderr.write(`${text}\n`);
  };
  try {
    const done = await verifiedBackup(config, client, { ...o, onProgress: toStderr });
    process.stderr.write(`backup ${done.name} of ${done.target} verified in both regions (workflow ${done.workflowId}); its id:\n`);
    process.stdout.write(`${done.id}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`lifeboat: ${(err as Error).message}\n`);
    return 1;
  }
}
