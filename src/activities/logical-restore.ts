/**
 * Activities of the logicalRestore workflow over the LogicalDumpEngine: choose and check the
 * dump and the destination (no side effects), restore it streamed into a NEW database (or a
 * scratch database whose tables then move into a NEW schema of the target's database), verify
 * the row counts against the archive's own, and remove what this run made, by its marker only.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { Context } from '@temporalio/activity';
import type { Client } from 'pg';
import { DatabaseTarget, findDatabaseTarget, resolveSecret } from '../config';
import { MAX_INCIDENT_ID_CHARS, MAX_REASON_CHARS } from '../domain/approval';
import { LifeboatError } from '../domain/errors';
import { ChosenDump, logicalRestoreMarker, rowCountBasis, LogicalRestoreDone, LogicalRestoreInput, LogicalRestoreReport, ValidatedLogicalRestore } from '../domain/logical-restore';
import { DumpProgress, LogicalDumpEngine, PgConnection } from '../engines/logical-dump';
import { newPgClient } from '../engines/pg-client';
import { recordRestoredThing } from './restored-instances';
import { restoredThingId } from '../domain/restored-instances';
import { withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

/** Names lifeboat makes and accepts for new databases and schemas: no quoting surprises. */
const PG_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const qualify = (table: string) => (table.includes('.') ? table : `public.${table}`);
const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);

function refuse(sentence: string, code: Uppercase<string> = 'BAD_INPUT'): never {
  throw new LifeboatError(sentence, code);
}

/** The default new database: the target's name and the run's, so a retry finds its own. */
export function defaultRestoreDatabase(target: string, workflowId: string): string {
  return `restored_${target.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 40)}_${shortHash(workflowId)}`;
}

export function logicalRestoreActivities(ports: Ports) {
  const { config } = ports;

  const settingsOf = (targetName: string) => {
    const target = findDatabaseTarget(config, targetName);
    if (!target.logicalBackup) {
      refuse(`The database target ${target.name} has no logicalBackup section in the config, so it has no logical dumps to restore: restore it with --to <time> instead.`, 'NO_LOGICAL_BACKUP_CONFIG');
    }
    return { target, lb: target.logicalBackup };
  };

  const engineFor = (targetName: string, store: string, bucket: string) => {
    const { lb } = settingsOf(targetName);
    return new LogicalDumpEngine({ store: { s3: ports.objectStore(store), bucket, prefix: lb.prefix, name: store }, encryptionKey: lb.encryptionKey, previousEncryptionKeys: lb.previousEncryptionKeys });
  };

  /** The target's server, reached as the target's user; `database` picks the database. */
  const serverOf = async (target: DatabaseTarget, database: string): Promise<PgConnection> => {
    if (target.engine === 'pgbackrest') return { host: target.host, port: target.port, database, user: target.user, password: target.password, tls: pgTlsOf(target) };
    const source = await ports.database(target.name).describeSource();
    if (!source.endpoint) throw new LifeboatError(`The RDS instance ${target.instanceId} has no endpoint (status ${source.status}) now; lifeboat will retry.`, 'NO_ENDPOINT', false);
    return { host: source.endpoint.host, port: source.endpoint.port, database, user: target.user, password: target.password, tls: pgTlsOf(target) };
  };

  const withClient = async <T>(conn: PgConnection, fn: (c: Client) => Promise<T>): Promise<T> => {
    const client = newPgClient({
      host: conn.host,
      port: conn.port,
      database: conn.database,
      user: conn.user,
      password: conn.password ? resolveSecret(conn.password) : undefined,
      tls: conn.tls,
    });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  /** The comment on a database, or null when it has none; undefined when it does not exist. */
  const databaseComment = async (c: Client, name: string): Promise<string | null | undefined> => {
    const r = await c.query<{ comment: string | null }>("SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1", [name]);
    return r.rows.length ? r.rows[0].comment : undefined;
  };
  /**
   * Every attempt restores into a working database of its own, named from the run's marker and the
   * attempt, and renames it into place only once pg_restore has finished. A worker killed mid-
   * restore leaves its pg_restore running (a parallel one reads a local file, not the worker), but
   * that orphan can only ever reach its own attempt's working database, which the next attempt
   * drops, sessions and all: it can never write into the retry's database.
   */
  const workingPrefix = (marker: string): string => `lifeboat_making_${createHash('sha256').update(marker).digest('hex').slice(0, 24)}`;
  const workingName = (marker: string, attempt: number): string => `${workingPrefix(marker)}_${attempt}`;
  /** Drops every working database this run's attempts left (unmarked, or marked by this run); returns their names. */
  const dropOwnWorkingDatabases = async (c: Client, marker: string): Promise<string[]> => {
    const prefix = workingPrefix(marker);
    const found = await c.query<{ name: string; comment: string | null }>(
      "SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_') ORDER BY datname",
      [prefix],
    );
    for (const { name, comment } of found.rows) {
      if (comment !== null && comment !== marker) refuse(`The database ${name} carries another marker than this restore's (${comment}); lifeboat leaves it alone: check it and drop it by hand, then start the restore again.`, 'DESTINATION_EXISTS');
    }
    // FORCE ends the sessions of a killed attempt's pg_restore; it cannot reconnect to a database that is gone.
    for (const { name } of found.rows) await c.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
    return found.rows.map((r) => r.name);
  };
  const schemaComment = async (c: Client, name: string): Promise<string | null | undefined> => {
    const r = await c.query<{ comment: string | null }>("SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = $1", [name]);
    return r.rows.length ? r.rows[0].comment : undefined;
  };

  /**
   * This attempt's working database, made new and carrying the run's marker. What an earlier
   * attempt of this run left (a working database, or the finished database itself when the worker
   * died after the rename) is dropped first: the restore starts over from clean.
   */
  const makeWorkingDatabase = async (admin: Client, name: string, marker: string, attempt: number): Promise<string> => {
    const comment = await databaseComment(admin, name);
    if (comment === null) {
      refuse(`The database ${name} exists without any restore's marker: lifeboat does not restore over an unmarked database; check that it holds nothing you need, drop it by hand, then start the restore again.`, 'DESTINATION_EXISTS');
    }
    if (comment !== undefined && comment !== marker) {
      refuse(`The database ${name} appeared after the restore was approved and is not this restore's: lifeboat does not restore over it; start the restore again with another name.`, 'DESTINATION_EXISTS');
    }
    if (comment === marker) await admin.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
    await dropOwnWorkingDatabases(admin, marker);
    // CREATE DATABASE and its COMMENT cannot share a transaction: a worker killed in between leaves
    // an unmarked database under this run's working name, which the next attempt recognises and drops.
    const working = workingName(marker, attempt);
    await admin.query(`CREATE DATABASE ${quoteIdent(working)} TEMPLATE template0`);
    await admin.query(`COMMENT ON DATABASE ${quoteIdent(working)} IS ${literal(marker)}`);
    return working;
  };

  /** The restored working database renamed into place (atomic; the marker goes with it), once nothing else has taken the name. */
  const publishWorkingDatabase = async (admin: Client, working: string, name: string, marker: string): Promise<void> => {
    const comment = await databaseComment(admin, name);
    if (comment === marker) {
      // Only an earlier attempt still running (its worker had lost touch with Temporal) can do this.
      refuse(`The database ${name} was put in place by an earlier attempt of this same restore that was still running; this attempt stops rather than replace it, and the restore's clean-up removes what this run made: start the restore again.`, 'DESTINATION_EXISTS');
    }
    if (comment !== undefined) {
      refuse(`The database ${name} appeared while the restore ran and is not this restore's (its comment: ${comment ?? 'none'}): lifeboat does not restore over it; start the restore again with another name.`, 'DESTINATION_EXISTS');
    }
    // pg_restore's sessions may take a moment to leave; RENAME waits a few seconds for them itself.
    await admin.query(`ALTER DATABASE ${quoteIdent(working)} RENAME TO ${quoteIdent(name)}`);
  };

  /** Drops a database only when it carries `marker` (and this run's working database, if a killed attempt left it); says what it did. */
  const dropOwnDatabase = async (admin: Client, name: string, marker: string, server: string): Promise<string> => {
    const leftovers = await dropOwnWorkingDatabases(admin, marker);
    const comment = await databaseComment(admin, name);
    if (comment === undefined) return `database ${name} on ${server} was never made: nothing to remove${leftovers.length ? `; removed ${leftovers.join(', ')}, this run's half-made working database${leftovers.length > 1 ? 's' : ''}` : ''}`;
    if (comment !== marker) return `left database ${name} on ${server} alone: it is not this restore's (its comment is not ${marker})`;
    await admin.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
    return `removed database ${name} on ${server}, made by this restore`;
  };

  /** The row counts the catalog recorded when the logical backup was taken, when it has them. */
  const recordedRowCounts = async (catalogId: string): Promise<Record<string, number> | undefined> => {
    const rows = await ports.catalog.query<{ counts: Record<string, number> | null }>("SELECT details->'rowCounts' AS counts FROM backups WHERE id::text = $1", [catalogId]);
    const counts = rows[0]?.counts;
    return counts && typeof counts === 'object' ? counts : undefined;
  };

  const progressBeat = <T>(phase: string, everyMs: number, work: (onProgress: (p: DumpProgress) => void) => Promise<T>) => {
    let progress: DumpProgress = { dumpBytes: 0, storedBytes: 0 };
    const started = Date.now();
    return withHeartbeats(
      () => ({ phase, ...progress, seconds: Math.round((Date.now() - started) / 1000) }),
      () => work((p) => (progress = p)),
      everyMs,
    );
  };

  return {
    /**
     * Every check that can be made before anything exists: the target, the backup in the catalog
     * and its object (header: key in the keyring, bound to this target and backup), the tables
     * (in the archive's table of contents), and the destination (new: it must not exist).
     */
    async validateLogicalRestore(input: LogicalRestoreInput, workflowId: string): Promise<ValidatedLogicalRestore> {
      const { target } = settingsOf(input.target);
      if (!input.reason?.trim()) refuse('A restore needs a reason, for the record: pass --reason.');
      if (input.reason.length > MAX_REASON_CHARS) refuse(`The reason is ${input.reason.length} characters long, over the ${MAX_REASON_CHARS} lifeboat keeps on record: say it in a paragraph and link the details.`);
      if (input.incidentId && input.incidentId.length > MAX_INCIDENT_ID_CHARS) refuse(`The incident id is over ${MAX_INCIDENT_ID_CHARS} characters: give the ticket id, not its text.`);
      if (input.intoDatabase !== undefined && input.intoSchema !== undefined) refuse('Give --into-database or --into-schema, not both: a restore goes into one new place.');
      const tables = input.tables?.length ? [...new Set(input.tables.map((t) => t.trim()))] : undefined;
      for (const t of tables ?? []) if (!TABLE_NAME.test(t)) refuse(`"${t}" is not a table name: give names like orders or public.orders, separated by commas.`);

      // The backup: a verified logical backup of this target, by catalog id, backup name or latest.
      const rows = await ports.catalog.query<{ id: string; engine_backup_id: string; locations: Record<string, { store: string; bucket: string; key: string; versionId?: string; failed?: boolean }>; completed_at: Date | null; size_bytes: string | null }>(
        `SELECT id::text AS id, engine_backup_id, locations, completed_at, size_bytes::text AS size_bytes FROM backups
          WHERE target = $1 AND backup_type = 'logical' AND status = 'verified' AND ($2 = 'latest' OR id::text = $2 OR engine_backup_id = $2)
          ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT 1`,
        [target.name, input.backup],
      );
      if (!rows.length) {
        refuse(
          input.backup === 'latest'
            ? `Target ${target.name} has no verified logical backup in the catalog: take one with \`lifeboat backup ${target.name} --logical\`.`
            : `There is no verified logical backup "${input.backup}" of target ${target.name} in the catalog: give an id or backup name from \`lifeboat backups list ${target.name}\`, or latest.`,
          'BACKUP_NOT_FOUND',
        );
      }
      const row = rows[0];
      const region = input.fromRegion ?? 'primary';
      const location = row.locations[region];
      if (!location || location.failed) refuse(`Logical backup ${row.id} of ${target.name} has no verified copy in the ${region} region: restore from the other region with --from-region.`, 'BACKUP_NOT_FOUND');
      const engine = engineFor(target.name, location.store, location.bucket);
      const ref = { bucket: location.bucket, key: location.key, ...(location.versionId ? { versionId: location.versionId } : {}) };
      const record = await engine.describe(ref);
      if (!record) refuse(`The object of logical backup ${row.id} (${location.bucket}/${location.key}) is missing or incomplete: restore from the other region with --from-region, or another backup.`, 'BACKUP_NOT_FOUND');
      // The catalog says what the dump must be; the header must agree (a swapped object is refused here).
      const header = await engine.checkHeader(ref, { target: target.name, backupName: row.engine_backup_id });
      const toc = await engine.listArchive(ref);

      let chosen: string[] | 'all' = 'all';
      if (tables) {
        const known = new Set(toc.tables);
        chosen = tables.map(qualify);
        const unknown = chosen.filter((t) => !known.has(t));
        if (unknown.length) {
          const some = toc.tables.slice(0, 20).join(', ');
          refuse(`The dump ${row.engine_backup_id} has no table ${unknown.join(', ')}: it holds ${some}${toc.tables.length > 20 ? ', …' : ''}; check the names (schema.table).`, 'UNKNOWN_TABLE');
        }
      }

      const marker = logicalRestoreMarker(workflowId);
      const server = await serverOf(target, target.database);
      const serverName = `${server.host}:${server.port}`;
      let destination: ValidatedLogicalRestore['destination'];
      await withClient(server, async (c) => {
        if (input.intoSchema !== undefined) {
          const schema = input.intoSchema;
          if (!PG_NAME.test(schema)) refuse(`"${schema}" cannot name the new schema: use 1 to 63 lowercase letters, digits and underscores, starting with a letter or underscore.`);
          if (chosen === 'all') refuse('--into-schema restores chosen tables next to live ones: name them with --tables (all from one schema).');
          const schemas = [...new Set(chosen.map((t) => t.split('.')[0]))];
          if (schemas.length > 1) refuse(`--into-schema takes tables from one schema, and these come from ${schemas.join(', ')}: restore each schema's tables separately.`);
          if ((await schemaComment(c, schema)) !== undefined) {
            refuse(`The schema ${schema} already exists in database ${target.database} on ${serverName}: lifeboat never restores over existing tables; choose a new schema name.`, 'DESTINATION_EXISTS');
          }
          const scratchDatabase = `lifeboat_scratch_${shortHash(workflowId)}`;
          if ((await databaseComment(c, scratchDatabase)) !== undefined) refuse(`The working database ${scratchDatabase} already exists on ${serverName}: start the restore with another --id.`, 'DESTINATION_EXISTS');
          destination = { kind: 'schema', server: serverName, database: target.database, schema, sourceSchema: schemas[0], scratchDatabase };
        } else {
          const database = input.intoDatabase ?? defaultRestoreDatabase(target.name, workflowId);
          if (!PG_NAME.test(database)) refuse(`"${database}" cannot name the new database: use 1 to 63 lowercase letters, digits and underscores, starting with a letter or underscore.`);
          if ((await databaseComment(c, database)) !== undefined) {
            refuse(`The database ${database} already exists on ${serverName}: lifeboat restores only into a new database, so choose another --into-database name.`, 'DESTINATION_EXISTS');
          }
          destination = { kind: 'database', server: serverName, database };
        }
      });

      const backup: ChosenDump = {
        catalogId: row.id,
        backupName: row.engine_backup_id,
        store: location.store,
        bucket: location.bucket,
        key: location.key,
        ...(location.versionId ? { versionId: location.versionId } : {}),
        createdAt: record.createdAt,
        sizeBytes: record.sizeBytes,
        encryption: { version: header.version, keyId: header.keyId },
      };
      const t = input.timings ?? {};
      return {
        target: target.name,
        environment: target.environment,
        workflowId,
        backup,
        tables: chosen,
        archiveTables: toc.tablesWithData,
        destination: destination!,
        marker,
        timings: {
          remindAfterMs: t.remindAfterMs ?? config.approvals.remindAfter * 1000,
          abortAfterMs: t.abortAfterMs ?? config.approvals.abortAfter * 1000,
          pollIntervalMs: t.pollIntervalMs ?? 5000,
        },
      };
    },

    /**
     * Makes the new database (marked as this run's) and streams the dump into it; for a schema
     * restore, into a scratch database whose schema is renamed, copied into the target's
     * database in one transaction, and then dropped. Idempotent: a retry starts over from clean.
     */
    async restoreLogicalDump(v: ValidatedLogicalRestore): Promise<LogicalRestoreDone> {
      const { target } = settingsOf(v.target);
      const engine = engineFor(v.target, v.backup.store, v.backup.bucket);
      // The version the catalog names: what was verified, not whatever the key holds now.
      const ref = { bucket: v.backup.bucket, key: v.backup.key, ...(v.backup.versionId ? { versionId: v.backup.versionId } : {}) };
      const admin = await serverOf(target, target.database);
      const expect = { target: v.target, backupName: v.backup.backupName };
      const tables = v.tables === 'all' ? undefined : v.tables;
      const into = v.destination.kind === 'database' ? v.destination.database : v.destination.scratchDatabase;

      // Counted when the backup was taken, with the dump's own snapshot, for every table restored:
      // counting the archive again would be a second full pass over every row (a pg_restore turning
      // it into text, parsed here) competing with the restore for the same cores.
      const atBackup = await recordedRowCounts(v.backup.catalogId);
      const restoring = tables ? v.archiveTables.filter((t) => tables.includes(t)) : v.archiveTables;
      const recorded = atBackup && restoring.every((t) => Number.isSafeInteger(atBackup[t])) ? Object.fromEntries(restoring.map((t) => [t, atBackup[t]])) : undefined;
      const working = await withClient(admin, (c) => makeWorkingDatabase(c, into, v.marker, Context.current().info.attempt));
      const { lb } = settingsOf(v.target);
      // 0 (auto): pg_restore -j from a local file only with more than two cores. On two (bench:
      // logical-restore, 1 GB), -j 2 was no faster than one job, and writing the archive to disk
      // first cost ~20%: streaming into one pg_restore was the faster way there.
      const cores = os.cpus().length;
      const jobs = lb.restoreJobs === 0 ? (cores > 2 ? cores : 1) : lb.restoreJobs;
      // The local file is named from the run (a retry replaces and removes its own), never anybody else's.
      const spool = { dir: lb.restoreSpoolDir ?? os.tmpdir(), name: `${v.target.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').slice(0, 40)}-${shortHash(v.marker)}` };
      const result = await progressBeat(`restoring into ${into}`, Math.min(5000, v.timings.pollIntervalMs), (onProgress) =>
        engine.restoreTo(ref, { ...admin, database: working }, { tables, countRows: !recorded, expect, onProgress, jobs, spool }),
      );
      await withClient(admin, (c) => publishWorkingDatabase(c, working, into, v.marker));
      if (v.destination.kind === 'schema') {
        const d = v.destination;
        await withClient({ ...admin, database: d.scratchDatabase }, async (c) => {
          await c.query(`ALTER SCHEMA ${quoteIdent(d.sourceSchema)} RENAME TO ${quoteIdent(d.schema)}`);
          await c.query(`COMMENT ON SCHEMA ${quoteIdent(d.schema)} IS ${literal(v.marker)}`);
        });
        await withClient({ ...admin, database: d.database }, async (c) => {
          const comment = await schemaComment(c, d.schema);
          if (comment !== undefined && comment !== v.marker) refuse(`The schema ${d.schema} appeared in ${d.database} after the restore was approved and is not this restore's: lifeboat does not restore over it; start again with another schema name.`, 'DESTINATION_EXISTS');
          // An earlier attempt's copy (worker killed after the commit): start it over.
          if (comment === v.marker) await c.query(`DROP SCHEMA ${quoteIdent(d.schema)} CASCADE`);
        });
        await withHeartbeats(() => ({ phase: `copying into schema ${d.schema}` }), () => engine.copySchema({ ...admin, database: d.scratchDatabase }, { ...admin, database: d.database }, d.schema));
        await withClient(admin, (c) => dropOwnDatabase(c, d.scratchDatabase, v.marker, d.server));
      }
      if (recorded) return { dumpBytes: result.dumpBytes, durationMs: result.durationMs, archiveRowCounts: recorded, countedFrom: 'backup' };
      const selected = tables ? new Set(tables) : undefined;
      const counts = Object.fromEntries(Object.entries(result.archiveRowCounts ?? {}).filter(([t]) => !selected || selected.has(t)));
      return { dumpBytes: result.dumpBytes, durationMs: result.durationMs, archiveRowCounts: counts, countedFrom: 'archive' };
    },

    /** Row counts of every restored table against the archive's own, and every chosen table present. */
    async verifyLogicalRestore(v: ValidatedLogicalRestore, done: LogicalRestoreDone): Promise<{ ok: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }> {
      const { target } = settingsOf(v.target);
      const d = v.destination;
      const conn = await serverOf(target, d.database);
      const checks: Array<{ name: string; ok: boolean; detail: string }> = [];
      const placed = (table: string) => (d.kind === 'schema' && table.startsWith(`${d.sourceSchema}.`) ? `${quoteIdent(d.schema)}.${table.slice(d.sourceSchema.length + 1)}` : table);
      // The counts taken with the dump's own snapshot when it was made (catalog), else the archive's (older dumps).
      const atBackup = await recordedRowCounts(v.backup.catalogId);
      const basis = rowCountBasis(atBackup, done.archiveRowCounts);
      checks.push({ name: 'row counts compared with', ok: true, detail: basis.detail(v.backup.backupName) });
      await withClient(conn, async (c) => {
        for (const table of Object.keys(done.archiveRowCounts).sort()) {
          const where = placed(table);
          const expected = basis.expected(table);
          const r = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${where}`).then(
            (res) => Number(res.rows[0].n),
            (err: Error) => err,
          );
          checks.push(
            typeof r === 'number' && r === expected.rows
              ? { name: `rows in ${where}`, ok: true, detail: `${r}, as ${expected.source}` }
              : { name: `rows in ${where}`, ok: false, detail: typeof r === 'number' ? `${r}, but ${expected.rows} ${expected.source}` : `cannot be counted: ${r.message}` },
          );
        }
      });
      if (v.tables !== 'all') {
        const missing = v.tables.filter((t) => v.archiveTables.includes(t) && !(t in done.archiveRowCounts));
        checks.push({ name: 'chosen tables', ok: missing.length === 0, detail: missing.length ? `no data restored for ${missing.join(', ')}` : `${v.tables.join(', ')} restored` });
      }
      if (!checks.length) checks.push({ name: 'tables', ok: false, detail: 'the restore holds no table data to check' });
      return { ok: checks.every((c) => c.ok), checks };
    },

    /** Compensation: drops what carries this run's marker (database, scratch database, schema), nothing else. */
    async removeLogicalRestore(v: ValidatedLogicalRestore): Promise<string[]> {
      const { target } = settingsOf(v.target);
      const d = v.destination;
      const admin = await serverOf(target, target.database);
      const said: string[] = [];
      await withClient(admin, async (c) => {
        if (d.kind === 'database') said.push(await dropOwnDatabase(c, d.database, v.marker, d.server));
        else said.push(await dropOwnDatabase(c, d.scratchDatabase, v.marker, d.server));
      });
      if (d.kind === 'schema') {
        await withClient({ ...admin, database: d.database }, async (c) => {
          const comment = await schemaComment(c, d.schema);
          if (comment === undefined) said.push(`schema ${d.schema} in ${d.database} was never made: nothing to remove`);
          else if (comment !== v.marker) said.push(`left schema ${d.schema} in ${d.database} alone: it is not this restore's`);
          else {
            await c.query(`DROP SCHEMA ${quoteIdent(d.schema)} CASCADE`);
            said.push(`removed schema ${d.schema} from ${d.database}, made by this restore`);
          }
        });
      }
      return said;
    },

    async recordLogicalRestoreReport(report: LogicalRestoreReport): Promise<void> {
      const d = report.destination;
      const where = d ? (d.kind === 'database' ? `${d.server}/${d.database}` : `${d.server}/${d.database} schema ${d.schema}`) : null;
      await ports.catalog.query(
        `INSERT INTO restores (workflow_id, target, outcome, restore_point, destination, requested_by, report) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (workflow_id) DO UPDATE SET outcome = EXCLUDED.outcome, destination = EXCLUDED.destination, report = EXCLUDED.report`,
        [report.workflowId, report.target, report.outcome, `logical:${report.backup?.backupName ?? 'unresolved'}`, where, report.requestedBy, JSON.stringify(report)],
      );
      // What it left standing (a new database, or a new schema of the target's database) gets its life cycle.
      if (report.outcome === 'restored' && d && report.backup) {
        const { target } = settingsOf(report.target);
        const b = report.backup;
        const common = {
          target: report.target,
          engine: target.engine,
          madeBy: 'logicalRestore',
          restorePoint: b.createdAt,
          restoredFrom: `logical backup ${b.backupName} (catalog id ${b.catalogId})${Array.isArray(report.tables) ? `, tables ${report.tables.join(', ')}` : ''}`,
          endpoint: d.server,
        };
        const marker = logicalRestoreMarker(report.workflowId);
        if (d.kind === 'database') {
          await recordRestoredThing(ports, { ...common, instanceId: restoredThingId('database', { target: report.target, database: d.database }), kind: 'database', details: { database: d.database, marker } });
        } else {
          const tables = Object.keys(report.restored?.archiveRowCounts ?? {})
            .filter((t) => t.startsWith(`${d.sourceSchema}.`))
            .map((t) => t.slice(d.sourceSchema.length + 1));
          await recordRestoredThing(ports, {
            ...common,
            instanceId: restoredThingId('schema', { target: report.target, database: d.database, schema: d.schema }),
            kind: 'schema',
            details: { database: d.database, schema: d.schema, marker, tables, madeFrom: 'logical-restore' },
          });
        }
      }
    },
  };
}

/** A SQL string literal (the marker holds only a workflow id, but quote it properly anyway). */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
