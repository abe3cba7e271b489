/**
 * pgBackRest backups of the source, annotated `lifeboat-backup=<name>`. The annotation is what
 * makes them idempotent: a retried activity finds its backup by name and adopts it. Backups run
 * DETACHED (own process group, pid and log file in the run directory) so a worker crash or
 * activity timeout does not kill them; a retried start adopts the live process. This module owns
 * starting (backupInto), following, stopping, verifying, copying to the DR repository and
 * expiring backups.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeError, LifeboatError } from '../../domain/errors';
import { formatBytes } from '../../domain/format';
import type { BackupHandle, BackupKind, BackupProgress, BackupVerification } from '../../domain/ports';
import { delay, isAlive, livePid, startDetached, stopPid } from '../../platform/processes';
import { claimFile, claimStaleMs } from './claims';
import { classifyPgBackRestError, lastErrorLine } from './errors';
import { awaitLogLine, fileSize, fileTime, localName, readTail, removeFiles } from './files';
import type { PgBackRestSetup } from './options';
import { processGroupWork } from './proc';
import { RepositoryCopier, type RepositoryCopyProgress } from './repository-copy';
import { checkBackupSet, describeSetCheck } from './set-check';
import type { BackupSet, Repositories, StanzaInfo } from './repository';
import type { ClusterSessions } from './sessions';

/** How often a running backup's percent is read with `info` (it only feeds heartbeats and the stall check, with the log size and CPU). */
const PERCENT_EVERY_MS = 5000;

/** The pgBackRest annotation key that carries lifeboat's backup name. */
export const BACKUP_ANNOTATION = 'lifeboat-backup';

/** A pgBackRest backup label (`20240501-123000F`, `..._20240501-130000D`): a handle naming one holds no lifeboat name. */
const LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

/** The files of a detached backup in the run directory, and what its command line holds (to tell it from a reused pid). */
interface BackupFiles {
  pid: string;
  log: string;
  annotation: string;
  marker: string;
}

export class Backups {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'cli' | 'source' | 'runDir' | 'osUser' | 'primaryRepo' | 'drRepo' | 'timings'> & Partial<Pick<PgBackRestSetup, 'drCopy'>>,
    private readonly repositories: Repositories,
    private readonly sessions: ClusterSessions,
  ) {
    this.copier = new RepositoryCopier(setup, repositories);
  }

  private readonly copier: RepositoryCopier;
  /** Per backup log, its size when the backup's progress was last read: the waiter looks from there on. */
  private readonly describedAt = new Map<string, number>();

  async startBackup(request: { backupName: string; kind: BackupKind }): Promise<BackupHandle> {
    // pgBackRest's smallest self-contained backup is a full one; an RDS-style "snapshot" is a full.
    const type = request.kind === 'snapshot' ? 'full' : request.kind;
    return this.backupInto(this.setup.primaryRepo, request.backupName, type);
  }

  async backupProgress(handle: BackupHandle): Promise<BackupProgress> {
    const repo = this.repositories.repoOf(handle);
    // The process first, then the repository: a backup that finishes in between shows in info.
    const { name, files, pid } = this.processOf(repo, handle);
    if (files) this.describedAt.set(files.log, fileSize(files.log));
    // While pgBackRest runs, the set is not done (it adds the set, expires, then ends): one `info`
    // for the percent, not a second one for a set that cannot be there yet.
    const set = pid === undefined ? await this.findBackup(repo, handle) : undefined;
    const what = `${name ? `backup ${name}` : `backup ${handle.backupId}`} in repo${repo} (${this.repositories.regionOfRepo(repo)})`;
    if (set) {
      if (files && pid === undefined) removeFiles(files.pid, files.log);
      const progress: BackupProgress = {
        state: 'complete',
        percent: 100,
        detail: `pgBackRest ${set.type} ${what} is complete as ${set.label}: ${formatBytes(set.info.size)} of data, ${formatBytes(set.info.repository.delta)} stored.`,
        sizeBytes: set.info.repository.delta,
        startedAt: iso(set.timestamp.start),
        completedAt: iso(set.timestamp.stop),
        backupId: set.label,
      };
      if (set.error) progress.detail += ' pgBackRest reported page checksum errors: verification will fail.';
      return progress;
    }
    if (pid !== undefined && files) {
      const percent = await this.runningPercent(files.log);
      const progress: BackupProgress = {
        state: 'running',
        detail: `pgBackRest ${what} is running${percent !== undefined ? ` (${percent}% copied)` : ''}.`,
        // Anything pgBackRest does moves one of these; a hung pgBackRest (alive, stuck) moves none.
        activity: [percent ?? '', fileSize(files.log), processGroupWork(pid)].join('/'),
      };
      if (percent !== undefined) progress.percent = percent;
      const started = fileTime(files.pid);
      if (started) progress.startedAt = started;
      return progress;
    }
    const failure = files ? lastErrorLine(readTail(files.log)) : undefined;
    return {
      state: 'failed',
      detail: failure
        ? `pgBackRest ${what} failed: ${failure} (log: ${files!.log}); take a new backup.`
        : `There is no ${what} and no pgBackRest process making it; it failed or was expired, so take a new backup.`,
    };
  }

  /**
   * Resolves when the backup's process changes what it shows: its log grows (pgBackRest's info
   * lines: start, stop, the new label, expire, command end) or, after its closing "command end",
   * it exits; else after `timeoutMs`, or at once when no process makes it (or `signal` aborts).
   * The log is watched with inotify (fs.watch), not read in a loop: a finished backup is seen
   * within milliseconds instead of at the next poll, and a long one costs nothing while it runs.
   */
  async awaitBackupChange(handle: BackupHandle, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const repo = this.repositories.repoOf(handle);
    const { files, pid } = this.processOf(repo, handle);
    if (!files || pid === undefined || signal?.aborted) return;
    const ended = () => /command end/.test(readTail(files.log, 4096));
    // Any line: pgBackRest logs only its steps at info level (start, stop, label, expire, end).
    if (!ended()) await awaitLogLine(files.log, /\S/, timeoutMs, signal, this.describedAt.get(files.log));
    // "command end" is pgBackRest's last line: its exit follows within milliseconds, so wait for that briefly.
    if (ended()) {
      const until = Date.now() + 2000;
      while (isAlive(pid) && Date.now() < until && !signal?.aborted) await delay(10);
    }
  }

  /**
   * Stops the pgBackRest process making this backup, if one runs (a hung backup, or a cancelled
   * workflow's). SIGCONT too, so a stopped process can act on SIGTERM: pgBackRest then ends its
   * helpers and frees the stanza's lock; an unfinished set is cleaned or resumed by the next backup.
   */
  async stopBackup(handle: BackupHandle): Promise<void> {
    const repo = this.repositories.repoOf(handle);
    const { pid } = this.processOf(repo, handle);
    if (pid === undefined) return;
    const stopping = stopPid(pid, 10000);
    try {
      process.kill(-pid, 'SIGCONT');
    } catch {
      /* already gone */
    }
    await stopping;
  }

  async verifyBackup(handle: BackupHandle): Promise<BackupVerification> {
    const repo = this.repositories.repoOf(handle);
    const where = `repo${repo} (${this.repositories.regionOfRepo(repo)})`;
    const checks: BackupVerification['checks'] = [];
    const info = await this.repositories.stanzaInfo(repo, 'verifying a backup');
    const set = info ? this.matchBackup(info, repo, handle) : undefined;
    if (!set || !info) {
      checks.push({ name: 'backup-set', ok: false, detail: `There is no finished backup ${handle.name ?? handle.backupId} in ${where}.` });
      return { ok: false, checks };
    }
    checks.push({
      name: 'backup-set',
      ok: true,
      detail: `Backup set ${set.label} (${set.type}) exists in ${where}: taken ${iso(set.timestamp.start)} to ${iso(set.timestamp.stop)}, WAL ${set.archive.start} to ${set.archive.stop}.`,
    });
    checks.push({
      name: 'page-checksums',
      ok: set.error !== true,
      detail:
        set.error === true
          ? `pgBackRest found page checksum errors while taking ${set.label}; check the source for corruption and take a new backup.`
          : set.error === false
            ? 'pgBackRest found no page checksum errors while copying the data files.'
            : 'pgBackRest did not check page checksums for this backup.',
    });

    checks.push(await this.verifySetContent(repo, where, set, info));

    // The backup must be of the source's data: compare system identifiers when the source answers.
    const db = info.db.find((d) => d.id === set.database.id && d['repo-key'] === set.database['repo-key']);
    let sourceId: string | undefined;
    try {
      sourceId = (await this.sessions.facts(this.setup.source.port, this.setup.source.host)).identity;
    } catch {
      sourceId = undefined;
    }
    checks.push({
      name: 'source-identity',
      ok: !!db && (!sourceId || db['system-id'] === sourceId),
      detail: !db
        ? `pgBackRest lists no database entry for ${set.label}.`
        : !sourceId
          ? `Taken of the cluster with system identifier ${db['system-id']} (source not reachable to compare).`
          : db['system-id'] === sourceId
            ? `Taken of the source cluster (system identifier ${sourceId}).`
            : `Taken of the cluster with system identifier ${db['system-id']}, but the source now has ${sourceId}: the source was re-initialized since.`,
    });
    return { ok: checks.every((c) => c.ok), checks };
  }

  /**
   * Reads this set's files (and those it reuses) and the WAL it needs back from the repository
   * and checks each against its manifest: time proportional to the set, not to the repository
   * (see set-check.ts). A set lifeboat cannot read itself (an encrypted repository) is checked by
   * pgBackRest's `verify`, which in 2.45 ignores --set and re-reads the whole repository;
   * summarizeVerify then picks this set's own counts out of its report.
   */
  private async verifySetContent(repo: number, where: string, set: BackupSet, info: StanzaInfo): Promise<{ name: string; ok: boolean; detail: string }> {
    const archiveId = info.archive.find((a) => a.database.id === set.database.id && a.database['repo-key'] === repo)?.id;
    const options = { cli: this.setup.cli, osUser: this.setup.osUser, repo, timeoutMs: this.setup.timings.commandTimeoutMs };
    // An encrypted repository is known from info alone: its manifests need the cipher to be read.
    const cipher = info.repo.find((r) => r.key === repo)?.cipher;
    let result: Awaited<ReturnType<typeof checkBackupSet>>;
    if (cipher && cipher !== 'none') result = { unreadable: `the repository is encrypted (${cipher})` };
    else {
      try {
        result = await checkBackupSet(options, set.label, archiveId, this.previousSetWalStop(info, repo, set));
      } catch (err) {
        return { name: 'repository-verify', ok: false, detail: `${set.label} could not be read back from ${where}: ${describeError(err)}` };
      }
    }
    if (!('unreadable' in result)) return { name: 'repository-verify', ok: result.problems.length === 0, detail: describeSetCheck(result, set.label, where) };
    const verifyArgs = [`--repo=${repo}`, '--output=text', '--verbose', '--log-level-console=warn'];
    const runVerify = (extra: string[]) =>
      this.setup.cli.exec('verify', [...verifyArgs, ...extra], { check: false, timeoutMs: this.setup.timings.commandTimeoutMs }).catch((err: unknown) => ({ code: -1, stdout: '', stderr: describeError(err) }));
    // --set is passed for versions that honour it; should one refuse it, verify runs without it.
    let verify = await runVerify([`--set=${set.label}`]);
    if (verify.code !== 0 && /option '?set'? .*(not valid|invalid)|invalid option '--set'/i.test(`${verify.stdout}${verify.stderr}`)) verify = await runVerify([]);
    const summary = summarizeVerify(verify, set.label);
    return { ...summary, detail: `${summary.detail} (lifeboat cannot read this set itself: ${result.unreadable}, so pgBackRest verified the whole repository)` };
  }

  /** The last WAL segment of the set taken before `set` in the same repository and database, if any. */
  private previousSetWalStop(info: StanzaInfo, repo: number, set: BackupSet): string | undefined {
    const earlier = info.backup
      .filter((b) => b.database['repo-key'] === repo && b.database.id === set.database.id && b.label !== set.label && b.timestamp.stop <= set.timestamp.start)
      .sort((a, b) => a.timestamp.stop - b.timestamp.stop);
    return earlier[earlier.length - 1]?.archive?.stop;
  }

  /**
   * pgBackRest 2.45 cannot copy a backup set from one repository to another. What the DR region
   * needs is a complete, restorable backup set in its own repository plus the WAL after it; the
   * WAL is already archived to every repository by archive-push. Two ways, per target (drCopy):
   * - repository-copy: lifeboat copies the set's objects and its WAL from the primary repository's
   *   bucket to the DR one and pgBackRest registers it there (repository-copy.ts). The same set,
   *   same label and annotation; the source is not read again. Done in place: the handle returned
   *   names the finished copy.
   * - second-backup: a second backup of the source, of the same type, taken straight into the DR
   *   repository and annotated with copyName (a diff or incr becomes a full when the DR repository
   *   has no full yet): a second full read of the source, and it needs the source up.
   */
  async copyToDisasterRecovery(handle: BackupHandle, request: { copyName: string; onProgress?: (progress: RepositoryCopyProgress) => void }): Promise<BackupHandle> {
    const repo = this.repositories.repoOf(handle);
    if (repo === this.setup.drRepo) {
      throw new LifeboatError(`Backup ${handle.name ?? handle.backupId} is already in the DR repository repo${repo}; only backups in the primary repository repo${this.setup.primaryRepo} are copied.`, 'INVALID_BACKUP_HANDLE');
    }
    const original = await this.findBackup(repo, handle);
    if (!original) {
      const progress = await this.backupProgress(handle);
      if (progress.state === 'running') {
        throw new LifeboatError(`Backup ${handle.name ?? handle.backupId} is still running in repo${repo}; lifeboat copies it to the DR repository when it has finished.`, 'BACKUP_NOT_FINISHED', false);
      }
      throw new LifeboatError(`Backup ${handle.name ?? handle.backupId} does not exist in repo${repo}, so it cannot be copied to the DR repository; take a new backup.`, 'BACKUP_NOT_FOUND');
    }
    if (this.setup.drCopy !== 'repository-copy') return this.backupInto(this.setup.drRepo, request.copyName, original.type);
    const startedAt = new Date().toISOString();
    const done = await this.copier.copySet(original.label, request.onProgress);
    const name = original.annotation?.[BACKUP_ANNOTATION];
    return {
      engine: 'pgbackrest',
      backupId: original.label,
      ...(name ? { name } : {}),
      location: 'dr',
      locator: `repo${this.setup.drRepo}`,
      copy: { mode: 'repository-copy', startedAt, completedAt: new Date().toISOString(), ...done },
    };
  }

  async deleteBackup(handle: BackupHandle, options: { copiedBase?: boolean } = {}): Promise<void> {
    const repo = this.repositories.repoOf(handle);
    // A backup still running is stopped first (a cancelled workflow compensating), then expired if it made it.
    const { files, pid } = this.processOf(repo, handle);
    if (pid !== undefined) await stopPid(pid);
    const info = await this.repositories.stanzaInfo(repo, 'deleting a backup');
    const set = info ? this.matchBackup(info, repo, handle) : undefined;
    if (files) removeFiles(files.pid, files.log);
    if (!set || !info) return;
    if (!set.annotation?.[BACKUP_ANNOTATION]) {
      throw new LifeboatError(
        `Backup ${set.label} in repo${repo} has no ${BACKUP_ANNOTATION} annotation, so lifeboat did not make it and will not expire it; remove it from the catalog or expire it by hand if it is really unwanted.`,
        'NOT_MANAGED_BY_LIFEBOAT',
      );
    }
    // pgBackRest expires a set together with every backup that depends on it: never silently.
    const dependents = info.backup.filter((b) => b.database['repo-key'] === repo && b.label !== set.label && (b.prior === set.label || b.reference?.includes(set.label)));
    if (dependents.length > 0) {
      throw new LifeboatError(
        `Backup ${set.label} in repo${repo} is the base of ${dependents.map((d) => d.label).join(', ')}, which pgBackRest would expire with it; delete those backups first.`,
        'BACKUP_HAS_DEPENDENTS',
      );
    }
    // pgBackRest requires every new label to sort after every label it has seen: once the newest
    // full is gone, a diff or incr on an older full would be refused until the next full backup.
    // A base copied into the DR repository only for a copy being expired is not that repository's own newest full:
    // the next repository copy brings a base along again when it needs one.
    const fulls = info.backup.filter((b) => b.database['repo-key'] === repo && b.type === 'full').sort((a, b) => a.label.localeCompare(b.label));
    if (!(options.copiedBase && repo === this.setup.drRepo) && set.type === 'full' && fulls.length > 1 && fulls[fulls.length - 1].label === set.label) {
      throw new LifeboatError(
        `Backup ${set.label} is the newest full backup in repo${repo}, and expiring it would make pgBackRest refuse differential and incremental backups until the next full one; take a new full backup first, then delete this one.`,
        'NEWEST_FULL_BACKUP',
      );
    }
    try {
      await this.setup.cli.exec('expire', [`--repo=${repo}`, `--set=${set.label}`, '--log-level-console=warn'], { timeoutMs: this.setup.timings.commandTimeoutMs });
    } catch (err) {
      throw classifyPgBackRestError(err, `expiring backup ${set.label} from repo${repo}`);
    }
  }

  /** Starts (or adopts) the backup named `name` into `repo`; pgOptions point pgBackRest at another cluster than the source (a cut-over instance). */
  async backupInto(repo: number, name: string, type: 'full' | 'diff' | 'incr', pgOptions: string[] = []): Promise<BackupHandle> {
    if (!name || /[\n\r\0]/.test(name)) {
      throw new LifeboatError(`The backup name ${JSON.stringify(name)} is empty or has control characters; derive it from the workflow id.`, 'INVALID_BACKUP_NAME');
    }
    const files = this.backupFiles(repo, name);
    const pending: BackupHandle = { engine: 'pgbackrest', backupId: name, name, location: this.repositories.regionOfRepo(repo), locator: `repo${repo}` };
    const running = livePid(files.pid, files.marker);
    const info = await this.repositories.stanzaInfo(repo, `looking for backup ${name}`);
    const found = info ? this.matchBackup(info, repo, pending) : undefined;
    if (found) {
      if (running === undefined) removeFiles(files.pid, files.log);
      return { ...pending, backupId: found.label };
    }
    if (running !== undefined) return pending;
    if (info?.status.lock?.backup?.held) {
      throw new LifeboatError(`Another pgBackRest backup or expire of stanza ${this.setup.cli.options.stanza} is running, so backup ${name} cannot start yet; lifeboat will retry when it finishes.`, 'PGBACKREST_BUSY', false);
    }

    fs.mkdirSync(this.setup.runDir, { recursive: true });
    // One starter per name: an attempt racing its own earlier attempt adopts instead of starting twice.
    const claim = `${files.pid}.starting`;
    if (!claimFile(claim, claimStaleMs(this.setup.timings))) return pending;
    try {
      fs.writeFileSync(files.log, '');
      const [binary, args] = this.setup.cli.argv('backup', [`--repo=${repo}`, `--type=${type}`, ...pgOptions, files.annotation, '--log-level-console=info']);
      const pid = startDetached(binary, args, { logFile: files.log, pidFile: files.pid, asUser: this.setup.osUser });

      // Watch until the backup is under way (or dead): a busy lock or bad option fails at once.
      const deadline = Date.now() + this.setup.timings.startWatchMs;
      while (Date.now() < deadline && isAlive(pid) && !/backup start archive|new backup label/.test(readTail(files.log))) await delay(this.setup.timings.pollMs);
      if (!isAlive(pid)) {
        const done = await this.findBackup(repo, pending);
        if (done) return { ...pending, backupId: done.label };
        throw classifyPgBackRestError(new Error(readTail(files.log) || 'the backup process exited without output'), `starting backup ${name} into repo${repo}`);
      }
      return pending;
    } finally {
      fs.rmSync(claim, { force: true });
    }
  }

  private backupFiles(repo: number, name: string): BackupFiles {
    const base = path.join(this.setup.runDir, `pgbackrest-backup-repo${repo}-${localName(name)}`);
    const annotation = `--annotation=${BACKUP_ANNOTATION}=${name}`;
    // The marker guards against pid reuse; it includes what follows the annotation on the command line.
    return { pid: `${base}.pid`, log: `${base}.log`, annotation, marker: `${annotation} --log-level-console=info backup` };
  }

  /**
   * The files of the backup a handle names (a handle holding only a pgBackRest label has none),
   * and the pid of the process making it while that process runs.
   */
  private processOf(repo: number, handle: BackupHandle): { name?: string; files?: BackupFiles; pid?: number } {
    const name = handle.name ?? (LABEL.test(handle.backupId) ? undefined : handle.backupId);
    const files = name ? this.backupFiles(repo, name) : undefined;
    return { name, files, pid: files ? livePid(files.pid, files.marker) : undefined };
  }

  private async findBackup(repo: number, handle: BackupHandle): Promise<BackupSet | undefined> {
    const info = await this.repositories.stanzaInfo(repo, `looking up backup ${handle.name ?? handle.backupId}`);
    return info ? this.matchBackup(info, repo, handle) : undefined;
  }

  private matchBackup(info: StanzaInfo, repo: number, handle: BackupHandle): BackupSet | undefined {
    const inRepo = info.backup.filter((b) => b.database['repo-key'] === repo);
    if (handle.name) return inRepo.find((b) => b.annotation?.[BACKUP_ANNOTATION] === handle.name);
    return inRepo.find((b) => b.label === handle.backupId) ?? inRepo.find((b) => b.annotation?.[BACKUP_ANNOTATION] === handle.backupId);
  }

  /** pgBackRest reports a running backup's progress only in its text output. */
  private async runningPercent(log: string): Promise<number | undefined> {
    // Read at most every PERCENT_EVERY_MS per backup: a waiter woken by each log line would
    // otherwise run `info` beside pgBackRest several times a second on a busy host.
    const last = this.percents.get(log);
    if (last && Date.now() - last.at < PERCENT_EVERY_MS) return last.percent;
    let percent: number | undefined;
    try {
      const text = (await this.setup.cli.exec('info', ['--log-level-console=warn'], { timeoutMs: this.setup.timings.commandTimeoutMs })).stdout;
      const m = /backup\/expire running - (\d+(?:\.\d+)?)% complete/.exec(text);
      percent = m ? Number(m[1]) : undefined;
    } catch {
      percent = undefined;
    }
    this.percents.set(log, { at: Date.now(), percent });
    return percent;
  }

  /** Per backup log, the last percent read and when. */
  private readonly percents = new Map<string, { at: number; percent: number | undefined }>();
}

function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}

/** What `pgbackrest verify --set` found, as one check. */
function summarizeVerify(result: { code: number; stdout: string; stderr: string }, label: string): { name: string; ok: boolean; detail: string } {
  const text = `${result.stdout}\n${result.stderr}`;
  const backup = new RegExp(`backup: ${label.replace(/[-_]/g, '[-_]')}, status: (\\S+?),? total files checked: (\\d+), total valid files: (\\d+)`).exec(text);
  const wal = /total WAL checked: (\d+), total valid WAL: (\d+)/.exec(text);
  // pgBackRest 2.45 ignores --set and reports every backup in the repository: only this set's own
  // counts (the line after its `backup:` line) and the archive's count, so a broken older backup
  // does not fail the verification of a good one (nor hide a problem in this one).
  const counts = /^\s*missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)/;
  const lines = text.split('\n');
  const countsAfter = (index: number) => (index >= 0 && index + 1 < lines.length ? counts.exec(lines[index + 1]) : null);
  const own = countsAfter(lines.findIndex((l) => new RegExp(`backup: ${label.replace(/[-_]/g, '[-_]')}, status: `).test(l)));
  const walCounts = lines.map((l, i) => (/archiveId: .*total WAL checked/.test(l) ? countsAfter(i) : null));
  const problems = [own, ...walCounts].some((m) => m !== null && m.slice(1).some((n) => Number(n) > 0));
  // A non-zero exit can come from another set; this set's own verdict decides.
  const ok = backup?.[1] === 'valid' && !problems;
  if (!backup) {
    const error = lastErrorLine(text);
    return { name: 'repository-verify', ok: false, detail: `pgbackrest verify did not report on ${label}${error ? `: ${error}` : ` (exit code ${result.code})`}.` };
  }
  const walPart = wal ? `; ${wal[2]} of ${wal[1]} WAL segments valid` : '';
  return {
    name: 'repository-verify',
    ok,
    detail: ok
      ? `pgbackrest verify read ${backup[3]} of ${backup[2]} files of ${label} back from the repository and found them valid${walPart}.`
      : `pgbackrest verify found ${label} ${backup[1]}: ${backup[3]} of ${backup[2]} files valid${walPart}${problems ? ', with missing or invalid files' : ''}.`,
  };
}
