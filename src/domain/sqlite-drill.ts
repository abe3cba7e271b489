/**
 * The restore drill of a SQLite target: the chosen backup restored into a scratch directory of
 * the drill's own on the target's host (`<scratchDir>/drill-<workflow id>/`, holding a mark that
 * names the run), checked (stored bytes, decryption bound to the target and backup, the
 * database's bytes, `PRAGMA integrity_check`, row counts per table against those recorded at
 * backup time, the target's read-only check queries), then removed. Pure types and rules, shared
 * by the workflow (src/workflows/sqlite-drill.ts), its activities and the drill sweeper.
 */

/** Where the drilled backup lives in the region drilled, and what the drill checks it against (fixed at selection, so a replay checks the same way). */
export interface SqliteDrillSource {
  store: string;
  bucket: string;
  key: string;
  versionId?: string;
  backupName: string;
  /** SHA-256 of the stored (encrypted) object as uploaded. */
  storedSha256: string;
  databaseSha256: string;
  databaseBytes: number;
  /** Rows per table at the backup. */
  tables: Record<string, number>;
  /** The directory on the target's host the drill's scratch directory is made in. */
  scratchDir: string;
  /** The target's read-only check queries (`drill.checks`). */
  checks: Array<{ name: string; sql: string }>;
  rtoObjectiveSeconds: number;
}

/** The scratch directory a SQLite drill made, and the database file in it. */
export interface SqliteDrillScratch {
  dir: string;
  file: string;
  /** True when an earlier attempt of this run had made it already. */
  adopted: boolean;
}

/** The mark file inside a scratch directory: which run made it. */
export const SQLITE_DRILL_MARK = 'lifeboat-drill.json';
/** The database file inside a scratch directory. */
export const SQLITE_DRILL_FILE = 'restored.db';

export interface SqliteDrillMark {
  lifeboat: 'sqlite-drill';
  workflowId: string;
  runId: string;
  target: string;
  createdAt: string;
}

/** `drill-<workflow id>`: a plain file name (letters, digits, `.`, `_`, `-`), recognisably a drill's. */
export function sqliteDrillDirName(workflowId: string): string {
  const cleaned = workflowId.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
  const name = cleaned.startsWith('drill-') ? cleaned : `drill-${cleaned}`;
  return name.slice(0, 200);
}

/** Whether a mark read from disk is a SQLite drill's mark naming a run. */
export function parseSqliteDrillMark(text: string): SqliteDrillMark | undefined {
  try {
    const m = JSON.parse(text) as Partial<SqliteDrillMark>;
    if (m.lifeboat !== 'sqlite-drill' || typeof m.workflowId !== 'string' || typeof m.runId !== 'string' || !m.workflowId || !m.runId) return undefined;
    return { lifeboat: 'sqlite-drill', workflowId: m.workflowId, runId: m.runId, target: String(m.target ?? ''), createdAt: String(m.createdAt ?? '') };
  } catch {
    return undefined;
  }
}

/** How each check of a SQLite drill proves what it proves, in words for the report. */
export const SQLITE_DRILL_METHODS = {
  stored: 'the object read from the backup store hashed as it streamed: SHA-256 against the one recorded at upload',
  decryption: 'lifeboat-enc-v2 authenticated decryption (AES-256-GCM) whose header must bind the object to kind sqlite, this target and this backup name',
  database: 'the decrypted, decompressed database file hashed: SHA-256 against the online copy made at backup time',
  integrity: '`PRAGMA integrity_check` on the restored file, which must answer exactly "ok"',
  rows: 'rows counted in every table of the restored file (one read transaction) against the counts recorded at backup time',
  query: "the target's check query, run read-only (`sqlite3 -readonly`) on the restored file; it passes when its first row's first column is not NULL, 0, false or empty",
} as const;

/** A check query's answer as a pass: the first row's first column is there and not NULL, zero, false or empty text. */
export function checkQueryPasses(rows: Array<Record<string, unknown>>): { ok: boolean; detail: string } {
  if (!rows.length) return { ok: false, detail: 'no row returned' };
  const first = Object.values(rows[0])[0];
  const shown = first === null || first === undefined ? 'NULL' : JSON.stringify(first);
  const ok = !(first === null || first === undefined || first === 0 || first === '0' || first === false || first === '' || first === 'false');
  return { ok, detail: `first column ${shown}${rows.length > 1 ? ` (${rows.length} rows)` : ''}` };
}
