/**
 * The WAL archive, read from the repositories alone (the source may be down): the newest archived
 * segment and when it arrived, the last record and the last commit in the newest segments (read
 * with pg_waldump from a scratch directory under the restores directory), and from these the
 * restore window of a region and the recovery point lag of the source. Also the LSN and segment
 * arithmetic these need.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LifeboatError } from '../../domain/errors';
import type { RecoveryPointLag, RestoreWindow } from '../../domain/ports';
import { isAlive, run } from '../../platform/processes';
import { shellCommand, shq } from './cli';
import { chownToOsUser, ensureRestoresDir } from './files';
import type { PgBackRestSetup, Region } from './options';
import { ownProcessStart, processStart } from './proc';
import type { Repositories, StanzaInfo } from './repository';
import type { ClusterSessions } from './sessions';

export interface ArchiveTail {
  segment: string;
  /** When the newest segment reached the repository. */
  archivedAt: Date;
  /** Start LSN of the last complete record in the newest segment. */
  lastRecordLsn?: string;
  /** The newest commit or abort found in the scanned segments, in microseconds since the epoch. */
  lastCommit?: { atUs: number; at: string; lsn: string };
  /**
   * Set when no commit was found and the scan went back through the segment where the newest
   * backup stopped: every commit in the archive is older than that backup's stop, so any time
   * from `at` on means "everything archived" (the case right after a backup of an idle source).
   */
  noCommitSinceBackup?: { label: string; at: Date; segment: string };
}

/** However idle the source, the scan back to the newest backup's stop reads at most this many segments. */
const MAX_SCAN_TO_BACKUP = 64;

/** Scratch directories of WAL reads under the restores directory, and the age after which no live read owns one (a read takes seconds and writes into it as it goes). */
const WAL_SCRATCH_PREFIX = '.wal-';
const WAL_SCRATCH_STALE_MS = 10 * 60_000;
const WAL_SCRATCH_OWNER = 'owner.pid';

/** False only when the scratch directory names its process and that process is gone (or its pid now belongs to another). */
function walScratchOwnerAlive(dir: string): boolean {
  let pid: number;
  let started: string | undefined;
  try {
    const [pidLine, startLine] = fs.readFileSync(path.join(dir, WAL_SCRATCH_OWNER), 'utf8').split('\n');
    pid = Number(pidLine);
    started = startLine || undefined;
  } catch {
    // Not written yet (a read just starting) or from before owners were recorded: age decides.
    return true;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  return started === undefined || processStart(pid) === started;
}

type WalRecord = { lsn: string; commit?: { atUs: number; at: string } };

export class WalArchive {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'cli' | 'source' | 'osUser' | 'pgBin' | 'restoresDir' | 'walScanSegments' | 'timings'>,
    private readonly repositories: Repositories,
    private readonly sessions: ClusterSessions,
  ) {}

  /**
   * earliest: when the oldest backup set in the region's repository finished (a restore cannot
   * stop before its backup is consistent). latest: when the newest WAL segment reached that
   * repository (pgBackRest's repo-ls time, whole seconds), or the last archived commit when
   * pg_waldump finds one later than that. Everything is read from the repository alone, so this
   * works while the source is down. A time between the last archived commit and `latest` is
   * restorable: startRestore turns it into "everything archived" (see resolveRecovery).
   */
  async restoreWindow(fromRegion: Region = 'primary'): Promise<RestoreWindow> {
    const repo = this.repositories.repoOfRegion(fromRegion);
    const where = `repo${repo} (${fromRegion})`;
    const info = await this.repositories.stanzaInfo(repo, `reading the restore window of ${where}`);
    const sets = (info?.backup ?? []).filter((b) => b.database['repo-key'] === repo && !b.error).sort((a, b) => a.timestamp.stop - b.timestamp.stop);
    if (!info || sets.length === 0) {
      throw new LifeboatError(`There is no backup of stanza ${this.setup.cli.options.stanza} in ${where}, so nothing can be restored from it; take a backup${fromRegion === 'dr' ? ' and its DR copy' : ''} first.`, 'NO_BACKUPS');
    }
    const earliest = new Date(sets[0].timestamp.stop * 1000);
    let latest = new Date(sets[sets.length - 1].timestamp.stop * 1000);
    const tail = await this.archiveTail(repo, info).catch(() => undefined);
    // repo-ls times are whole seconds, cut down: the segment arrived before the end of that second,
    // so a time picked within it (a `now()` just before a WAL switch) is inside the window too.
    // (Never later than now: a window ending in the future would refuse its own end.)
    const arrivedBy = tail ? new Date(Math.min(tail.archivedAt.getTime() + 999, Date.now())) : undefined;
    if (arrivedBy && arrivedBy > latest) latest = arrivedBy;
    // The repository keeps whole seconds: the last commit can be later than the segment's time.
    if (tail?.lastCommit && tail.lastCommit.atUs > latest.getTime() * 1000) latest = new Date(Math.ceil(tail.lastCommit.atUs / 1000));
    // In WAL positions: a restore stops no earlier than its backup's end, and no later than the last archived record.
    const earliestLsn = sets[0].lsn?.stop;
    return { earliest: earliest.toISOString(), latest: latest.toISOString(), ...(earliestLsn ? { earliestLsn } : {}), ...(tail?.lastRecordLsn ? { latestLsn: tail.lastRecordLsn } : {}) };
  }

  /**
   * The data lost if the source died now: none when the source has written no WAL past the newest
   * segment in the primary repository (an idle database after its last archive), otherwise the
   * time since that segment arrived. Read from the repository, plus the source's insert position
   * when it answers (when it does not, the lag is counted from the segment: the safe side).
   */
  async recoveryPointLag(now: Date = new Date()): Promise<RecoveryPointLag | undefined> {
    const repo = this.repositories.repoOfRegion('primary');
    const where = `repo${repo} (${this.repositories.regionOfRepo(repo)})`;
    const info = await this.repositories.stanzaInfo(repo, `reading the WAL archive of ${where}`);
    const newest = info ? await this.newestSegment(info, repo) : undefined;
    if (!newest) return undefined;
    let insertLsn: string | undefined;
    try {
      insertLsn = await this.sessions.currentInsertLsn();
    } catch {
      insertLsn = undefined;
    }
    const at = newest.archivedAt.toISOString();
    if (insertLsn && lsnValue(insertLsn) <= segmentEnd(newest.segment)) {
      return { seconds: 0, basis: 'wal-archive', at, detail: `Every write of ${this.setup.source.instanceId} is archived in ${where} (newest WAL segment ${newest.segment} at ${at}; the source is at ${insertLsn}).` };
    }
    const seconds = Math.max(0, Math.round((now.getTime() - newest.archivedAt.getTime()) / 1000));
    return {
      seconds,
      basis: 'wal-archive',
      at,
      detail: `The newest WAL segment of ${this.setup.source.instanceId} in ${where}, ${newest.segment}, arrived ${seconds} s ago (${at})${insertLsn ? `; the source has written on to ${insertLsn}` : '; the source did not answer'}.`,
    };
  }

  /** The newest archived segment of the repository's current database, with its arrival time. */
  async newestSegment(info: StanzaInfo, repo: number): Promise<{ archiveId: string; segment: string; file: string; archivedAt: Date } | undefined> {
    const archive = info.archive.filter((a) => a.database['repo-key'] === repo && a.max).sort((a, b) => b.database.id - a.database.id)[0];
    if (!archive?.max) return undefined;
    const file = await this.archiveFile(repo, archive.id, archive.max);
    return file ? { archiveId: archive.id, segment: archive.max, ...file } : undefined;
  }

  async archiveFile(repo: number, archiveId: string, segment: string): Promise<{ file: string; archivedAt: Date } | undefined> {
    const dir = `archive/${this.setup.cli.options.stanza}/${archiveId}/${segment.slice(0, 16)}`;
    const result = await run(...this.setup.cli.argv('repo-ls', [`--repo=${repo}`, '--output=json', `--filter=^${segment}-`, '--log-level-console=warn'], [dir]), {
      asUser: this.setup.osUser,
      timeoutMs: this.setup.timings.commandTimeoutMs,
    });
    const entries = JSON.parse(result.stdout) as Record<string, { type: string; time?: number }>;
    const name = Object.keys(entries).find((k) => k !== '.' && entries[k].type === 'file');
    if (!name) return undefined;
    return { file: `${dir}/${name}`, archivedAt: new Date((entries[name].time ?? 0) * 1000) };
  }

  /**
   * The end of the archive: the newest segment, its last complete record and the newest commit
   * in the last few segments, read with pg_waldump from the repository (no source needed).
   */
  async archiveTail(repo: number, known?: StanzaInfo): Promise<ArchiveTail | undefined> {
    const info = known ?? (await this.repositories.stanzaInfo(repo, 'reading the end of the WAL archive'));
    const newest = info ? await this.newestSegment(info, repo) : undefined;
    if (!newest) return undefined;
    const tail: ArchiveTail = { segment: newest.segment, archivedAt: newest.archivedAt };
    await ensureRestoresDir(this.setup.restoresDir, this.setup.osUser);
    this.sweepStaleWalDirs();
    const tmp = fs.mkdtempSync(path.join(this.setup.restoresDir, WAL_SCRATCH_PREFIX));
    try {
      // Names its process: a later read removes the directory at once when that process is gone.
      fs.writeFileSync(path.join(tmp, WAL_SCRATCH_OWNER), `${process.pid}\n${ownProcessStart()}\n`);
      await chownToOsUser(this.setup.osUser, tmp);
      // A few segments back, or on to the newest backup's stop segment when that is near: a
      // backup of an idle source writes segments with no commit, and only the backup's own stop
      // then bounds the last commit.
      const newestSet = (info?.backup ?? [])
        .filter((b) => b.database['repo-key'] === repo && !b.error && /^[0-9A-F]{24}$/.test(b.archive?.stop ?? ''))
        .sort((a, b) => b.timestamp.stop - a.timestamp.stop)[0];
      const stopSegment = newestSet && newestSet.archive.stop.slice(0, 8) === newest.segment.slice(0, 8) && newestSet.archive.stop <= newest.segment ? newestSet.archive.stop : undefined;
      let segment = newest.segment;
      let file: string | undefined = newest.file;
      for (let i = 0; file; i++) {
        const records = await this.walRecords(repo, file, segment, tmp);
        if (i === 0) tail.lastRecordLsn = records.at(-1)?.lsn;
        const commit = [...records].reverse().find((r) => r.commit);
        if (commit?.commit) {
          tail.lastCommit = { ...commit.commit, lsn: commit.lsn };
          break;
        }
        if (newestSet && segment === stopSegment) {
          tail.noCommitSinceBackup = { label: newestSet.label, at: new Date(newestSet.timestamp.stop * 1000), segment };
          break;
        }
        const scanOn = i + 1 < this.setup.walScanSegments || (stopSegment !== undefined && segment > stopSegment && i + 1 < MAX_SCAN_TO_BACKUP);
        const prev = scanOn ? previousSegment(segment) : undefined;
        if (!prev) break;
        segment = prev;
        file = (await this.archiveFile(repo, newest.archiveId, segment))?.file;
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return tail;
  }

  /**
   * Removes scratch directories of WAL reads whose process was killed (a `finally` never runs
   * after kill -9): at once when the process it names is gone, else once it is old, since a fresh
   * one may belong to a read still running in another worker.
   */
  sweepStaleWalDirs(now = Date.now()): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.setup.restoresDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.startsWith(WAL_SCRATCH_PREFIX)) continue;
      const dir = path.join(this.setup.restoresDir, name);
      try {
        if (!walScratchOwnerAlive(dir) || now - fs.statSync(dir).mtimeMs > WAL_SCRATCH_STALE_MS) fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // Removed meanwhile by another sweep, or not ours to remove: the next sweep tries again.
      }
    }
  }

  private async walRecords(repo: number, file: string, segment: string, tmp: string): Promise<WalRecord[]> {
    const decompress = file.endsWith('.zst') ? 'zstd -dcq' : file.endsWith('.gz') ? 'gzip -dc' : file.endsWith('.lz4') ? 'lz4 -dcq' : file.endsWith('.bz2') ? 'bzip2 -dc' : 'cat';
    const out = path.join(tmp, segment);
    const [binary, args] = this.setup.cli.argv('repo-get', [`--repo=${repo}`, '--log-level-console=warn'], [file]);
    const get = shellCommand([binary, ...args]);
    await run('/bin/sh', ['-c', `${get} | ${decompress} > ${shq(out)}`], { asUser: this.setup.osUser, timeoutMs: this.setup.timings.commandTimeoutMs });
    // pg_waldump stops with an error at the end of the segment; the records before it count.
    const dump = await run(this.setup.pgBin('pg_waldump'), ['--path', tmp, segment], { asUser: this.setup.osUser, check: false, env: { TZ: 'UTC' }, timeoutMs: this.setup.timings.commandTimeoutMs });
    fs.rmSync(out, { force: true });
    const records: WalRecord[] = [];
    for (const line of dump.stdout.split('\n')) {
      const lsn = /\blsn: ([0-9A-F]+)\/([0-9A-F]+)/.exec(line);
      if (!lsn) continue;
      const record: WalRecord = { lsn: `${lsn[1].replace(/^0+(?=.)/, '')}/${lsn[2].replace(/^0+(?=.)/, '')}` };
      const commit = /desc: (?:COMMIT|ABORT)\S*\s.*?(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))? UTC/.exec(line);
      if (commit && /rmgr: Transaction/.test(line)) {
        const micros = Number((commit[3] ?? '').padEnd(6, '0'));
        const seconds = Date.parse(`${commit[1]}T${commit[2]}Z`);
        record.commit = { atUs: seconds * 1000 + micros, at: `${commit[1]}T${commit[2]}.${String(micros).padStart(6, '0')}Z` };
      }
      records.push(record);
    }
    return records;
  }
}

/** An LSN (`16/B374D848`) as a number of bytes. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** The LSN just past the end of a WAL segment (16 MiB segments). */
export function segmentEnd(segment: string): bigint {
  const log = BigInt(`0x${segment.slice(8, 16)}`);
  const seg = BigInt(`0x${segment.slice(16)}`);
  return (log << 32n) + (seg + 1n) * 16n * 1024n * 1024n;
}

/** The segment before `segment` (16 MiB segments; undefined at the very start). */
export function previousSegment(segment: string): string | undefined {
  if (!/^[0-9A-F]{24}$/.test(segment)) return undefined;
  const tli = segment.slice(0, 8);
  let log = parseInt(segment.slice(8, 16), 16);
  let seg = parseInt(segment.slice(16), 16);
  if (seg > 0) seg -= 1;
  else if (log > 0) {
    log -= 1;
    seg = 0xff;
  } else return undefined;
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${tli}${hex(log)}${hex(seg)}`;
}
