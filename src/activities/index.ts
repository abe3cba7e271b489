/**
 * createActivities(ports): every activity as a plain async function over the ports. Workflows
 * see only the type (`import type`), so no activity code reaches the workflow bundle.
 */
import { ApplicationFailure } from '@temporalio/common';
import { redactDeep, redactError } from '../config/secrets';
import { LifeboatError } from '../domain/errors';
import { Ports } from './ports';
import { approvalActivities } from './approvals';
import { preflightActivities } from './preflight';
import { restoreActivities } from './restore';
import { tableRestoreActivities } from './table-restore';
import { backupActivities } from './backup';
import { logicalBackupActivities } from './logical-backup';
import { logicalRestoreActivities } from './logical-restore';
import { filesBackupActivities } from './files-backup';
import { retentionActivities } from './retention';
import { restorePointActivities } from './restore-points';
import { drillActivities } from './drills';
import { filesDrillActivities } from './files-drill';
import { filesRestoreActivities } from './files-restore';
import { drillSweeperActivities } from './drill-sweeper';
import { drillValidationActivities } from './drill-validations';
import { predictionActivities } from './rto-prediction';
import { complianceActivities } from './compliance';
import { failoverPlanActivities } from './failover-plan';
import { failoverDrillActivities } from './failover-drill';
import { failoverActivities } from './failover';
import { failbackActivities } from './failback';
import { agentActivities } from './agents';
import { HOST_BOUND_ACTIVITIES, HostBoundActivity } from '../domain/agents';
import { backupDeletionActivities } from './backup-deletion';
import { alertActivities } from './alerts';
import { restoredInstanceActivities } from './restored-instances';
import { directoryBackupActivities } from './directory-backup';
import { directoryRestoreActivities } from './directory-restore';
import { sqliteActivities } from './sqlite';
import { sqliteDrillActivities } from './sqlite-drill';
import { dynamoDbActivities } from './dynamodb';

/**
 * A LifeboatError becomes an ApplicationFailure with the same sentence and its code as the type,
 * retryable or not as it says (bad input, permission, outside the window are not); any other
 * error is retried as it is. Whatever leaves an activity (its result, its failure's message,
 * stack and causes) goes into workflow history and from there into the catalog and reports, so
 * every secret value the worker has resolved is replaced by the name of its reference first.
 */
export function classifyFailures<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return redactDeep(await fn(...args));
      } catch (caught) {
        const err = redactError(caught);
        if (err instanceof LifeboatError) {
          throw ApplicationFailure.create({ message: err.message, type: err.code, nonRetryable: err.nonRetryable, cause: err });
        }
        throw err;
      }
    };
  }
  return wrapped as T;
}

export function createActivities(ports: Ports) {
  return classifyFailures({
    ...preflightActivities(ports),
    ...approvalActivities(ports),
    ...restoreActivities(ports),
    ...tableRestoreActivities(ports),
    ...backupActivities(ports),
    ...logicalBackupActivities(ports),
    ...logicalRestoreActivities(ports),
    ...filesBackupActivities(ports),
    ...retentionActivities(ports),
    ...restorePointActivities(ports),
    ...drillActivities(ports),
    ...filesDrillActivities(ports),
    ...filesRestoreActivities(ports),
    ...drillSweeperActivities(ports),
    ...drillValidationActivities(ports),
    ...predictionActivities(ports),
    ...complianceActivities(ports),
    ...failoverPlanActivities(ports),
    ...failoverDrillActivities(ports),
    ...failoverActivities(ports),
    ...failbackActivities(ports),
    ...agentActivities(ports),
    ...backupDeletionActivities(ports),
    ...alertActivities(ports),
    ...restoredInstanceActivities(ports),
    ...directoryBackupActivities(ports),
    ...directoryRestoreActivities(ports),
    ...sqliteActivities(ports),
    ...sqliteDrillActivities(ports),
    ...dynamoDbActivities(ports),
  });
}

export type Activities = ReturnType<typeof createActivities>;

/** What an agent worker registers: the host-bound activities alone (a name that is not an activity does not compile). */
export function createHostBoundActivities(ports: Ports): Pick<Activities, HostBoundActivity> {
  const all = createActivities(ports);
  return Object.fromEntries(HOST_BOUND_ACTIVITIES.map((name) => [name, all[name]])) as Pick<Activities, HostBoundActivity>;
}
