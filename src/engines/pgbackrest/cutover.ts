/**
 * Cutover, from the engine's side: fencing the source (read-only, sessions ended, undone by
 * unfenceSource), readying a restored instance to take traffic (restarted with archive_mode on,
 * WAL kept, nothing pushed), and once traffic has moved, protecting it as the target's new
 * primary (its WAL archived into the stanza's repositories on its own timeline, and a full
 * backup of it started).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeError, LifeboatError } from '../../domain/errors';
import type { FinalWal, NewPrimaryProtection, SourceFence } from '../../domain/ports';
import { delay, run } from '../../platform/processes';
import type { Backups } from './backups';
import { shellCommand, shq } from './cli';
import { postmasterAlive, type RestoredClusters } from './clusters';
import { classifyPgBackRestError, lastErrorLine } from './errors';
import { localName, readJsonFile, readTail, writeJson } from './files';
import type { PgBackRestSetup } from './options';
import { readRecord, type InstanceFiles, type RestoreRecord } from './records';
import type { ClusterSessions } from './sessions';

export class Cutover {
  constructor(
    private readonly setup: Pick<PgBackRestSetup, 'cli' | 'source' | 'runDir' | 'osUser' | 'host' | 'primaryRepo' | 'timings'>,
    private readonly sessions: ClusterSessions,
    private readonly clusters: RestoredClusters,
    private readonly backups: Backups,
  ) {}

  /**
   * Fences the source: default_transaction_read_only on (ALTER SYSTEM, reloaded), then every
   * client session but pgBackRest's ended, so what reconnects is read-only. A client that
   * explicitly opens a read-write transaction could still write; stopping the source is the
   * stricter fence, left to the operator because it also stops reads. The setting it replaced is
   * kept in a marker file first, so a retried fence still knows what to put back.
   */
  async fenceSource(owner: { workflowId: string; runId: string }): Promise<SourceFence> {
    const s = this.setup.source;
    return this.fenceCluster({ instanceId: s.instanceId, host: s.host, port: s.port, dataDir: s.dataDir, markerFile: path.join(this.setup.runDir, 'source-fence.json') }, owner, 'the source');
  }

  /**
   * The same fence on a restored instance that serves traffic (a failed-over primary before its
   * failback), so that its last WAL is final. Refuses the source and anything lifeboat did not restore.
   */
  async fenceInstance(instanceId: string, owner: { workflowId: string; runId: string }): Promise<SourceFence> {
    const { record } = this.cutoverRecord(instanceId);
    if (!postmasterAlive(record.dataDir)) {
      throw new LifeboatError(`Restored instance ${instanceId} is not running, so lifeboat cannot prove its last WAL is archived; start it (or restore from its repositories by hand), then retry.`, 'FENCE_FAILED', true);
    }
    return this.fenceCluster({ instanceId, host: this.setup.host, port: record.port, dataDir: record.dataDir, markerFile: this.instanceFenceMarker(record) }, owner, `instance ${instanceId}`);
  }

  async unfenceInstance(fence: SourceFence): Promise<string> {
    if (fence.method !== 'read-only') return `nothing to undo on ${fence.instanceId}: ${fence.detail}`;
    const { record } = this.cutoverRecord(fence.instanceId);
    return this.unfenceCluster({ instanceId: fence.instanceId, host: this.setup.host, port: record.port, markerFile: this.instanceFenceMarker(record) }, fence);
  }

  private instanceFenceMarker(record: RestoreRecord): string {
    return path.join(this.setup.runDir, `instance-fence-${record.name}.json`);
  }

  private async fenceCluster(
    cluster: { instanceId: string; host: string; port: number; dataDir: string; markerFile: string },
    owner: { workflowId: string; runId: string },
    what: string,
  ): Promise<SourceFence> {
    const s = this.setup.source;
    const markerFile = cluster.markerFile;
    const at = new Date().toISOString();
    try {
      return await this.sessions.withCluster(cluster.port, cluster.host, async (c) => {
        const before = (await c.query<{ setting: string; source: string }>("SELECT setting, source FROM pg_settings WHERE name = 'default_transaction_read_only'")).rows[0];
        const marker = readJsonFile<{ owner: { workflowId: string; runId: string }; previous: Record<string, string> }>(markerFile);
        const retried = marker?.owner.workflowId === owner.workflowId && marker.owner.runId === owner.runId;
        const previous = retried ? marker.previous : { default_transaction_read_only: before.setting, source: before.source };
        fs.mkdirSync(this.setup.runDir, { recursive: true });
        writeJson(markerFile, { owner, previous, at });
        await c.query('ALTER SYSTEM SET default_transaction_read_only = on');
        await c.query('SELECT pg_reload_conf()');
        await this.sessions.waitForSetting(cluster.port, cluster.host, 'default_transaction_read_only', 'on');
        const ended = (
          await c.query<{ n: string }>(
            `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND coalesce(application_name, '') NOT LIKE 'pgBackRest%'`,
          )
        ).rows[0].n;
        return {
          instanceId: cluster.instanceId,
          method: 'read-only' as const,
          at,
          detail: `${cluster.instanceId} at ${cluster.host}:${cluster.port} is read-only (default_transaction_read_only = on) and ${ended} client session(s) were ended`,
          previous,
          sessionsEnded: Number(ended),
          undoCommand: `psql -h ${shq(cluster.host)} -p ${cluster.port} -U ${shq(s.user)} -d ${shq(s.database)} -c 'ALTER SYSTEM RESET default_transaction_read_only' -c 'SELECT pg_reload_conf()'`,
        };
      });
    } catch (err) {
      if (!postmasterAlive(cluster.dataDir)) {
        return { instanceId: cluster.instanceId, method: 'none', at, detail: `${cluster.instanceId} is not running, so no client can write to it; nothing was changed` };
      }
      throw new LifeboatError(
        `lifeboat could not make ${what} ${cluster.instanceId} read-only (${describeError(err)}), so traffic was not moved: check that it answers as ${s.user} on ${cluster.host}:${cluster.port}, or stop it by hand, then retry.`,
        'FENCE_FAILED',
        false,
      );
    }
  }

  async unfenceSource(fence: SourceFence): Promise<string> {
    const s = this.setup.source;
    if (fence.method !== 'read-only') return `nothing to undo on ${fence.instanceId}: ${fence.detail}`;
    return this.unfenceCluster({ instanceId: s.instanceId, host: s.host, port: s.port, markerFile: path.join(this.setup.runDir, 'source-fence.json') }, fence);
  }

  private async unfenceCluster(cluster: { instanceId: string; host: string; port: number; markerFile: string }, fence: SourceFence): Promise<string> {
    if (fence.previous?.default_transaction_read_only === 'on') {
      fs.rmSync(cluster.markerFile, { force: true });
      return `${cluster.instanceId} stays read-only, as it was before the fence`;
    }
    await this.sessions.withCluster(cluster.port, cluster.host, async (c) => {
      await c.query('ALTER SYSTEM RESET default_transaction_read_only');
      await c.query('SELECT pg_reload_conf()');
    });
    await this.sessions.waitForSetting(cluster.port, cluster.host, 'default_transaction_read_only', 'off');
    if (readJsonFile<{ at: string }>(cluster.markerFile)?.at === fence.at) fs.rmSync(cluster.markerFile, { force: true });
    return `${cluster.instanceId} at ${cluster.host}:${cluster.port} accepts writes again (default_transaction_read_only reset)`;
  }

  /**
   * Restarts the restored instance with archive_mode on and an empty archive_command: PostgreSQL
   * then keeps every WAL segment until a command is set, and pushes nothing. Traffic has not
   * moved yet, so the restart costs nobody a connection, and a rollback leaves the repositories
   * untouched.
   */
  async prepareToServe(instanceId: string): Promise<string> {
    const { files, record } = this.cutoverRecord(instanceId);
    if (record.archiving && postmasterAlive(record.dataDir) && (await this.sessions.setting(record.port, this.setup.host, 'archive_mode')) === 'on') {
      return `${instanceId} already keeps its WAL for archiving (archive_mode on since ${record.archiving.since})`;
    }
    if (!postmasterAlive(record.dataDir)) await this.clusters.start(record);
    await this.clusters.waitUntilServing(record);
    await this.sessions.withCluster(record.port, this.setup.host, (c) => c.query("ALTER SYSTEM SET archive_command = ''"));
    record.archiving = { state: 'held', since: new Date().toISOString() };
    writeJson(files.record, record);
    await this.clusters.stop(record.dataDir);
    await this.clusters.start(record);
    await this.clusters.waitUntilServing(record);
    const mode = await this.sessions.setting(record.port, this.setup.host, 'archive_mode');
    if (mode !== 'on') {
      throw new LifeboatError(`Restored instance ${instanceId} restarted with archive_mode ${mode}, not on, so its WAL would not be kept for the target's repositories; see ${record.logFile}.`, 'ARCHIVING_NOT_READY', false);
    }
    return `${instanceId} restarted with archive_mode on; its WAL is kept, nothing is pushed until it takes traffic`;
  }

  /**
   * The cut-over instance becomes the target's primary: its WAL goes to the stanza's repositories
   * on its own timeline (the timeline's history file first, then a switched segment proves the
   * archive command works), and a full backup of it starts into the primary repository.
   */
  async protectAsNewPrimary(instanceId: string, owner: { workflowId: string; runId: string }): Promise<NewPrimaryProtection> {
    const archived = await this.startArchiving(instanceId, owner);
    const backup = await this.backups.backupInto(this.setup.primaryRepo, `new-primary-${localName(owner.workflowId)}`, 'full', archived.pgOptions);
    return { ...archived.protection, measures: [...archived.protection.measures, `full backup ${backup.backupId} started into repo${this.setup.primaryRepo}`], backup };
  }

  /**
   * The instance's WAL goes to the stanza's repositories on its own timeline: the timeline's
   * history file first, then a switched segment proves the archive command works. Idempotent.
   * Returns the pgBackRest options that point a backup at this cluster.
   */
  async startArchiving(instanceId: string, owner: { workflowId: string; runId: string }): Promise<{ protection: Omit<NewPrimaryProtection, 'backup'>; pgOptions: string[] }> {
    let { files, record } = this.cutoverRecord(instanceId);
    if (!record.archiving || !postmasterAlive(record.dataDir)) {
      await this.prepareToServe(instanceId);
      ({ files, record } = this.cutoverRecord(instanceId));
    }
    const { cli, host, osUser, timings } = this.setup;
    const { stanza } = cli.options;
    const pgOptions = this.pgOptionsOf(record);
    const [binary, pushArgs] = cli.argv('archive-push', [`--pg1-path=${record.dataDir}`]);
    const archiveCommand = `${shellCommand([binary, ...pushArgs])} "%p"`;
    const walFile = await this.sessions.withCluster(record.port, host, async (c) => {
      await c.query(`ALTER SYSTEM SET archive_command = ${c.escapeLiteral(archiveCommand)}`);
      await c.query('SELECT pg_reload_conf()');
      return (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0].f;
    });
    await this.sessions.waitForSetting(record.port, host, 'archive_command', archiveCommand);
    const timeline = parseInt(walFile.slice(0, 8), 16);
    const measures = [`WAL archived by pgBackRest (stanza ${stanza}) into every repository on timeline ${timeline}`];
    // Promoted while archiving was off, the timeline's history file was never queued; restores
    // that follow this timeline need it, so it goes first.
    const history = `${walFile.slice(0, 8)}.history`;
    if (timeline > 1 && fs.existsSync(path.join(record.dataDir, 'pg_wal', history))) {
      try {
        await run(...cli.argv('archive-push', [`--pg1-path=${record.dataDir}`, '--log-level-console=warn'], [path.join(record.dataDir, 'pg_wal', history)]), {
          asUser: osUser,
          timeoutMs: timings.commandTimeoutMs,
        });
      } catch (err) {
        throw classifyPgBackRestError(err, `archiving the history file ${history} of ${instanceId}`);
      }
      measures.push(`timeline history ${history} archived`);
    }
    const switched = await this.switchWal(record);
    await this.waitUntilArchived(record, switched.segment);
    measures.push(`segment ${switched.segment} archived`);
    record.archiving = { state: 'on', since: record.archiving?.since ?? new Date().toISOString(), owner };
    writeJson(files.record, record);
    return { protection: { instanceId, endpoint: { host, port: record.port }, dataDir: record.dataDir, timeline, measures }, pgOptions };
  }

  /**
   * After a fence: the position after the last commit, then a WAL switch, waited until the
   * switched segment is archived (archive-push succeeds only once every repository has it).
   */
  async shipFinalWal(instanceId: string): Promise<FinalWal> {
    const { record } = this.cutoverRecord(instanceId);
    if (record.archiving?.state !== 'on') {
      throw new LifeboatError(`Restored instance ${instanceId} does not archive its WAL yet, so its last WAL cannot be shipped; re-protect it first.`, 'NOT_REPROTECTED', true);
    }
    const switched = await this.switchWal(record);
    await this.waitUntilArchived(record, switched.segment);
    return {
      instanceId,
      lsn: switched.lsn,
      segment: switched.segment,
      timeline: parseInt(switched.segment.slice(0, 8), 16),
      shippedAt: new Date().toISOString(),
      detail: `the last WAL of ${instanceId} up to ${switched.lsn} (segment ${switched.segment}) is in every repository of stanza ${this.setup.cli.options.stanza}`,
    };
  }

  pgOptionsOf(record: RestoreRecord): string[] {
    return [`--pg1-path=${record.dataDir}`, `--pg1-port=${record.port}`, `--pg1-socket-path=${record.socketDir}`];
  }

  /** The insert position now (after every commit so far) and the segment a WAL switch just closed. */
  private async switchWal(record: RestoreRecord): Promise<{ lsn: string; segment: string }> {
    return this.sessions.withCluster(record.port, this.setup.host, async (c) => {
      const lsn = (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
      const segment = (await c.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')).rows[0].f;
      return { lsn, segment };
    });
  }

  cutoverRecord(instanceId: string): { files: InstanceFiles; record: RestoreRecord } {
    this.clusters.refuseSource(instanceId, 'cut over to');
    const files = this.clusters.files(instanceId);
    const record = readRecord(files.record);
    if (!record) throw new LifeboatError(`There is no restored instance ${instanceId} (no ${files.record}), so traffic cannot move to it; check the instance name.`, 'INSTANCE_NOT_FOUND');
    return { files, record };
  }

  private async waitUntilArchived(record: RestoreRecord, segment: string): Promise<void> {
    const deadline = Date.now() + this.setup.timings.settleTimeoutMs;
    for (;;) {
      const s = await this.sessions.withCluster(record.port, this.setup.host, async (c) => (await c.query<{ last: string | null; failed: string | null }>('SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver')).rows[0]);
      if (s.last && s.last >= segment && !s.last.endsWith('.history')) return;
      if (Date.now() > deadline) {
        const why = s.failed ? `the archive command failed on ${s.failed}: ${lastErrorLine(readTail(record.logFile)) ?? 'see the log'}` : 'nothing was archived yet';
        throw new LifeboatError(`Restored instance ${record.instanceId} did not archive ${segment} within ${Math.round(this.setup.timings.settleTimeoutMs / 1000)} s (${why}); see ${record.logFile}.`, 'ARCHIVING_FAILED', false);
      }
      await delay(this.setup.timings.pollMs);
    }
  }
}
