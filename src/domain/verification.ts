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
   * `h64:` and 16 hex digits: the sum, modulo 2^64, of a 64-bit hash (md5's first half) of every
   * row's text. Equal checksums mean equal contents as a multiset of rows, whatever their order
   * or physical place; `empty` for a table without rows.
   */
  checksum: string;
}

/** A database's critical tables at one snapshot, and where that snapshot sits in its history. */
export interface DatabaseFacts {
  takenAt: string;
  /** First transaction id not yet completed at the snapshot (pg_snapshot_xmax), as text. */
  xmax: string;
  /** Transactions below xmax still running at the snapshot. */
  inProgress: number;
  /** WAL the facts include: the insert position of a live primary, the last replayed record of a restored copy. */
  walPosition: string;
  tables: TableFacts[];
}

/** The source's facts for a restore, or why there are none. */
export type SourceFacts = { available: true; facts: DatabaseFacts } | { available: false; reason: string };

export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/**
 * Whether the source's facts describe the restored copy's state, so a difference would be lost
 * or changed data rather than writes made on one side only. They do when no transaction was
 * running at the source's snapshot, the copy completed exactly the same transactions (same
 * xmax), and the copy replayed WAL at least up to where the source stood then.
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
  if (restoredXmax < sourceXmax) {
    return { comparable: false, reason: `the restored copy ends before the moment the source's facts were taken (transaction ids up to ${restored.xmax}, the source ${source.xmax}): the source's latest WAL was not archived yet` };
  }
  if (lsnValue(restored.walPosition) < lsnValue(source.walPosition)) {
    return { comparable: false, reason: `the restored copy replayed WAL up to ${restored.walPosition}, before ${source.walPosition} where the source stood when its facts were taken: the source's latest WAL was not archived yet` };
  }
  return { comparable: true };
}
