/**
 * Activities of the logicalBackup workflow over the LogicalDumpEngine (src/engines/logical-dump.ts):
 * plan, dump into the primary region, verify a copy, copy to the DR region, record, all
 * idempotent per backup name (derived from the workflow id). Long steps heartbeat their byte counts.
 */
import { Context } from '@temporalio/activity';
import { DatabaseTarget, findDatabaseTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import { DumpVerification, LogicalBackupPlan, LogicalBackupReport, StoredDump } from '../domain/logical-backup';
import { loadEncryptionKey } from '../engines/crypto-stream';
import { DumpProgress, LogicalBackupResult, LogicalDumpEngine, logicalDumpKey, PgConnection } from '../engines/logical-dump';
import { recordBackupRow } from './catalog-records';
import { currentWorkflowId } from './context';
import { withHeartbeats } from './heartbeat';
import { pgTlsOf, Ports } from './ports';

type Region = 'primary' | 'dr';

/** A backup name from a workflow id: what the engine accepts in a key, at most 200 characters. */
export function logicalBackupName(workflowId: string): string {
  const cleaned = workflowId.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return (cleaned || 'backup').slice(0, 200);
}

function storedDump(r: LogicalBackupResult, store: string): StoredDump {
  return {
    store,
    bucket: r.bucket,
    key: r.key,
    ...(r.versionId ? { versionId: r.versionId } : {}),
    sizeBytes: r.sizeBytes,
    sha256: r.sha256,
    dumpBytes: r.dumpBytes,
    dumpSha256: r.dumpSha256,
    keyId: r.keyId,
    ...(r.compression ? { compression: r.compression } : {}),
    createdAt: r.createdAt,
    adopted: r.adopted,
    ...(r.rowCounts ? { rowCounts: r.rowCounts } : {}),
  };
}

export function logicalBackupActivities(ports: Ports) {
  const { config } = ports;

  const settingsOf = (targetName: string) => {
    const target = findDatabaseTarget(config, targetName);
    if (!target.logicalBackup) {
      throw new LifeboatError(
        `The database target ${target.name} has no logicalBackup section in the config, so lifeboat does not know where its dumps go or which key encrypts them: add logicalBackup (store, bucket, encryptionKey, dr).`,
        'NO_LOGICAL_BACKUP_CONFIG',
      );
    }
    return { target, lb: target.logicalBackup };
  };

  const engineFor = (targetName: string, region: Region) => {
    const { lb } = settingsOf(targetName);
    const where = region === 'primary' ? lb : lb.dr;
    return new LogicalDumpEngine({ store: { s3: ports.objectStore(where.store), bucket: where.bucket, prefix: lb.prefix, name: where.store }, encryptionKey: lb.encryptionKey, previousEncryptionKeys: lb.previousEncryptionKeys });
  };

  /** Where pg_dump connects: the configured host for pgBackRest targets, the instance's endpoint on RDS. */
  const sourceOf = async (target: DatabaseTarget): Promise<PgConnection> => {
    if (target.engine === 'pgbackrest') return { host: target.host, port: target.port, database: target.database, user: target.user, password: target.password, tls: pgTlsOf(target) };
    const source = await ports.database(target.name).describeSource();
    if (!source.endpoint) throw new LifeboatError(`The RDS instance ${target.instanceId} has no endpoint (status ${source.status}), so it cannot be dumped now; lifeboat will retry.`, 'NO_ENDPOINT', false);
    return { host: source.endpoint.host, port: source.endpoint.port, database: target.database, user: target.user, password: target.password, tls: pgTlsOf(target) };
  };

  const progressHeartbeat = <T>(phase: string, everyMs: number | undefined, work: (onProgress: (p: DumpProgress) => void) => Promise<T>) => {
    let progress: DumpProgress = { dumpBytes: 0, storedBytes: 0 };
    const started = Date.now();
    return withHeartbeats(
      () => ({ phase, ...progress, seconds: Math.round((Date.now() - started) / 1000) }),
      () => work((p) => (progress = p)),
      everyMs ?? 5000,
    );
  };

  return {
    /** Checks the config and the key before anything is written; names the backup after the workflow. */
    async planLogicalBackup(targetName: string): Promise<LogicalBackupPlan> {
      const { target, lb } = settingsOf(targetName);
      // A missing or malformed key fails here, in one sentence, before pg_dump starts.
      loadEncryptionKey(lb.encryptionKey);
      const source = await sourceOf(target);
      return {
        target: target.name,
        environment: target.environment,
        backupName: logicalBackupName(currentWorkflowId()),
        source: `${source.host}:${source.port}/${source.database}`,
        primary: { store: lb.store, bucket: lb.bucket, prefix: lb.prefix },
        dr: { store: lb.dr.store, bucket: lb.dr.bucket, prefix: lb.prefix },
        expectedTables: [...target.criticalTables],
      };
    },

    /** pg_dump → zstd (gzip without the zstd program) → AES-256-GCM → multipart upload; heartbeats carry the bytes so far. */
    async dumpDatabase(plan: LogicalBackupPlan, heartbeatMs?: number): Promise<StoredDump> {
      const { target } = settingsOf(plan.target);
      const source = await sourceOf(target);
      const engine = engineFor(plan.target, 'primary');
      const result = await progressHeartbeat('dumping', heartbeatMs, (onProgress) => engine.backup({ target: plan.target, backupName: plan.backupName, source, onProgress }));
      return storedDump(result, plan.primary.store);
    },

    /** Reads a copy back end to end (hashes, decryption, decompression, pg_restore --list, expected tables). */
    async verifyDump(plan: LogicalBackupPlan, region: Region, heartbeatMs?: number): Promise<DumpVerification> {
      const engine = engineFor(plan.target, region);
      const ref = engine.refFor(plan.target, plan.backupName);
      const v = await progressHeartbeat(`verifying the ${region} copy`, heartbeatMs, (onProgress) => engine.verify(ref, { expectedTables: plan.expectedTables, onProgress }));
      return { ok: v.ok, checks: v.checks, store: region === 'primary' ? plan.primary.store : plan.dr.store, key: v.key, tocEntries: v.tocEntries, tables: v.tables.length, durationMs: v.durationMs };
    },

    /**
     * Streams the dump to the DR region's bucket; the source bytes are hashed on the way and a copy
     * that does not match the record is never completed. The copy is not read back here: the
     * workflow's next step verifies it end to end (SHA-256, decryption, decompression, pg_restore --list).
     */
    async copyDumpToDr(plan: LogicalBackupPlan, heartbeatMs?: number): Promise<StoredDump> {
      const { lb } = settingsOf(plan.target);
      const engine = engineFor(plan.target, 'primary');
      const dest = { s3: ports.objectStore(lb.dr.store), bucket: lb.dr.bucket, prefix: lb.prefix, name: lb.dr.store };
      const result = await progressHeartbeat('copying to the DR region', heartbeatMs, (onProgress) => engine.copyToRegion(engine.refFor(plan.target, plan.backupName), dest, { onProgress, readBack: false }));
      return storedDump(result, lb.dr.store);
    },

    /** The catalog row (backup_type `logical`) and one verification row per region. */
    async recordLogicalBackup(plan: LogicalBackupPlan, report: LogicalBackupReport, startedAt: string): Promise<string> {
      const info = Context.current().info;
      const now = new Date().toISOString();
      const location = (d: StoredDump | undefined) => d && { store: d.store, bucket: d.bucket, key: d.key, ...(d.versionId ? { versionId: d.versionId } : {}) };
      // Where a copy that never finished would be: retention removes what a failed run left there.
      const planned = (at: LogicalBackupPlan['primary']) => ({ store: at.store, bucket: at.bucket, key: logicalDumpKey(at.prefix, plan.target, plan.backupName), failed: true });
      // A verified primary dump stays verified when the DR copy fails after it: that is the copy's failure.
      const primaryVerified = report.verifications.some((v) => v.store === plan.primary.store && v.ok);
      const verified = report.outcome === 'verified' || primaryVerified;
      const copyFailed = report.outcome !== 'verified' && primaryVerified;
      return recordBackupRow(
        ports.catalog,
        {
          target: plan.target,
          environment: plan.environment,
          backupType: 'logical',
          engine: 'pg_dump',
          engineBackupId: plan.backupName,
          status: verified ? 'verified' : 'failed',
          locations: {
            primary: location(report.primary) ?? planned(plan.primary),
            dr: report.outcome === 'verified' ? location(report.dr) : { ...(location(report.dr) ?? planned(plan.dr)), failed: true },
          },
          sizeBytes: report.primary?.sizeBytes,
          checksums: report.primary ? { sha256: report.primary.sha256, dumpSha256: report.primary.dumpSha256, keyId: report.primary.keyId } : {},
          startedAt,
          completedAt: report.primary?.createdAt ?? now,
          verifiedAt: verified ? now : undefined,
          workflowId: currentWorkflowId(),
          runId: info.workflowExecution?.runId,
          failure: copyFailed ? `DR copy failed: ${report.failure ?? 'unknown reason'}` : report.failure,
          details: {
            source: plan.source,
            dumpBytes: report.primary?.dumpBytes,
            compression: report.primary?.compression ?? 'gzip',
            format: `pg_dump custom, ${report.primary?.compression ?? 'gzip'}, lifeboat-enc-v2 (AES-256-GCM)`,
            ...(report.primary?.rowCounts ? { rowCounts: report.primary.rowCounts } : {}),
          },
        },
        report.verifications.map((v) => ({ subject: `logical dump ${v.store}:${v.key}`, result: { ok: v.ok, checks: v.checks } })),
      );
    },
  };
}
