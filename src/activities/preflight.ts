/** Activities of the preflight workflow: each checks one real system and says what it found. */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { findDatabaseTarget, findTarget, resolveSecret, SecretRef } from '../config';
import { describeError, LifeboatError } from '../domain/errors';
import { ComponentCheck, PreflightPlan, PreflightResult } from '../domain/preflight';
import { rpoStatus } from './backup';
import { currentWorkflowId } from './context';
import { dynamoDbPreflightChecks, isDynamoDbTarget } from './dynamodb';
import { pgTlsOf, Ports } from './ports';
import { newPgClient } from '../engines/pg-client';
import { repositoryCopyReadiness } from '../engines/pgbackrest/repository-copy';
import { defaultDbOsUser } from '../platform/host';
import { ensureAbortIncompleteUploadsRule } from '../engines/s3';
import { readBucketLock } from '../engines/object-lock';
import { describeLock, lockProblem } from '../domain/object-lock';

/** The secrets among `refs` that cannot be read now, each as `what (why)`. */
function unreadableSecrets(refs: Array<[string, SecretRef | undefined] | [string, SecretRef | undefined, { redact: false }]>): string[] {
  const problems: string[] = [];
  for (const [what, ref, options] of refs) {
    if (!ref) continue;
    try {
      if (!resolveSecret(ref, process.env, options)) problems.push(`${what} (${ref} is empty)`);
    } catch (err) {
      problems.push(`${what} (${describeError(err)})`);
    }
  }
  return problems;
}

const secretsCheck = (component: string, problems: string[], count: number): ComponentCheck =>
  problems.length
    ? { component, ok: false, detail: `cannot read ${problems.join('; ')}` }
    : { component, ok: true, detail: `${count} secret(s) readable` };

/** A password that cannot be read is reported by the secrets check; the connection then shows what the server says. */
function readSecretOrUndefined(ref: SecretRef): string | undefined {
  try {
    return resolveSecret(ref);
  } catch {
    return undefined;
  }
}

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

  /** Every secret a database target depends on: its password, its dump key, the API key of its cutover's router, the webhook. */
  const databaseSecrets = (name: string): Array<[string, SecretRef | undefined]> => {
    const target = findDatabaseTarget(config, name);
    const router = target.cutover ? config.trafficRouters.find((r) => r.name === target.cutover!.router) : undefined;
    return [
      [`the password of ${target.user}`, target.password],
      ...(target.engine === 'pgbackrest' && target.logicalBackup ? [['the logical-backup encryption key', target.logicalBackup.encryptionKey] as [string, SecretRef]] : []),
      ...(router && router.kind === 'powerdns' ? [[`the API key of traffic router ${router.name}`, router.apiKey] as [string, SecretRef]] : []),
      // Its alerts go out through the webhook: an unreadable URL means failures nobody hears of.
      ['the notification webhook URL', config.notifications?.webhook?.url],
    ];
  };

  /** `pgbackrest check` of each repository of a pgBackRest target, one check per repository. */
  const repositoryChecks = async (target: Extract<ReturnType<typeof findDatabaseTarget>, { engine: 'pgbackrest' }>): Promise<ComponentCheck[]> => {
    Context.current().heartbeat('pgbackrest check');
    const regionOf = (repo: number) => (repo === target.primaryRepo ? 'primary' : 'dr');
    const cli = ports.pgbackrest(target);
    const checks: ComponentCheck[] = (await cli.checkEachRepo([target.primaryRepo, target.drRepo])).map((repo) => ({
      component: `pgbackrest ${target.name} repo${repo.repo} (${regionOf(repo.repo)})`,
      ok: repo.ok,
      detail: repo.detail,
    }));
    // A DR copy made by copying the repository needs two repositories whose bytes mean the same thing.
    if (target.drCopy === 'repository-copy') {
      const ready = await repositoryCopyReadiness(cli, target.osUser ?? defaultDbOsUser(), target.primaryRepo, target.drRepo);
      checks.push({ component: `pgbackrest ${target.name} dr-copy (repo${target.primaryRepo} -> repo${target.drRepo})`, ...ready });
    }
    return checks;
  };

  return {
    /** Which components the named targets depend on (all targets when none are named). */
    async planPreflight(targets: string[] | undefined): Promise<PreflightPlan> {
      const dbs = config.targets.databases.filter((d) => !targets || targets.includes(d.name));
      const buckets = config.targets.buckets.filter((b) => !targets || targets.includes(b.name));
      const directories = config.targets.directories.filter((d) => !targets || targets.includes(d.name));
      const sqlite = config.targets.sqlite.filter((q) => !targets || targets.includes(q.name));
      // DynamoDB tables are checked through checkDatabaseTarget, which hands them to dynamoDbPreflightChecks.
      const tables = config.targets.dynamodb.filter((d) => !targets || targets.includes(d.name)).map((d) => d.name);
      for (const name of targets ?? []) if (!directories.some((d) => d.name === name) && !sqlite.some((q) => q.name === name) && !isDynamoDbTarget(config, name)) findTarget(config, name); // an unknown name fails here, non-retryable, in one sentence
      const stores = new Set<string>();
      for (const d of directories) [d.store, d.dr.store].forEach((s) => stores.add(s));
      for (const b of buckets) [b.source.store, b.backup.store, b.replica.store].forEach((s) => stores.add(s));
      if (config.evidence) stores.add(config.evidence.store);
      if (dbs.length > 0) config.objectStores.forEach((s) => stores.add(s.name));
      for (const q of sqlite) [q.store, q.dr.store].forEach((st) => stores.add(st));
      return {
        databases: [...dbs.map((d) => d.name), ...tables],
        objectStores: [...stores].sort(),
        dnsNames: dbs.flatMap((d) => (d.cutover ? [{ target: d.name, router: d.cutover.router, dnsName: d.cutover.dnsName }] : [])),
        ...(directories.length ? { directories: directories.map((d) => d.name) } : {}),
        ...(sqlite.length ? { sqlite: sqlite.map((q) => q.name) } : {}),
      };
    },

    /**
     * The database, its secrets, its pgBackRest repositories and its RPO. `repositoriesOnHost`:
     * the target's agent checks the repositories (checkRepositories), so they are left out here.
     */
    async checkDatabaseTarget(name: string, repositoriesOnHost = false): Promise<ComponentCheck[]> {
      if (isDynamoDbTarget(config, name)) return dynamoDbPreflightChecks(ports, name);
      const target = findDatabaseTarget(config, name);
      if (target.engine !== 'pgbackrest') {
        return [{ component: `database ${name}`, ok: false, detail: `preflight of ${target.engine} targets is not wired into this worker yet` }];
      }
      const checks: ComponentCheck[] = [];
      const secrets = databaseSecrets(name);
      checks.push(secretsCheck(`secrets of ${name}`, unreadableSecrets(secrets), secrets.filter(([, ref]) => ref).length));
      const client = newPgClient({
        host: target.host,
        port: target.port,
        database: target.database,
        user: target.user,
        password: target.password ? readSecretOrUndefined(target.password) : undefined,
        tls: pgTlsOf(target),
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
      if (!repositoriesOnHost) checks.push(...(await repositoryChecks(target)));
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

    /** `pgbackrest check` of each repository of a target, on its host (its agent), where pgBackRest's configuration names them. */
    async checkRepositories(name: string): Promise<ComponentCheck[]> {
      const target = findDatabaseTarget(config, name);
      if (target.engine !== 'pgbackrest') throw new LifeboatError(`checkRepositories checks pgBackRest repositories, and ${name} is a ${target.engine} target.`, 'BAD_INPUT');
      return repositoryChecks(target);
    },

    async checkObjectStore(name: string): Promise<ComponentCheck> {
      const store = config.objectStores.find((o) => o.name === name);
      const unreadable = unreadableSecrets([
        // An access key id only identifies (S3 shows it in its own errors), so it is not redacted: see resolveSecret.
        [`the access key id of ${name}`, store?.credentials?.accessKeyId, { redact: false }],
        [`the secret access key of ${name}`, store?.credentials?.secretAccessKey],
      ]);
      if (unreadable.length) return { component: `object store ${name}`, ok: false, detail: `cannot read ${unreadable.join('; ')}` };
      const s3 = ports.objectStore(name);
      const buckets = new Set<string>();
      for (const b of config.targets.buckets) {
        for (const loc of [b.source, b.backup, b.replica]) if (loc.store === name) buckets.add(loc.bucket);
      }
      if (config.evidence?.store === name) buckets.add(config.evidence.bucket);
      const locked = config.backupBuckets.filter((b) => b.store === name);
      for (const b of locked) buckets.add(b.bucket);
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
      // A bucket the config calls write-once must really be: its backups' safety rests on it.
      const lockProblems: string[] = [];
      for (const b of locked) {
        try {
          const found = await readBucketLock(s3, b.bucket);
          const problem = lockProblem(b.bucket, b.objectLock, found);
          if (problem) lockProblems.push(problem);
          else rules.push(`${b.bucket}: ${describeLock(found)} as configured`);
        } catch (err) {
          lockProblems.push(`cannot read the object lock of ${b.bucket} (${describeError(err) || (err as { name?: string }).name}): grant s3:GetBucketObjectLockConfiguration`);
        }
      }
      if (lockProblems.length) return { component: `object store ${name}`, ok: false, detail: lockProblems.join('; ') };
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
      // Resolving the name needs no key, but moving it does: a cutover must not be the first to find the key missing.
      const router = config.trafficRouters.find((r) => r.name === check.router);
      const unreadable = unreadableSecrets(router && router.kind === 'powerdns' ? [[`the API key of traffic router ${router.name}`, router.apiKey]] : []);
      if (unreadable.length) return { component: `dns ${check.dnsName}`, ok: false, detail: `cannot read ${unreadable.join('; ')}: a cutover could not move the name` };
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
      const unreadable = unreadableSecrets([
        ['the catalog password', config.catalog.password],
      ]);
      if (unreadable.length) return { component: 'catalog', ok: false, detail: `cannot read ${unreadable.join('; ')}` };
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
