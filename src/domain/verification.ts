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

/**
 * Whether the source's facts describe the restored copy's state, so that a difference means lost
 * or changed data rather than writes made on one side only. They do when no transaction was
 * running at the source's snapshot and the copy completed the same transactions: the same xmax
 * (nothing later was replayed, nothing assigned since is missing) and the same recent commits (a
 * transaction assigned earlier but whose commit record was never archived shows as aborted on
 * the copy). A transaction older than the last RECENT_TRANSACTIONS ids that commits after the
 * copy's last replayed record, with no later transaction, would escape this.
 */
export function comparability(source: DatabaseFacts, restored: DatabaseFacts): { comparable: true } | { comparable: false; reason: string } {
  if (source.inProgress > 0) {
    return { comparable: false, reason: `${source.inProgress} transaction(s) were running on the source when its facts were taken, a state no restore point reaches` };
  }
  const sourceXmax = BigInt(source.xmax);
  const restoredXmax = BigInt(restored.xmax);
  if (restoredXmax > sourceXmax) {
    return { comparable: false, reason: `the source committed transactions after its facts were taken (transaction ids ${source.xmax} to ${restored.xmax}) and the restored copy includes them` };
  }
  if (restoredXmax < sourceXmax || restored.recentCommitted !== source.recentCommitted) {
    const missing = restoredXmax < sourceXmax ? `transaction ids ${restored.xmax} to ${source.xmax}` : `${source.recentCommitted - restored.recentCommitted} committed transaction(s)`;
    return { comparable: false, reason: `the restored copy ends before the moment the source's facts were taken (${missing} missing): the source's latest WAL was not archived yet` };
  }
  return { comparable: true };
}
