/**
 * The stanza's pgBackRest repositories as the engine sees them: which repository a region or a
 * backup handle means (the primary region's, or the DR region's), and what `info` says a
 * repository holds (backup sets, archived WAL ranges, database ids). Backups, the WAL reader and
 * restores all read the repositories through this one place.
 */
import { LifeboatError } from '../../domain/errors';
import type { BackupHandle } from '../../domain/ports';
import type { PgBackRestBackupInfo, PgBackRestStanzaInfo } from './cli';
import { classifyPgBackRestError } from './errors';
import type { PgBackRestSetup, Region } from './options';

/** A backup set as `info --output=json` reports it, with the fields lifeboat reads. */
export interface BackupSet extends PgBackRestBackupInfo {
  annotation?: Record<string, string>;
  prior?: string | null;
  reference?: string[] | null;
}

/** A stanza as `info --output=json` reports it, with the lock lifeboat checks and system-id kept exact. */
export interface StanzaInfo extends Omit<PgBackRestStanzaInfo, 'status' | 'backup' | 'db' | 'repo'> {
  status: PgBackRestStanzaInfo['status'] & { lock?: { backup?: { held?: boolean } } };
  /** The repositories, each with its cipher type (`none` when not encrypted). */
  repo: Array<PgBackRestStanzaInfo['repo'][number] & { cipher?: string }>;
  backup: BackupSet[];
  /** system-id is kept as a string: it does not fit a JavaScript number. */
  db: Array<Omit<PgBackRestStanzaInfo['db'][number], 'system-id'> & { 'system-id': string }>;
}

export class Repositories {
  constructor(private readonly setup: Pick<PgBackRestSetup, 'cli' | 'source' | 'primaryRepo' | 'drRepo' | 'timings'>) {}

  /** `info --output=json` for one repository; system-id stays exact as a string. */
  async stanzaInfo(repo: number | undefined, doing: string): Promise<StanzaInfo | undefined> {
    const { cli, timings } = this.setup;
    let stdout: string;
    try {
      stdout = (await cli.exec('info', ['--output=json', '--log-level-console=warn', ...(repo ? [`--repo=${repo}`] : [])], { timeoutMs: timings.commandTimeoutMs })).stdout;
    } catch (err) {
      throw classifyPgBackRestError(err, doing);
    }
    const stanzas = JSON.parse(stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"')) as StanzaInfo[];
    return stanzas.find((s) => s.name === cli.options.stanza);
  }

  repoOf(handle: BackupHandle): number {
    const { primaryRepo, drRepo, source } = this.setup;
    const locator = /^repo(\d+)$/.exec(handle.locator ?? '');
    const repo = locator ? Number(locator[1]) : handle.location === 'primary' ? primaryRepo : handle.location === 'dr' ? drRepo : undefined;
    if (handle.engine !== 'pgbackrest' || (repo !== primaryRepo && repo !== drRepo)) {
      throw new LifeboatError(
        `Backup ${handle.name ?? handle.backupId} is a ${handle.engine} backup in ${handle.locator ?? handle.location}, not in repo${primaryRepo} or repo${drRepo} of ${source.instanceId}; check the catalog entry and the target's repositories in the config.`,
        'INVALID_BACKUP_HANDLE',
      );
    }
    return repo;
  }

  repoOfRegion(region: Region): number {
    return region === 'dr' ? this.setup.drRepo : this.setup.primaryRepo;
  }

  regionOfRepo(repo: number): Region {
    return repo === this.setup.drRepo ? 'dr' : 'primary';
  }
}
