/**
 * Activities of the directory restore drill (src/workflows/directory-drill.ts) and of the drill
 * sweeper's part for it: choosing the verified archive of a directory target, and finding and
 * removing, on a host, the scratch directories drills left there (only those whose owner file
 * names a run, and whose run mark agrees with it).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findDirectoryTarget, objectivesFor } from '../config';
import { STAGING_MARK_FILE } from '../domain/directory-backup';
import { DIRECTORY_DRILL_PREFIX, DirectoryDrillOwner, DRILL_OWNER_FILE } from '../domain/directory-drill';
import type { DrillSelection, RestoreDrillInput } from '../domain/drill';
import type { DrillScratchDirectoryResource } from '../domain/drill-sweep';
import { LifeboatError } from '../domain/errors';
import { Ports } from './ports';

interface DirectoryRow {
  id: string;
  engine_backup_id: string;
  completed_at: Date | null;
  size_bytes: string | null;
  locations: { primary?: { store: string; bucket: string; key: string; failed?: boolean } };
}

/** The verified archive of a directory target a drill proves: the newest, or one by id (backup id or catalog id). Only the primary region's copy is drilled. */
export async function selectDirectoryDrillBackup(ports: Ports, input: RestoreDrillInput): Promise<DrillSelection> {
  const { config } = ports;
  const t = findDirectoryTarget(config, input.target);
  if ((input.fromRegion ?? 'primary') !== 'primary') {
    throw new LifeboatError(`${t.name} is a directory target, whose drills restore the primary region's archive; drill it without --from-region.`, 'NO_BACKUP_TO_DRILL');
  }
  const rows = (
    await ports.catalog.query<DirectoryRow>(
      "SELECT id::text, engine_backup_id, completed_at, size_bytes::text, locations FROM backups WHERE target = $1 AND status = 'verified' AND backup_type = 'directory' ORDER BY completed_at DESC NULLS LAST",
      [t.name],
    )
  ).filter((r) => r.locations.primary?.key && !r.locations.primary.failed && r.completed_at);
  if (!rows.length) throw new LifeboatError(`${t.name} has no verified directory backup to drill; take one (lifeboat backup ${t.name}) and drill again.`, 'NO_BACKUP_TO_DRILL');
  const choice = input.backup ?? 'latest';
  if (choice === 'random') throw new LifeboatError(`a directory target's drill takes latest or a backup's id, not random.`, 'NO_BACKUP_TO_DRILL');
  const row = choice === 'latest' ? rows[0] : rows.find((r) => r.engine_backup_id === choice || r.id === choice);
  if (!row) throw new LifeboatError(`${t.name} has no verified directory backup "${choice}"; pick one from \`lifeboat backups list --target ${t.name}\`, or drill --backup latest.`, 'NO_BACKUP_TO_DRILL');
  const l = row.locations.primary!;
  return {
    kind: 'directory',
    backupId: row.engine_backup_id,
    catalogId: row.id,
    type: 'directory',
    region: 'primary',
    takenAt: row.completed_at!.toISOString(),
    ...(row.size_bytes ? { sizeBytes: Number(row.size_bytes) } : {}),
    selectedBy: choice === 'latest' ? 'as the newest verified backup' : 'by its id',
    candidates: rows.length,
    target: { name: t.name, engine: 'directory-archive', environment: t.environment },
    rpoObjectiveSeconds: objectivesFor(config, t).rpo,
    directory: { store: l.store, bucket: l.bucket, key: l.key, rtoObjectiveSeconds: objectivesFor(config, t).rto },
  };
}

/** What a scratch directory's owner file and run mark say, or undefined when either is missing, unreadable or they disagree. */
async function ownerOf(dir: string): Promise<DirectoryDrillOwner | undefined> {
  try {
    const owner = JSON.parse(await fsp.readFile(path.join(dir, DRILL_OWNER_FILE), 'utf8')) as DirectoryDrillOwner;
    const mark = (await fsp.readFile(path.join(dir, STAGING_MARK_FILE), 'utf8')).trim();
    if (typeof owner.workflowId !== 'string' || typeof owner.runId !== 'string' || owner.runId !== mark) return undefined;
    return owner;
  } catch {
    return undefined;
  }
}

/**
 * On a host: the drill scratch directories in its temporary directory (lifeboat-drill-...). One
 * without an owner file naming a run (and a run mark that agrees) is listed as not made by
 * lifeboat, so the sweeper leaves it alone.
 */
export async function listDrillScratchDirectories(queue?: string): Promise<DrillScratchDirectoryResource[]> {
  const base = os.tmpdir();
  const out: DrillScratchDirectoryResource[] = [];
  for (const name of (await fsp.readdir(base)).sort()) {
    if (!name.startsWith(DIRECTORY_DRILL_PREFIX)) continue;
    const dir = path.join(base, name);
    const st = await fsp.lstat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const owner = await ownerOf(dir);
    out.push({
      kind: 'directory-scratch',
      name,
      path: dir,
      host: os.hostname(),
      ...(queue ? { queue } : {}),
      ...(owner ? { owner: { workflowId: owner.workflowId, runId: owner.runId }, target: owner.target } : {}),
      createdByLifeboat: !!owner,
    });
  }
  return out;
}

/** On that host: the scratch directory removed, only while its owner file still names the run the sweeper judged closed. */
export async function removeDrillScratchDirectory(r: DrillScratchDirectoryResource): Promise<string> {
  if (!fs.existsSync(r.path)) return `${r.path} was already gone`;
  const owner = await ownerOf(r.path);
  if (!owner || owner.workflowId !== r.owner?.workflowId || owner.runId !== r.owner?.runId) {
    throw new LifeboatError(`${r.path} no longer names run ${r.owner?.runId ?? '(none)'} as its owner, so it is left alone.`, 'DRILL_SCRATCH_NOT_OURS');
  }
  await fsp.rm(r.path, { recursive: true, force: true });
  return `removed ${r.path} on ${r.host}`;
}
