/** What a verification found, in a form that fits workflow history and reports. */
export interface VerificationSummary {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  tables: TableFacts[];
}

export interface TableFacts {
  table: string;
  rows: number;
  /**
   * `h64:` and 16 hex digits: the sum, modulo 2^64, of a 64-bit hash (hashtextextended) of every
   * row's text. Equal checksums mean equal contents as a multiset of rows, whatever their order
   * or physical place; `empty` for a table without rows.
   */
  checksum: string;
}

/** How many transaction ids below a snapshot's xmax `recentCommitted` looks at. */
export const RECENT_TRANSACTIONS = 10_000;

/** A database's critical tables at one snapshot, and where that snapshot sits in its history. */
export interface DatabaseFacts {
  takenAt: string;
  /** First transaction id not yet completed at the snapshot (pg_snapshot_xmax), as text. */
  xmax: string;
  /** Transactions below xmax still running at the snapshot. */
  inProgress: number;
  /** How many of the RECENT_TRANSACTIONS transaction ids just below xmax had committed. */
  recentCommitted: number;
  tables: TableFacts[];
}

/** The source's facts for a restore, or why there are none. */
export type SourceFacts = { available: true; facts: DatabaseFacts } | { available: false; reason: string };

/** Where a snapshot sits in a database's history of transactions (a DatabaseFacts without its tables). */
export type SnapshotPosition = Pick<DatabaseFacts, 'takenAt' | 'xmax' | 'inProgress' | 'recentCommitted'>;

/** How a copy's snapshot stands against a reference snapshot (see comparability). */
type PositionVerdict =
  | { kind: 'same' }
  | { kind: 'running'; inProgress: number }
  | { kind: 'copy-later'; from: string; to: string }
  | { kind: 'copy-earlier'; missing: string };

function positionVerdict(reference: SnapshotPosition, copy: SnapshotPosition): PositionVerdict {
  if (reference.inProgress > 0) return { kind: 'running', inProgress: reference.inProgress };
  const referenceXmax = BigInt(reference.xmax);
  const copyXmax = BigInt(copy.xmax);
  if (copyXmax > referenceXmax) return { kind: 'copy-later', from: reference.xmax, to: copy.xmax };
  if (copyXmax < referenceXmax || copy.recentCommitted !== reference.recentCommitted) {
    return { kind: 'copy-earlier', missing: copyXmax < referenceXmax ? `transaction ids ${copy.xmax} to ${reference.xmax}` : `${reference.recentCommitted - copy.recentCommitted} committed transaction(s)` };
  }
  return { kind: 'same' };
}

/**
 * Whether the source's facts describe the restored copy's state, so that a difference means lost
 * or changed data rather than writes made on one side only. They do when no transaction was
 * running at the source's snapshot and the copy completed the same transactions: the same xmax
 * (nothing later was replayed, nothing assigned since is missing) and the same recent commits (a
 * transaction assigned earlier but whose commit record was never archived shows as aborted on
 * the copy). A transaction older than the last RECENT_TRANSACTIONS ids that commits after the
 * copy's last replayed record, with no later transaction, would escape this.
 */
export function comparability(source: SnapshotPosition, restored: SnapshotPosition): { comparable: true } | { comparable: false; reason: string } {
  const v = positionVerdict(source, restored);
  switch (v.kind) {
    case 'same':
      return { comparable: true };
    case 'running':
      return { comparable: false, reason: `${v.inProgress} transaction(s) were running on the source when its facts were taken, a state no restore point reaches` };
    case 'copy-later':
      return { comparable: false, reason: `the source committed transactions after its facts were taken (transaction ids ${v.from} to ${v.to}) and the restored copy includes them` };
    case 'copy-earlier':
      return { comparable: false, reason: `the restored copy ends before the moment the source's facts were taken (${v.missing} missing): the source's latest WAL was not archived yet` };
  }
}

/**
 * The exact row counts of a target's critical tables as recorded when a backup ended, kept with
 * the backup in the catalog for the drills of that backup.
 *
 * They are counted on the source right after the backup's stop point is known, not at that point:
 * no snapshot of the source exists at a backup's stop. So the counts carry the position of their
 * snapshot (xmax, transactions running, recent commits), the same facts a restored copy reports.
 * A drill restores the backup to exactly its stop point (`backup:<label>`), and compares counts
 * only when the restored copy's position equals the recorded one: then no transaction committed
 * on the source between the backup's end and the count, and the counts must be equal. When the
 * source was written meanwhile (the usual case on a busy database) the counts are reported as not
 * comparable, with both numbers and why: never as a pass or a failure they cannot support.
 */
export interface BackupRowCounts extends SnapshotPosition {
  /** The backup whose end the counts follow (the primary region's engine id). */
  backupId: string;
  /** The source's WAL insert position when they were counted, for the record. */
  lsn?: string;
  tables: Array<{ table: string; rows: number }>;
}

/** The counts recorded for a backup, or why there are none. */
export type RecordedRowCounts = { available: true; counts: BackupRowCounts } | { available: false; reason: string };

/** The drill's check of the restored copy's row counts against those recorded at backup time. */
export function rowCountsCheck(recorded: RecordedRowCounts, restored: SnapshotPosition & { tables: Array<{ table: string; rows: number }> }): { name: string; ok: boolean; detail: string } {
  const name = 'row counts at backup';
  if (!recorded.available) return { name, ok: true, detail: `not compared: ${recorded.reason}` };
  const counts = recorded.counts;
  const pairs = counts.tables.map((t) => ({ table: t.table, recorded: t.rows, restored: restored.tables.find((r) => r.table === t.table)?.rows }));
  const shown = pairs.map((p) => `${p.table} ${p.restored ?? 'unreadable'}${p.restored === p.recorded ? '' : ` (recorded ${p.recorded})`}`).join(', ');
  const v = positionVerdict(counts, restored);
  if (v.kind !== 'same') {
    const why =
      v.kind === 'running'
        ? `${v.inProgress} transaction(s) were running on the source when the counts were taken`
        : v.kind === 'copy-earlier'
          ? `the source committed transactions between the backup's end and the count (${v.missing} are not in the backup)`
          : `the restored copy holds transactions the count did not see (transaction ids ${v.from} to ${v.to})`;
    return { name, ok: true, detail: `not comparable: ${why}, so the counts taken at ${counts.takenAt} describe a later state than the backup; restored ${shown}` };
  }
  const differing = pairs.filter((p) => p.restored !== p.recorded);
  if (differing.length) {
    return { name, ok: false, detail: `${differing.map((p) => `${p.table}: ${p.restored ?? 'unreadable'} rows where ${p.recorded} were recorded`).join('; ')} (counted at ${counts.takenAt}, right after backup ${counts.backupId})` };
  }
  return { name, ok: true, detail: `every critical table has the rows recorded right after backup ${counts.backupId} (${shown})` };
}
