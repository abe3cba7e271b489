/**
 * Configuration directories (`targets.directories`): backups (the directoryBackup workflow: an
 * archive with a manifest, encrypted, in both regions, verified) and restores (directoryRestore:
 * into a new directory, or in place behind the restore gate). Pure types and rules shared by the
 * CLI, the workflows and their activities. JSON-safe; keys are referred to by fingerprint only.
 */

/** One entry of a directory's manifest. Paths are relative to the directory, "/"-separated; the directory itself is ".". */
export interface DirectoryEntry {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  /** Permission bits, mode & 0o7777 (setuid, setgid and sticky included). */
  mode: number;
  uid: number;
  gid: number;
  /** Names of uid and gid on the backed-up host, when it has them. */
  user?: string;
  group?: string;
  /** Modification time, milliseconds since the epoch. */
  mtimeMs: number;
  /** Files: bytes and SHA-256 of the content. */
  size?: number;
  sha256?: string;
  /** Symlinks: the link's text, as readlink gives it (never followed). */
  linkTarget?: string;
}

export interface DirectoryManifest {
  format: 'lifeboat-dir-v1';
  target: string;
  backupId: string;
  /** The directory on its host. */
  source: string;
  host: string;
  createdAt: string;
  entries: DirectoryEntry[];
  /** Sockets, FIFOs and devices: listed, not archived. */
  skipped: string[];
}

export interface DirectoryBackupInput {
  target: string;
  /** How often long activities heartbeat, ms (default 5000). */
  pollIntervalMs?: number;
}

export interface DirectoryLocation {
  store: string;
  bucket: string;
  key: string;
}

export interface DirectoryBackupPlan {
  target: string;
  environment: string;
  /** Derived from the workflow id, so a retried activity writes the same object. */
  backupId: string;
  host: string;
  path: string;
  keyId: string;
  primary: DirectoryLocation;
  dr: DirectoryLocation;
  criticalFiles: string[];
}

/** What an archive upload (or copy) stored. */
export interface StoredDirectoryArchive {
  store: string;
  bucket: string;
  key: string;
  /** Bytes and SHA-256 of the stored (encrypted) object. */
  sizeBytes: number;
  sha256: string;
  /** SHA-256 of the manifest JSON inside. */
  manifestSha256: string;
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of file content archived. */
  contentBytes: number;
  skipped: string[];
  keyId: string;
}

export interface DirectoryCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DirectoryVerification {
  ok: boolean;
  store: string;
  key: string;
  checks: DirectoryCheck[];
}

export interface DirectoryBackupReport {
  workflowId: string;
  target: string;
  backupId?: string;
  outcome: 'verified' | 'failed' | 'cancelled';
  primary?: StoredDirectoryArchive;
  dr?: StoredDirectoryArchive;
  verifications: DirectoryVerification[];
  catalogId?: string;
  failure?: string;
}

/** The binding text fields of a directory archive (crypto-stream's binding, kind directory). */
export const DIRECTORY_BINDING_KIND = 'directory';

/** A backup id from a workflow id: what the object key takes, at most 200 characters. */
export function directoryBackupId(workflowId: string): string {
  const cleaned = workflowId.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return (cleaned || 'backup').slice(0, 200);
}

/** Key of a directory archive: `<prefix><target>/<backup id>.lbdir.gz.enc`. */
export function directoryArchiveKey(prefix: string, target: string, backupId: string): string {
  return `${prefix}${target}/${backupId}.lbdir.gz.enc`;
}

// ----- restore ------------------------------------------------------------------------------------

export type DirectoryRestoreDestination = { kind: 'new-dir'; path?: string } | { kind: 'in-place' };

export interface DirectoryRestoreInput {
  target: string;
  /** A backup id, catalog id, or `latest`. */
  backup: string;
  destination: DirectoryRestoreDestination;
  requestedBy: string;
  reason: string;
  /** A drill: restore into a scratch directory this run makes and removes, no gate. */
  drill?: boolean;
  timings?: { remindAfterMs?: number; abortAfterMs?: number; heartbeatMs?: number };
}

export interface ValidatedDirectoryRestore {
  target: string;
  environment: string;
  backupId: string;
  catalogId: string;
  takenAt: string;
  from: DirectoryLocation & { sha256: string; manifestSha256: string; keyId: string };
  /** in-place: the directory itself; new-dir: the new directory (made by renaming the staging directory). */
  into: { kind: 'new-dir' | 'in-place' | 'drill'; path: string };
  /** Staging directory next to the destination, named after the run; marked with MARK_FILE inside. */
  staging: string;
  files: number;
  bytes: number;
  /** In place: what the restore overwrites, writes where missing, and leaves alone (equal). */
  inPlace?: { overwrite: string[]; create: string[]; unchanged: number; backupDir: string };
  criticalFiles: string[];
  syntaxCheck?: { command: string[]; timeoutMs: number };
  timings: { remindAfterMs: number; abortAfterMs: number; heartbeatMs?: number };
}

export interface DirectoryRestoreReport {
  workflowId: string;
  target: string;
  outcome: 'restored' | 'failed' | 'cancelled' | 'rejected' | 'expired' | 'verification-failed';
  requestedBy: string;
  reason: string;
  plan?: ValidatedDirectoryRestore;
  written?: { files: number; bytes: number; overwritten: number };
  /** In place: every entry replaced (its previous version is in the undo directory) and every entry made, across retries. */
  overwritten?: string[];
  created?: string[];
  checks: DirectoryCheck[];
  /** Output of the syntax check command (last lines). */
  syntaxCheckOutput?: string;
  cleanup: string[];
  undo?: string;
  failure?: string;
}

/** The file inside a staging (or scratch) directory that names the run that made it. */
export const STAGING_MARK_FILE = '.lifeboat-restore-run';

export function firstFew(items: string[], n: number): string {
  return items.length <= n ? items.join(', ') : `${items.slice(0, n).join(', ')} and ${items.length - n} more`;
}
