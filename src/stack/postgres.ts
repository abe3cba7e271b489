/**
 * A PostgreSQL cluster of the embedded stack: `primary` (the sample application, WAL archived
 * by pgBackRest into both regions) or `catalog` (lifeboat's own records, separate so it
 * survives the loss of the primary). Runs as an unprivileged OS user: Postgres refuses root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { ComponentHealth, StackComponent, StackContext } from './component';
import { ENV } from './settings';
import { ensureDir, livePid, run, tailFile } from '../platform/processes';
import { newPgClient } from '../engines/pg-client';

export type ClusterName = 'primary' | 'catalog';

export class PostgresCluster implements StackComponent {
  readonly name: string;
  constructor(
    private readonly ctx: StackContext,
    readonly cluster: ClusterName,
  ) {
    this.name = `postgres-${cluster}`;
  }

  get port(): number {
    const pg = this.ctx.settings.postgres;
    return this.cluster === 'primary' ? pg.primaryPort : pg.catalogPort;
  }

  get endpoint(): string {
    return `postgresql://${this.ctx.settings.postgres.superuser}@${this.ctx.settings.host}:${this.port}`;
  }

  get dataDir(): string {
    return this.ctx.paths.pgData(this.cluster);
  }

  private get logPath(): string {
    return path.join(path.dirname(this.dataDir), `${this.cluster}.log`);
  }

  ports() {
    return [{ port: this.port, env: this.cluster === 'primary' ? ENV.pgPrimaryPort : ENV.pgCatalogPort, what: `PostgreSQL ${this.cluster}` }];
  }

  isRunning(): boolean {
    return livePid(path.join(this.dataDir, 'postmaster.pid'), this.dataDir) !== undefined;
  }

  /** Settings rewritten at every start, so a changed port or path applies on the next `up`. */
  private serverSettings(): string {
    const { settings, paths } = this.ctx;
    const lines = [
      `listen_addresses = '${settings.host}'`,
      `port = ${this.port}`,
      `unix_socket_directories = '${paths.pgSocketDir}'`,
      `max_connections = 100`,
      `shared_buffers = '128MB'`,
      `log_line_prefix = '%m [%p] %q%u@%d '`,
      // TLS with the stack's local CA. The files sit in the data directory (relative paths are
      // read from there), so every backup carries them and an instance restored from it serves
      // the same certificate: verify-full works for restored instances on this host too.
      `ssl = on`,
      `ssl_cert_file = 'server.crt'`,
      `ssl_key_file = 'server.key'`,
    ];
    if (this.cluster === 'primary') {
      lines.push(
        `wal_level = replica`,
        `archive_mode = on`,
        // Every WAL segment goes to both regions' repositories; PITR depends on it.
        `archive_command = '${this.ctx.tools.pgbackrest} --config=${paths.pgbackrestConf} --stanza=${settings.pgbackrest.stanza} archive-push %p'`,
        // A quiet database still ships WAL at least this often: PITR is good to within a minute.
        `archive_timeout = 30`,
        `max_wal_senders = 4`,
      );
    }
    return lines.join('\n') + '\n';
  }

  async start(): Promise<void> {
    const { settings, paths, tools } = this.ctx;
    const osUser = settings.postgres.osUser;
    await ensureDir(path.dirname(this.dataDir), { owner: osUser, mode: 0o755 });
    await ensureDir(paths.pgSocketDir, { owner: osUser, mode: 0o755 });
    if (!fs.existsSync(path.join(this.dataDir, 'PG_VERSION'))) {
      this.ctx.log(`initializing PostgreSQL cluster ${this.cluster}`);
      await run(tools.pgBin('initdb'), ['-D', this.dataDir, '-U', settings.postgres.superuser, '--auth=trust', '--data-checksums', '--encoding=UTF8', '--locale=C.UTF-8'], { asUser: osUser });
    }
    const confFile = path.join(this.dataDir, 'postgresql.conf');
    const conf = fs.readFileSync(confFile, 'utf8');
    if (!conf.includes("include_if_exists = 'lifeboat.conf'")) fs.appendFileSync(confFile, "\ninclude_if_exists = 'lifeboat.conf'\n");
    const lifeboatConf = path.join(this.dataDir, 'lifeboat.conf');
    fs.writeFileSync(lifeboatConf, this.serverSettings());
    const [cert, key] = [path.join(this.dataDir, 'server.crt'), path.join(this.dataDir, 'server.key')];
    fs.copyFileSync(path.join(paths.tls, 'server.crt'), cert);
    fs.copyFileSync(path.join(paths.tls, 'server.key'), key);
    // Postgres refuses a key file that others can read, or that it does not own.
    fs.chmodSync(key, 0o600);
    await run('chown', [`${osUser}:`, lifeboatConf, confFile, cert, key]).catch(() => undefined);
    const started = await run(tools.pgBin('pg_ctl'), ['-D', this.dataDir, '-l', this.logPath, '-w', '-t', '60', 'start'], { asUser: osUser, check: false });
    if (started.code !== 0) {
      throw new Error(`PostgreSQL ${this.cluster} did not start on port ${this.port}: ${tailFile(this.logPath, 3) || started.stderr.trim()} (log: ${this.logPath}).`);
    }
    await this.ensureDatabase(this.cluster === 'primary' ? settings.postgres.appDatabase : settings.postgres.catalogDatabase);
  }

  async stop(): Promise<void> {
    if (!this.isRunning()) return;
    const pgCtl = this.ctx.tools.pgBin('pg_ctl');
    const asUser = this.ctx.settings.postgres.osUser;
    const fast = await run(pgCtl, ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], { asUser, check: false });
    // A failing archive_command can hold a fast shutdown for minutes; immediate is crash-safe
    // (WAL replays at the next start) and the segments stay in pg_wal until they are archived.
    if (fast.code !== 0 && this.isRunning()) {
      await run(pgCtl, ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], { asUser, check: false });
    }
  }

  /** Accepts connections, whatever the state of archiving. */
  async accepting(): Promise<boolean> {
    return this.withClient('postgres', async (c) => (await c.query('SELECT 1')).rowCount === 1).catch(() => false);
  }

  connect(database: string): Client {
    return newPgClient({ host: this.ctx.settings.host, port: this.port, user: this.ctx.settings.postgres.superuser, database, connectionTimeoutMillis: 5000 });
  }

  async withClient<T>(database: string, fn: (client: Client) => Promise<T>): Promise<T> {
    const client = this.connect(database);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  private async ensureDatabase(database: string): Promise<void> {
    await this.withClient('postgres', async (c) => {
      const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (found.rowCount === 0) await c.query(`CREATE DATABASE "${database}"`);
    });
  }

  async health(): Promise<ComponentHealth> {
    try {
      return await this.withClient('postgres', async (c) => {
        const version = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
        if (this.cluster !== 'primary') return { healthy: true, detail: `PostgreSQL ${version.rows[0].v} on port ${this.port}` };
        const archiver = await c.query<{ archived_count: string; failed_count: string; last_failed_wal: string | null; last_archived_time: Date | null; last_failed_time: Date | null }>(
          'SELECT archived_count, failed_count, last_failed_wal, last_archived_time, last_failed_time FROM pg_stat_archiver',
        );
        const a = archiver.rows[0];
        const failingNow = a.last_failed_time && (!a.last_archived_time || a.last_failed_time > a.last_archived_time);
        if (failingNow) return { healthy: false, detail: `WAL archiving is failing (last failed segment ${a.last_failed_wal}): see ${this.logPath}` };
        return { healthy: true, detail: `PostgreSQL ${version.rows[0].v} on port ${this.port}, ${a.archived_count} WAL segments archived` };
      });
    } catch (err) {
      return { healthy: false, detail: `cannot connect on port ${this.port}: ${(err as Error).message}` };
    }
  }
}
