/**
 * Agents: workers on a database host. Work that must run where the database is (pgBackRest, the
 * files it reads, pg_dump, and the clusters a restore makes on that host) goes to the host's own
 * task queue; everything else (orchestration, the catalog, AWS, DNS, approvals, notifications,
 * checks over the network) stays on the central queue, where any number of central workers share it.
 */

/** The task queue of the agent called `agent` (`targets.databases[].agent`). */
export function agentTaskQueue(agent: string): string {
  return `lifeboat-agent-${agent}`;
}

/** A backup (databaseBackup): pgBackRest's check, backup, progress, verify and copy to the DR repository. */
export const BACKUP_HOST_ACTIVITIES = ['preflightDatabaseBackup', 'startDatabaseBackup', 'waitForDatabaseBackup', 'verifyDatabaseBackup', 'copyDatabaseBackupToDr'] as const;

/**
 * A restore into a new cluster on the host (pitrRestore, restoreDrill, failoverDatabase, and a
 * drFailover's move): the restore window (pgBackRest info) and the restores directory's records are
 * read there, pgBackRest writes the cluster there, pg_ctl starts, stops and removes it there, and a
 * cutover fences the source, readies the new cluster and sets up its archiving there.
 */
export const RESTORE_HOST_ACTIVITIES = [
  'validateRestore',
  'restoreIntoNewInstance',
  'waitUntilAvailable',
  'removeRestoredInstance',
  'markServedTraffic',
  'prepareToServe',
  'fenceSource',
  'unfenceSource',
  'protectAsNewPrimary',
] as const;

/** A logical backup (logicalBackup): pg_dump of the source, and pg_restore --list of each stored copy. */
export const LOGICAL_BACKUP_HOST_ACTIVITIES = ['dumpDatabase', 'verifyDump'] as const;

/** A logical restore: pg_restore (and the schema copy) run where the database is. */
export const LOGICAL_RESTORE_HOST_ACTIVITIES = ['restoreLogicalDump'] as const;

/**
 * A failback (besides the restore activities above, on the instances it restores and readies):
 * the failed-over primary found in the host's records, re-protected, fenced, unfenced, its final
 * WAL shipped and it retired there, and the cluster restored in the primary region made there.
 */
export const FAILBACK_HOST_ACTIVITIES = ['findDrPrimary', 'reprotectDrPrimary', 'fenceDrPrimary', 'unfenceDrPrimary', 'shipFinalWal', 'restoreInPrimaryRegion', 'retireDrPrimary'] as const;

/** The drill sweeper: a host's drill clusters and directory drills' scratch directories listed and removed there (buckets, names and app copies stay central). */
export const DRILL_SWEEPER_HOST_ACTIVITIES = ['findDrillInstances', 'removeDrillInstance', 'findDrillScratchDirectories', 'removeDrillScratchDirectory'] as const;

/** Removing a kept restored instance (its expiry, or `instances remove`): the cluster lives on the target's host. */
export const RESTORED_INSTANCE_HOST_ACTIVITIES = ['removeKeptInstance'] as const;

/**
 * Removing pgBackRest sets (retention's expiry and `backups delete`): pgBackRest expires them
 * where its configuration names the repositories, with the catalog's checks and records as
 * centrally; dumps and file sets are S3 objects and stay central.
 */
export const BACKUP_REMOVAL_HOST_ACTIVITIES = ['expireDatabaseBackup', 'deleteDatabaseBackupByHand'] as const;

/** Preflight: `pgbackrest check` of a target's repositories (its database, secrets and RPO are checked centrally). */
export const PREFLIGHT_HOST_ACTIVITIES = ['checkRepositories'] as const;

/** The RTO prediction (a drill's report, the compliance report): pgBackRest's backup sizes read on the host; the prediction is made centrally. */
export const PREDICTION_HOST_ACTIVITIES = ['readBackupSizes'] as const;

/** Configuration directories: archived, and restored, inspected and verified where the directory is. */
export const DIRECTORY_HOST_ACTIVITIES = ['archiveDirectory', 'inspectDirectoryRestore', 'restoreDirectoryToStaging', 'verifyRestoredDirectory', 'commitDirectoryRestore', 'removeDirectoryStaging', 'checkDirectory'] as const;
/** SQLite targets: the online copy, read-backs that run sqlite3, the destination's checks and the restore run where the file is. */
export const SQLITE_HOST_ACTIVITIES = ['backupSqliteDatabase', 'verifySqliteBackup', 'checkSqliteRestoreDestination', 'restoreSqliteBackup', 'removeSqliteRestore', 'checkSqliteSource'] as const;

/** SQLite drills and the sweep of their leftovers: the scratch directory is made, filled, checked, listed and removed where the file's host is. */
export const SQLITE_DRILL_HOST_ACTIVITIES = ['createSqliteDrillScratch', 'restoreSqliteDrill', 'removeSqliteDrillScratch', 'findSqliteDrillScratch', 'removeSqliteDrillScratchLeft'] as const;

/**
 * The activities an agent runs. A workflow sends these, and only these, to the target's agent when
 * it has one; an agent worker registers these alone, so nothing else can land on the host.
 */
export const HOST_BOUND_ACTIVITIES = [...BACKUP_HOST_ACTIVITIES, ...RESTORE_HOST_ACTIVITIES, ...LOGICAL_BACKUP_HOST_ACTIVITIES, ...LOGICAL_RESTORE_HOST_ACTIVITIES, ...FAILBACK_HOST_ACTIVITIES, ...DRILL_SWEEPER_HOST_ACTIVITIES, ...RESTORED_INSTANCE_HOST_ACTIVITIES, ...BACKUP_REMOVAL_HOST_ACTIVITIES, ...PREFLIGHT_HOST_ACTIVITIES, ...PREDICTION_HOST_ACTIVITIES, ...DIRECTORY_HOST_ACTIVITIES, ...SQLITE_HOST_ACTIVITIES, ...SQLITE_DRILL_HOST_ACTIVITIES] as const;

export type HostBoundActivity = (typeof HOST_BOUND_ACTIVITIES)[number];
