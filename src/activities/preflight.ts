/** Activities of the preflight workflow: each checks one real system and says what it found. */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, findTarget, resolveSecret } from '../config';
import { describeError } from '../domain/errors';
import { ComponentCheck, PreflightPlan, PreflightResult } from '../domain/preflight';
import { rpoStatus } from './backup';
import { currentWorkflowId } from './context';
import { Ports } from './ports';
import { newPgClient } from '../engines/pg-client';
import { ensureAbortIncompleteUploadsRule } from '../engines/s3';

export function preflightActivities(ports: Ports) {
  const { config } = ports;

  /** Buckets of this store that lifeboat writes backups into (logical dumps, file backup sets). */
  const backupBucketsOf = (store: string): string[] => {
    const found = new Set<string>();
    for (const d of config.targets.databases) {
      const lb = d.logicalBackup;
      if (lb?.store === store) found.add(lb.bucket);
      if (lb?.dr.store === store) found.add(lb.dr.bucket);
    }
    for (const b of config.targets.buckets) {
      if (b.backup.store === store) found.add(b.backup.bucket);
      if (b.drBackup?.store === store) found.add(b.drBackup.bucket);
    }
    return [...found].sort();
  };

  return {
    /** Which components the named targets depend on (all targets when none are named). */
    async planPreflight(targets: string[] | undefined): Promise<PreflightPlan> {
      const dbs = config.targets.databases.filter((d) => !targets || targets.includes(d.name));
      const buckets = config.targets.buckets.filter((b) => !targets || targets.includes(b.name));
      for (const name of targets ?? []) findTarget(config, name); // an unknown name fails here, non-retryable, in one sentence
      const stores = new Set<string>();
      for (const b of buckets) [b.source.store, b.backup.store, b.replica.store].forEach((s) => stores.add(s));
      if (config.evidence) stores.add(config.evidence.store);
      if (dbs.length > 0) config.objectStores.forEach((s) => stores.add(s.name));
      return {
        databases: dbs.map((d) => d.name),
        objectStores: [...stores].sort(),
        dnsNames: dbs.flatMap((d) => (d.cutover ? [{ target: d.name, router: d.cutover.router, dnsName: d.cutover.dnsName }] : [])),
      };
    },

    async checkDatabaseTarget(name: string): Promise<ComponentCheck[]> {
      const target = findDatabaseTarget(config, name);
      if (target.engine !== 'pgbackrest') {
        return [{ component: `database ${name}`, ok: false, detail: `preflight of ${target.engine} targets is not wired into this worker yet` }];
      }
      const checks: ComponentCheck[] = [];
      const client = newPgClient({
        host: target.host,
        port: target.port,
        database: target.database,
        user: target.user,
        password: target.password ? resolveSecret(target.password) : undefined,
        connectionTimeoutMillis: 5000,
      });
      try {
        await client.connect();
        const row = (await client.query<{ version: string; recovery: boolean; sysid: string }>(
          "SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS recovery, system_identifier::text AS sysid FROM pg_control_system()",
        )).rows[0];
        checks.push({ component: `database ${name}`, ok: !row.recovery, detail: `PostgreSQL ${row.version} at ${target.host}:${target.port}, system ${row.sysid}${row.recovery ? ', IN RECOVERY (not a primary)' : ''}` });
      } catch (err) {
        checks.push({ component: `database ${name}`, ok: false, detail: `cannot connect to ${target.host}:${target.port}: ${describeError(err)}` });
      } finally {
        await client.end().catch(() => undefined);
      }
      Context.current().heartbeat('pgbackrest check');
      const regionOf = (repo: number) => (repo === target.primaryRepo ? 'primary' : 'dr');
      for (const repo of await ports.pgbackrest(target).checkEachRepo([target.primaryRepo, target.drRepo])) {
        checks.push({ component: `pgbackrest ${name} repo${repo.repo} (${regionOf(repo.repo)})`, ok: repo.ok, detail: repo.detail });
      }
      Context.current().heartbeat('rpo');
      // The data the target would lose now (WAL archive lag), not the age of its last backup.
      try {
        const rpo = await rpoStatus(ports, name);
        checks.push({ component: `rpo ${name}`, ok: !rpo.breached, advisory: true, detail: rpo.detail });
      } catch (err) {
        checks.push({ component: `rpo ${name}`, ok: false, advisory: true, detail: `the RPO of ${name} cannot be judged: ${describeError(err)}` });
      }
      return checks;
    },

    async checkObjectStore(name: string): Promise<ComponentCheck> {
      const s3 = ports.objectStore(name);
      const buckets = new Set<string>();
      for (const b of config.targets.buckets) {
        for (const loc of [b.source, b.backup, b.replica]) if (loc.store === name) buckets.add(loc.bucket);
      }
      if (config.evidence?.store === name) buckets.add(config.evidence.bucket);
      const missing: string[] = [];
      for (const bucket of buckets) {
        try {
          await s3.send(new HeadBucketCommand({ Bucket: bucket }));
        } catch (err) {
          missing.push(`${bucket} (${describeError(err) || (err as { name?: string }).name})`);
        }
      }
      if (missing.length) return { component: `object store ${name}`, ok: false, detail: `cannot reach bucket(s) ${missing.join(', ')}` };
      // Backup buckets abort uploads a crashed worker left incomplete: ensured here, once per preflight.
      const rules: string[] = [];
      const refused: string[] = [];
      for (const bucket of backupBucketsOf(name)) {
        try {
          const rule = await ensureAbortIncompleteUploadsRule(s3, bucket);
          rules.push(
            rule === 'unsupported'
              ? `${bucket} takes no lifecycle rule for incomplete uploads (MinIO purges them itself, after 24 h by default)`
              : `${bucket} ${rule === 'added' ? 'now aborts' : 'aborts'} incomplete uploads after 7 days`,
          );
        } catch (err) {
          refused.push(`${bucket} (${describeError(err) || (err as { name?: string }).name})`);
        }
      }
      if (refused.length) {
        return {
          component: `object store ${name}`,
          ok: false,
          detail: `cannot give backup bucket(s) ${refused.join(', ')} a lifecycle rule aborting incomplete multipart uploads; grant s3:PutLifecycleConfiguration or add the rule by hand`,
        };
      }
      return { component: `object store ${name}`, ok: true, detail: `buckets reachable: ${[...buckets].sort().join(', ') || '(none configured)'}${rules.length ? `; ${rules.join('; ')}` : ''}` };
    },

    async checkDnsName(check: { target: string; router: string; dnsName: string }): Promise<ComponentCheck> {
      try {
        const now = await ports.router(check.router).currentTarget(check.dnsName);
        return now
          ? { component: `dns ${check.dnsName}`, ok: true, detail: `points at ${now.host}${now.port ? `:${now.port}` : ''} (ttl ${now.ttl} s)` }
          : { component: `dns ${check.dnsName}`, ok: false, detail: `has no record on router ${check.router}` };
      } catch (err) {
        return { component: `dns ${check.dnsName}`, ok: false, detail: describeError(err) };
      }
    },

    async checkCatalog(): Promise<ComponentCheck> {
      try {
        const { applied } = await ports.catalog.migrate();
        const [row] = await ports.catalog.query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
        return { component: 'catalog', ok: true, detail: `schema at migration ${row.n}${applied.length ? ` (applied ${applied.join(', ')} now)` : ''}` };
      } catch (err) {
        return { component: 'catalog', ok: false, detail: `cannot use the catalog at ${config.catalog.host}:${config.catalog.port}: ${describeError(err)}` };
      }
    },

    async recordPreflight(result: PreflightResult): Promise<void> {
      const workflowId = currentWorkflowId();
      await ports.catalog.recordPreflight({ workflowId, ok: result.ok, components: result.checks });
      if (!result.ok) {
        await ports.notifier.notify({ severity: 'warning', title: 'Preflight found problems', text: result.problems.join('\n'), workflowId });
      }
    },
  };
}
