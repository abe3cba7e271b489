/**
 * preflight: proves every system a target depends on works right now (database, both
 * pgBackRest repositories, object stores, DNS, catalog) and records the result. Cheap enough
 * to run before every drill and on demand; never changes anything but its catalog row.
 */
import { ActivityOptions, patched, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ComponentCheck, PreflightInput, PreflightResult } from '../domain/preflight';
import { agentQueueOf, HOST_WORK_ON_AGENTS, onHost } from './host-work';
import { LifeboatKind } from './search-attributes';
import { showPhase } from './ui';
import { STEP_HEARTBEAT } from './step-heartbeat';

const CHECKS: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: STEP_HEARTBEAT,
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
};
const acts = proxyActivities<Activities>(CHECKS);

/**
 * One database target's checks. On an agent, its repositories are checked there (pgBackRest's
 * configuration names them on the host) while the rest is checked here, and the lines keep the
 * order of one check: the database, its repositories, its RPO.
 */
async function databaseChecks(name: string): Promise<ComponentCheck[]> {
  const queue = await agentQueueOf(name);
  const central: ActivityOptions = { startToCloseTimeout: '3 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: `Check database ${name}${queue ? '' : ' and its repositories'}` };
  if (!queue) return acts.checkDatabaseTarget.executeWithOptions(central, [name]);
  const [own, repositories] = await Promise.all([
    acts.checkDatabaseTarget.executeWithOptions(central, [name, true]),
    onHost(CHECKS, queue).checkRepositories.executeWithOptions({ startToCloseTimeout: '3 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: `Check the repositories of ${name} on its agent` }, [name]),
  ]);
  const rpoAt = own.findIndex((c) => c.component.startsWith('rpo '));
  return rpoAt < 0 ? [...own, ...repositories] : [...own.slice(0, rpoAt), ...repositories, ...own.slice(rpoAt)];
}

/** Patch: directory targets are checked on their hosts (the directory readable, its critical files present, its key). */
export const PREFLIGHT_DIRECTORIES = 'preflight-directory-targets';

/** One directory target's checks, on its agent when it has one. */
async function directoryChecks(name: string): Promise<ComponentCheck[]> {
  const r = await onHost(CHECKS, await agentQueueOf(name)).checkDirectory.executeWithOptions({ startToCloseTimeout: '3 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: `Check directory ${name} on its host` }, [name]);
  return r.checks.map((c) => ({ component: `directory ${name} ${c.name}`, ok: c.ok, detail: c.detail }));
}

/** Patch: SQLite targets' files are checked (where each file is), after the other checks were scheduled. */
export const SQLITE_TARGETS_IN_PREFLIGHT = 'sqlite-targets-in-preflight';

/** One SQLite target's file, checked on its host. */
async function sqliteCheck(name: string): Promise<ComponentCheck[]> {
  const check = await onHost(CHECKS, await agentQueueOf(name)).checkSqliteSource.executeWithOptions({ startToCloseTimeout: '2 minutes', summary: `Check the SQLite file of ${name}` }, [name]);
  return [check];
}

export async function preflight(input: PreflightInput = {}): Promise<PreflightResult> {
  upsertSearchAttributes([{ key: LifeboatKind, value: 'preflight' }]);
  showPhase('planning', 'Working out which systems the targets depend on.');
  const plan = await acts.planPreflight.executeWithOptions({ startToCloseTimeout: '30 seconds', summary: 'Plan the checks' }, [input.targets]);

  showPhase('checking', `Checking ${plan.databases.length} database(s), ${plan.objectStores.length} object store(s), ${plan.dnsNames.length} DNS name(s) and the catalog.`);
  // Patch host-work-on-agents: a target's repositories are checked on its agent. Asked before the
  // checks start, because a run from before it scheduled them all at once, in this order.
  const routed = patched(HOST_WORK_ON_AGENTS);
  const directories = plan.directories?.length && patched(PREFLIGHT_DIRECTORIES) ? plan.directories : [];
  const sqlite = plan.sqlite?.length && patched(SQLITE_TARGETS_IN_PREFLIGHT) ? plan.sqlite : [];
  const checks: ComponentCheck[] = (
    await Promise.all([
      ...sqlite.map((name) => sqliteCheck(name)),
      ...plan.databases.map((name) =>
        routed ? databaseChecks(name) : acts.checkDatabaseTarget.executeWithOptions({ startToCloseTimeout: '3 minutes', heartbeatTimeout: STEP_HEARTBEAT, summary: `Check database ${name} and its repositories` }, [name]),
      ),
      ...plan.objectStores.map((name) => acts.checkObjectStore.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Check object store ${name}` }, [name]).then((c) => [c])),
      ...plan.dnsNames.map((d) => acts.checkDnsName.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `Resolve ${d.dnsName}` }, [d]).then((c) => [c])),
      acts.checkCatalog.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Check the catalog' }, []).then((c) => [c]),
      ...directories.map((name) => directoryChecks(name)),
    ])
  ).flat();

  const problems = checks.filter((c) => !c.ok && !c.advisory).map((c) => `${c.component}: ${c.detail}`);
  const result: PreflightResult = { ok: problems.length === 0, checks, problems };
  showPhase('recording', 'Recording the result in the catalog.');
  await acts.recordPreflight.executeWithOptions({ startToCloseTimeout: '1 minute', summary: 'Record the result in the catalog' }, [result]);
  const table = checks.map((c) => `| ${c.ok ? 'ok' : c.advisory ? 'warn' : '**FAIL**'} | ${c.component} | ${c.detail.replace(/\|/g, '\\|')} |`).join('\n');
  showPhase(result.ok ? 'done' : 'failed-checks', `${result.ok ? 'All checks passed.' : `${problems.length} check(s) failed.`}\n\n| | component | detail |\n|---|---|---|\n${table}`);
  return result;
}
