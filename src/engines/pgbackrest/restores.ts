/**
 * Point-in-time restores, always into a NEW cluster under the restores directory, never over the
 * source. startRestore claims the instance name, writes the instance's record, and runs the
 * restore detached: a script (restoreScript) that has pgBackRest write the cluster, gives it its
 * own port and socket with archiving refused, and ends by starting it with pg_ctl, after which
 * PostgreSQL replays WAL from the chosen repository. An attempt adopts only what its own workflow
 * run made; describeInstance, deleteInstance and markServedTraffic work from the same record.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LifeboatError } from '../../domain/errors';
import { describeOwner, isSameRun } from '../../domain/ownership';
import type { InstanceDescription, RestorePoint, RestoreRequest, RunIdentity } from '../../domain/ports';
import { delay, isAlive, livePid, startDetached, stopPid } from '../../platform/processes';
import { claimFile, claimHeld, claimOwner, claimStaleMs } from './claims';
import { shellCommand, shq } from './cli';
import { ARCHIVE_REFUSAL, NO_ARCHIVING_OPTIONS, postmasterAlive, RESTORE_CONF, type RestoredClusters } from './clusters';
import { classifyPgBackRestError } from './errors';
import { awaitLogLine, chownToOsUser, ensureRestoresDir, fileSize, readTail, VALID_NAME, writeJson } from './files';
import type { PgBackRestSetup, Region } from './options';
import { pointLabel, readRecord, refuseUnlessOwnedBy, type InstanceFiles, type RestoreRecord } from './records';
import type { Repositories } from './repository';
import type { WalArchive } from './wal';

const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** Lines of a restore's log (the script, pgBackRest, PostgreSQL) that come with a change of the instance's state. */
const STATE_LINES = /restore command end|lifeboat: restore finished|ready to accept|shut down|terminated|exited|FATAL|PANIC|ERROR: \[|pg_ctl: /;

export class Restores {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'cli' | 'osUser' | 'host' | 'pgBin' | 'restoresDir' | 'restoreSettings' | 'timings'>,
    private readonly repositories: Repositories,
    private readonly clusters: RestoredClusters,
    private readonly wal: WalArchive,
  ) {}

  async startRestore(request: RestoreRequest): Promise<InstanceDescription> {
    this.clusters.refuseSource(request.destinationId, 'restore into');
    if (!VALID_NAME.test(request.destinationId)) {
      // Never rewritten into another name: the caller must name the instance it means.
      throw new LifeboatError(`"${request.destinationId}" cannot name a restored instance (letters, digits and _.- only, starting with a letter or digit, at most 63 characters); choose another destination name.`, 'INVALID_DESTINATION');
    }
    const point = validatePoint(request.point);
    const files = this.clusters.files(request.destinationId);
    await ensureRestoresDir(this.setup.restoresDir, this.setup.osUser);
    // One starter per instance: an attempt racing its own earlier attempt waits for it; another run's start is refused.
    if (!claimFile(files.claim, claimStaleMs(this.setup.timings), request.owner)) {
      const claimant = claimOwner(files.claim);
      if (claimant && !isSameRun(claimant, request.owner)) {
        throw new LifeboatError(
          `Instance ${request.destinationId} is being restored right now by workflow ${claimant.workflowId} (run ${claimant.runId}), not by this workflow run; lifeboat will neither adopt nor delete it: choose another destination name.`,
          'INSTANCE_OWNED_ELSEWHERE',
        );
      }
      return { instanceId: request.destinationId, status: 'restoring', createdByLifeboat: true, owner: request.owner, detail: `Another attempt is starting the restore of ${request.destinationId}.` };
    }
    try {
      return await this.restoreOnce(request, point, files);
    } finally {
      fs.rmSync(files.claim, { force: true });
    }
  }

  private async restoreOnce(request: RestoreRequest, point: RestorePoint, files: InstanceFiles): Promise<InstanceDescription> {
    const fromRegion: Region = request.fromRegion ?? 'primary';
    const repo = this.repositories.repoOfRegion(fromRegion);
    const existing = readRecord(files.record);

    if (existing) {
      // Only this run's own work is adopted (or cleaned and redone); anything else is left exactly as it is.
      if (!existing.owner) {
        throw new LifeboatError(
          `Instance ${existing.instanceId} already exists, restored by lifeboat before owners were recorded, so no workflow run can prove it made it; lifeboat will neither adopt nor delete it: choose another destination name.`,
          'INSTANCE_OWNED_ELSEWHERE',
        );
      }
      if (!isSameRun(existing.owner, request.owner)) {
        throw new LifeboatError(
          `Instance ${existing.instanceId} already exists and belongs to ${describeOwner(existing.owner)}, not to this workflow run; lifeboat will neither adopt nor delete it: choose another destination name.`,
          'INSTANCE_OWNED_ELSEWHERE',
        );
      }
      if (existing.instanceId !== request.destinationId) {
        throw new LifeboatError(
          `The restore directory ${files.dataDir} belongs to instance ${existing.instanceId}, not ${request.destinationId}; choose another destination name.`,
          'INSTANCE_NAME_CONFLICT',
        );
      }
      if (existing.repo !== repo || JSON.stringify(existing.point) !== JSON.stringify(point)) {
        throw new LifeboatError(
          `Instance ${request.destinationId} already exists, restored from repo${existing.repo} to ${pointLabel(existing.point)}, not from repo${repo} to ${pointLabel(point)}; choose another destination name or delete that instance first.`,
          'INSTANCE_NAME_CONFLICT',
        );
      }
      if (livePid(files.pid, files.script) !== undefined) return this.clusters.describe(existing);
      if (fs.existsSync(path.join(files.dataDir, RESTORE_CONF))) {
        // Restored earlier; adopt it, starting it again when it is down.
        if (!postmasterAlive(files.dataDir)) await this.clusters.start(existing);
        return this.clusters.describe(existing);
      }
      // Half-made by an attempt that died before the restore finished: clean it and redo it.
      await this.clusters.stop(files.dataDir);
      fs.rmSync(files.dataDir, { recursive: true, force: true });
      fs.rmSync(files.tablespaces, { recursive: true, force: true });
    } else if (fs.existsSync(files.dataDir)) {
      throw new LifeboatError(`${files.dataDir} already exists but lifeboat has no record of restoring it; lifeboat will not touch it, so choose another destination name or remove that directory by hand.`, 'INSTANCE_NAME_CONFLICT');
    }

    const { recovery, note } = await this.resolveRecovery(point, repo);
    const port = existing?.port ?? (await this.clusters.claimPort(files.name, request.owner.purpose));
    const record: RestoreRecord = {
      instanceId: request.destinationId,
      name: files.name,
      createdBy: 'lifeboat',
      createdAt: existing?.createdAt ?? new Date().toISOString(),
      owner: existing?.owner ?? request.owner,
      repo,
      fromRegion,
      point,
      recovery,
      port,
      dataDir: files.dataDir,
      socketDir: path.join(this.setup.restoresDir, 'sockets', String(port)),
      logFile: files.log,
    };
    if (note) record.note = note;
    // The record comes first: whatever exists under this name from now on is lifeboat's.
    writeJson(files.record, record);
    fs.writeFileSync(files.log, '');
    fs.writeFileSync(files.script, this.restoreScript(record), { mode: 0o755 });
    await chownToOsUser(this.setup.osUser, files.log, files.script);
    const pid = startDetached('/bin/sh', [files.script], { logFile: files.log, pidFile: files.pid, asUser: this.setup.osUser });

    // Watch the first moments: a wrong option or missing backup fails at once and says why.
    const deadline = Date.now() + this.setup.timings.startWatchMs;
    while (Date.now() < deadline && isAlive(pid) && !/restore backup set|restore size/.test(readTail(files.log))) await delay(this.setup.timings.pollMs);
    if (!isAlive(pid) && !fs.existsSync(path.join(files.dataDir, RESTORE_CONF))) {
      throw classifyPgBackRestError(new Error(readTail(files.log)), `restoring ${request.destinationId} from repo${repo}`);
    }
    return this.clusters.describe(record);
  }

  /**
   * Resolves when the restore's log says its state changed (pgBackRest's restore ended, the script
   * hands over to PostgreSQL, PostgreSQL accepts connections or stops, an error), after
   * `timeoutMs`, or when `signal` aborts. Not each WAL segment replayed: those change no state.
   */
  async awaitInstanceChange(instanceId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const record = readRecord(this.clusters.files(instanceId).record);
    if (!record) return;
    await awaitLogLine(record.logFile, STATE_LINES, timeoutMs, signal, this.describedAt.get(instanceId));
  }

  /** Per instance, the size of its log when its state was last described: the waiter looks from there on. */
  private readonly describedAt = new Map<string, number>();

  async describeInstance(instanceId: string): Promise<InstanceDescription | undefined> {
    const files = this.clusters.files(instanceId);
    const record = readRecord(files.record);
    if (record) this.describedAt.set(instanceId, fileSize(record.logFile));
    if (!record) {
      if (claimHeld(files.claim, claimStaleMs(this.setup.timings))) return { instanceId, status: 'restoring', createdByLifeboat: true, detail: `An attempt is starting the restore of ${instanceId}.` };
      if (!fs.existsSync(files.dataDir)) return undefined;
      return { instanceId, status: 'unknown', createdByLifeboat: false, detail: `${files.dataDir} exists but lifeboat has no record of it.` };
    }
    return this.clusters.describe(record);
  }

  /**
   * Every instance under the restores directory: those with lifeboat's record (owner included),
   * and directories without one (described as not lifeboat's). An instance whose restore is being
   * started right now has no record yet and is left out until it has one.
   */
  async listInstances(): Promise<InstanceDescription[]> {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.setup.restoresDir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const names = new Set<string>();
    for (const e of entries) {
      if (e.isFile() && e.name.endsWith('.json')) names.add(e.name.slice(0, -'.json'.length));
      else if (e.isDirectory() && !['sockets', 'ports'].includes(e.name) && !e.name.endsWith('.tablespaces')) names.add(e.name);
    }
    const out: InstanceDescription[] = [];
    for (const name of [...names].sort()) {
      const files = this.clusters.files(name);
      const record = readRecord(files.record);
      if (record) out.push(await this.clusters.describe(record));
      else if (!claimHeld(files.claim, claimStaleMs(this.setup.timings)) && fs.existsSync(files.dataDir)) {
        out.push({ instanceId: name, status: 'unknown', createdByLifeboat: false, detail: `${files.dataDir} exists but lifeboat has no record of it.` });
      }
    }
    return out;
  }

  async deleteInstance(instanceId: string, by: RunIdentity): Promise<void> {
    this.clusters.refuseSource(instanceId, 'delete');
    const files = this.clusters.files(instanceId);
    // An attempt still starting this restore (cancelled, but its activity runs on) would create the
    // instance after this delete: wait for it to finish, then delete what it made. Another run's start is not ours to wait for.
    if (claimHeld(files.claim, claimStaleMs(this.setup.timings))) {
      const claimant = claimOwner(files.claim);
      if (claimant && !isSameRun(claimant, by)) {
        throw new LifeboatError(
          `Refusing to delete ${instanceId}: workflow ${claimant.workflowId} (run ${claimant.runId}) is restoring it, not workflow ${by.workflowId} run ${by.runId}; lifeboat deletes only what the same run created.`,
          'NOT_OWNER',
        );
      }
      throw new LifeboatError(`The restore of ${instanceId} is still being started by another attempt; lifeboat will retry the delete once it has finished.`, 'INSTANCE_STARTING', false);
    }
    const record = readRecord(files.record);
    if (!record) {
      if (fs.existsSync(files.dataDir)) {
        throw new LifeboatError(`Refusing to delete ${files.dataDir}: lifeboat has no record of creating it; remove it by hand if it really is a leftover.`, 'NOT_MANAGED_BY_LIFEBOAT');
      }
      fs.rmSync(files.claim, { force: true });
      return;
    }
    refuseUnlessOwnedBy(instanceId, record, by);
    await this.removeInstanceFiles(record, files);
  }

  /**
   * A failback's last step: removes the instance a failover made the target's primary, once its
   * traffic has moved home. Only the failover run recorded as its owner is accepted (the failback
   * names it from the catalog), never the source; it has served traffic, which is why this is a
   * separate, gated path and not deleteInstance. Missing is success.
   */
  async retireFailedOverInstance(instanceId: string, failoverRun: RunIdentity, by: RunIdentity): Promise<string> {
    this.clusters.refuseSource(instanceId, 'delete');
    const files = this.clusters.files(instanceId);
    const record = readRecord(files.record);
    if (!record) {
      if (fs.existsSync(files.dataDir)) throw new LifeboatError(`Refusing to retire ${files.dataDir}: lifeboat has no record of creating it; remove it by hand if it really is a leftover.`, 'NOT_MANAGED_BY_LIFEBOAT');
      return `${instanceId} was already gone`;
    }
    if (!record.owner || !isSameRun(record.owner, failoverRun)) {
      throw new LifeboatError(
        `Refusing to retire ${instanceId}: it belongs to ${record.owner ? describeOwner(record.owner) : 'no recorded run'}, not to failover ${failoverRun.workflowId} run ${failoverRun.runId} that this failback closes; check the failover id.`,
        'NOT_OWNER',
      );
    }
    await this.removeInstanceFiles(record, files);
    return `retired ${instanceId} (made by failover ${failoverRun.workflowId}) for failback ${by.workflowId}: stopped and removed`;
  }

  private async removeInstanceFiles(record: RestoreRecord, files: InstanceFiles): Promise<void> {
    fs.rmSync(files.claim, { force: true });
    const restorePid = livePid(files.pid, files.script);
    if (restorePid !== undefined) await stopPid(restorePid);
    await this.clusters.stop(files.dataDir);
    if (postmasterAlive(files.dataDir)) {
      throw new LifeboatError(`PostgreSQL in ${files.dataDir} did not stop, so it was not deleted; lifeboat will retry, and if it persists stop it by hand.`, 'INSTANCE_WILL_NOT_STOP', false);
    }
    for (const target of [files.dataDir, files.tablespaces, record.socketDir, files.script, files.pid, files.claim, files.log, this.clusters.portClaim(record.port)]) {
      fs.rmSync(target, { recursive: true, force: true });
    }
    // The record goes last: until then a retry knows what to clean up.
    fs.rmSync(files.record, { force: true });
  }

  async markServedTraffic(instanceId: string): Promise<void> {
    const files = this.clusters.files(instanceId);
    const record = readRecord(files.record);
    if (!record) {
      throw new LifeboatError(`There is no restored instance ${instanceId} to point traffic at; check the instance name of the cutover.`, 'INSTANCE_NOT_FOUND');
    }
    if (record.servedTraffic) return;
    writeJson(files.record, { ...record, servedTraffic: true, servedTrafficAt: new Date().toISOString() } satisfies RestoreRecord);
  }

  /**
   * The pgBackRest recovery options for a point. A time after the last archived commit cannot
   * be "reached" (PostgreSQL stops with "recovery ended before configured recovery target was
   * reached"), yet its meaning is clear: everything archived. So such a time is pinned to the
   * last complete WAL record archived now, as an LSN, which also keeps WAL archived later (the
   * source may still be running) out of the restore.
   */
  private async resolveRecovery(point: RestorePoint, repo: number): Promise<{ recovery: string[]; note?: string }> {
    switch (point.kind) {
      case 'latest':
        return { recovery: ['--type=default'] };
      case 'lsn':
        // With a backup named (a failback), its own timeline: 'latest' could follow another timeline forked later.
        return { recovery: ['--type=lsn', `--target=${point.lsn}`, ...(point.backupId ? [`--set=${point.backupId}`, '--target-timeline=current'] : []), '--target-action=promote'] };
      case 'name':
        return { recovery: ['--type=name', `--target=${point.name}`, '--target-action=promote'] };
      case 'backup':
        // The backup as it was when it ended: its own set, replayed to its consistent point only.
        return { recovery: ['--type=immediate', `--set=${point.backupId}`, '--target-action=promote'] };
      case 'time': {
        const at = new Date(point.at);
        const atUs = at.getTime() * 1000;
        const tail = await this.wal.archiveTail(repo).catch(() => undefined);
        if (tail?.lastRecordLsn) {
          const past = tail.lastCommit ? atUs >= tail.lastCommit.atUs : tail.noCommitSinceBackup ? at >= tail.noCommitSinceBackup.at : at >= tail.archivedAt;
          if (past) {
            const lastCommit = tail.lastCommit
              ? ` (${tail.lastCommit.at})`
              : tail.noCommitSinceBackup
                ? ` (none since backup ${tail.noCommitSinceBackup.label} stopped at ${tail.noCommitSinceBackup.at.toISOString()})`
                : '';
            return {
              recovery: ['--type=lsn', `--target=${tail.lastRecordLsn}`, '--target-action=promote'],
              note: `${at.toISOString()} is after the last archived commit${lastCommit}, so the restore replays everything archived, up to ${tail.lastRecordLsn} in ${tail.segment}.`,
            };
          }
        }
        return { recovery: ['--type=time', `--target=${pgTime(at)}`, '--target-action=promote'] };
      }
    }
  }

  /**
   * The detached restore: pgBackRest writes the cluster, then the cluster gets its own settings
   * (port, socket, no archiving) through an include that wins over the source's settings, and
   * pg_ctl starts it; WAL replay happens in PostgreSQL from there. The settings file is written
   * last, atomically: its presence marks a finished restore.
   */
  private restoreScript(record: RestoreRecord): string {
    const { cli, host, restoreSettings, pgBin } = this.setup;
    const dir = record.dataDir;
    const files = this.clusters.files(record.instanceId);
    const [binary, args] = cli.argv('restore', [
      `--repo=${record.repo}`,
      `--pg1-path=${dir}`,
      // Tablespaces too go under the restores directory, never back to the source's locations.
      `--tablespace-map-all=${files.tablespaces}`,
      '--archive-mode=off',
      ...record.recovery,
      '--log-level-console=info',
    ]);
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: host,
      port: record.port,
      unix_socket_directories: record.socketDir,
      cluster_name: `lifeboat-${record.name}`.slice(0, 63),
      archive_mode: false,
      archive_command: ARCHIVE_REFUSAL,
      hot_standby: true,
      ...restoreSettings,
    };
    const conf = [`# Written by lifeboat for restored instance ${record.instanceId}; it overrides the source's settings.`, ...Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`)].join('\n');
    return [
      '#!/bin/sh',
      '# lifeboat: restore of one instance; safe to rerun only after its directory is removed.',
      'set -eu',
      `echo "lifeboat: restoring ${record.name} from repo${record.repo} (${pointLabel(record.point).replace(/["$`\\]/g, '')})"`,
      `mkdir -p ${shq(record.socketDir)}`,
      `mkdir -p -m 700 ${shq(dir)}`,
      shellCommand([binary, ...args]),
      `[ -f ${shq(`${dir}/postgresql.conf`)} ] || : > ${shq(`${dir}/postgresql.conf`)}`,
      `printf '\\n# Added by lifeboat: settings of this restored instance.\\ninclude %s\\n' ${shq(`'${RESTORE_CONF}'`)} >> ${shq(`${dir}/postgresql.conf`)}`,
      `cat > ${shq(`${dir}/${RESTORE_CONF}.tmp`)} <<'LIFEBOAT_CONF_EOF'`,
      conf,
      'LIFEBOAT_CONF_EOF',
      `mv ${shq(`${dir}/${RESTORE_CONF}.tmp`)} ${shq(`${dir}/${RESTORE_CONF}`)}`,
      `echo "lifeboat: restore finished; starting PostgreSQL on port ${record.port}"`,
      // Waits a moment so the postmaster is up (or has failed) when this process ends.
      `exec ${shq(pgBin('pg_ctl'))} -D ${shq(dir)} -l ${shq(record.logFile)} -o ${shq(NO_ARCHIVING_OPTIONS)} -w -t 5 start`,
      '',
    ].join('\n');
  }
}


/** A pgBackRest backup label: full, or differential/incremental on top of one. */
const BACKUP_LABEL = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

function validatePoint(point: RestorePoint): RestorePoint {
  switch (point.kind) {
    case 'time': {
      const at = new Date(point.at);
      if (Number.isNaN(at.getTime())) {
        throw new LifeboatError(`The restore time "${point.at}" is not a valid ISO-8601 time; give a time such as 2024-05-01T12:30:00Z.`, 'INVALID_RESTORE_POINT');
      }
      return { kind: 'time', at: at.toISOString() };
    }
    case 'lsn':
      if (!LSN.test(point.lsn)) throw new LifeboatError(`The restore LSN "${point.lsn}" is not a PostgreSQL LSN; give one such as 0/3000060.`, 'INVALID_RESTORE_POINT');
      if (point.backupId !== undefined && !BACKUP_LABEL.test(point.backupId)) throw new LifeboatError(`"${point.backupId}" is not a pgBackRest backup label; give one such as 20261130-085650F (lifeboat backups list).`, 'INVALID_RESTORE_POINT');
      return point;
    case 'name':
      if (!/^[\w .:@+-]{1,63}$/.test(point.name)) {
        throw new LifeboatError(`The restore point name "${point.name}" is not usable; give the name passed to pg_create_restore_point (letters, digits, spaces and _.:@+-, at most 63 characters).`, 'INVALID_RESTORE_POINT');
      }
      return point;
    case 'latest':
      return point;
    case 'backup':
      if (!BACKUP_LABEL.test(point.backupId)) throw new LifeboatError(`"${point.backupId}" is not a pgBackRest backup label; give one such as 20261130-085650F (lifeboat backups list).`, 'INVALID_RESTORE_POINT');
      return point;
    default:
      throw new LifeboatError(`The restore point ${JSON.stringify(point)} is not a time, LSN, name, backup or latest; request one of those.`, 'INVALID_RESTORE_POINT');
  }
}

/** A value for postgresql.conf. */
function confValue(value: string | number | boolean): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** An ISO time as pgBackRest and PostgreSQL both parse it (`2024-05-01 12:30:00.123+00`). */
function pgTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '+00');
}
