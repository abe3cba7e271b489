/**
 * The validation steps of a restore drill's database instance, in the order the report lists
 * them: the verifier's integrity checks with the row counts recorded at backup time, each smoke
 * and validation query (timed, one activity each, so each shows on the status board as it
 * completes), then the application check. Called by restoreDrill behind its patch.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DrillValidation } from '../domain/drill-report';
import { compareQueryTimings, DrillQueryResult, DrillValidationPlan, QueryTiming } from '../domain/drill-validation';
import type { InstanceDescription } from '../domain/ports';
import type { StatusBoard } from './status-board';
import { CRASH_RETRY, STEP_HEARTBEAT } from './step-heartbeat';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' } });
const long = proxyActivities<Activities>({ startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' } });

export interface DrillValidationOutcome {
  plan: DrillValidationPlan;
  /** Every validation, with its method in words, in the order it ran. */
  validations: DrillValidation[];
  queryTimings: QueryTiming[];
  applicationCheck?: { name: string; exitCode?: number; timedOut: boolean; seconds: number; outputTail: string };
  /** Found but not failures: queries much slower than in the previous drill. */
  issues: string[];
}

/** How each of the verifier's checks proved what it proves, in words for the report. */
export function verifierMethod(check: string): string {
  if (check.startsWith('table ')) return 'the critical table has rows and reads in full (checksum of every row, range by range)';
  if (check === 'row counts at backup') return "exact row counts of the critical tables against those counted on the source right after the backup ended, compared only when no transaction committed in between";
  if (check.startsWith('foreign key ')) return 'no row of the child table lacks its parent';
  if (check === 'accepts writes') return 'the instance left recovery and was promoted';
  if (check === 'verification role') return 'every check ran as a role that cannot write';
  return 'as the verifier names it';
}

function queryMethod(q: DrillQueryResult): string {
  return q.kind === 'smoke'
    ? "the target's smoke query, one read-only statement, as the verify role; passes with at least one row (timed)"
    : "the target's validation SQL, one read-only statement, as the verify role; passes when its first row's first column is not NULL, false, zero or empty (timed)";
}

export async function validateDrillInstance(args: { target: string; instance: InstanceDescription; backupCatalogId: string; drillId: string; board: StatusBoard }): Promise<DrillValidationOutcome> {
  const { target, instance, board } = args;
  const validations: DrillValidation[] = [];
  const add = (v: DrillValidation) => {
    validations.push(v);
    board.validated(v);
  };
  const plan = await quick.planDrillValidations.executeWithOptions({ startToCloseTimeout: '1 minute', summary: `What the drill of ${target} validates` }, [target, args.drillId]);

  const verification = await long.verifyDrillInstance.executeWithOptions(
    { startToCloseTimeout: '6 hours', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Integrity checks of ${instance.instanceId}` },
    [target, instance, args.backupCatalogId],
  );
  for (const c of verification.checks) add({ name: c.name, method: verifierMethod(c.name), ok: c.ok, detail: c.detail });

  const results: DrillQueryResult[] = [];
  for (const query of plan.queries) {
    const result = await long.runDrillQuery.executeWithOptions(
      { startToCloseTimeout: '10 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: CRASH_RETRY, summary: `Run the ${query.kind} query ${query.name}` },
      [target, instance, query],
    );
    results.push(result);
    add({ name: `${query.kind} query ${query.name}`, method: queryMethod(result), ok: result.ok, detail: `${result.detail}${result.completed ? ` in ${result.ms} ms` : ''}`, seconds: Math.round(result.ms / 1000) });
  }
  const { timings, issues } = compareQueryTimings(
    results.filter((r) => r.completed),
    plan.previous,
  );

  let applicationCheck: DrillValidationOutcome['applicationCheck'];
  if (plan.applicationCheck) {
    const check = plan.applicationCheck;
    const result = await long.runDrillApplicationCheck.executeWithOptions(
      // The command's own timeout kills it first; the activity's leaves room to report that.
      { startToCloseTimeout: `${check.timeoutSeconds + 120} seconds`, heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 3, initialInterval: '5 seconds' }, summary: `Application check ${check.name}` },
      [target, instance, args.drillId],
    );
    applicationCheck = { name: result.name, ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}), timedOut: result.timedOut, seconds: Math.round(result.ms / 1000), outputTail: result.outputTail };
    add({ name: `application check ${result.name}`, method: "the target's application check, run against the drill instance as the verify role; its exit status counts", ok: result.ok, detail: result.detail, seconds: Math.round(result.ms / 1000) });
  }
  return { plan, validations, queryTimings: timings, ...(applicationCheck ? { applicationCheck } : {}), issues };
}
