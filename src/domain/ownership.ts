/**
 * What lifeboat may touch: only what its own workflow run made. Pure, shared by the CLI, the
 * activities and both database engines, so every layer applies the same rule and says it the same way.
 */
import { ResourceOwner, RestorePoint, RunIdentity } from './ports';

/** Valid as an RDS DB instance identifier and as a local directory name alike. */
const DESTINATION_NAME = /^[a-z](?:-?[a-z0-9])*$/;
export const DESTINATION_MAX_LENGTH = 63;
export const DESTINATION_RULE = `lowercase letters, digits and single hyphens, starting with a letter, not ending with a hyphen, at most ${DESTINATION_MAX_LENGTH} characters`;

/** Why `name` cannot name a new instance, or undefined when it can. Never rewritten: a wrong name is refused. */
export function destinationNameProblem(name: string): string | undefined {
  if (name.length <= DESTINATION_MAX_LENGTH && DESTINATION_NAME.test(name)) return undefined;
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}...` : name);
  return `the destination ${shown} is not a valid instance name: use ${DESTINATION_RULE} (valid for RDS and local instances alike).`;
}

/** The restore point as recorded on what a restore makes. */
export function restorePointLabel(point: RestorePoint): string {
  switch (point.kind) {
    case 'time':
      return new Date(point.at).toISOString();
    case 'latest':
      return 'latest';
    case 'lsn':
      return `lsn:${point.lsn}`;
    case 'name':
      return `name:${point.name}`;
    case 'backup':
      return `backup:${point.backupId}`;
  }
}

export function isSameRun(owner: RunIdentity | undefined, by: RunIdentity): boolean {
  return !!owner && owner.workflowId === by.workflowId && owner.runId === by.runId;
}

/** "workflow W (run R, restore point P, created T)": names the owner in refusals. */
export function describeOwner(owner: ResourceOwner): string {
  return `${owner.purpose === 'drill' ? 'restore drill ' : ''}workflow ${owner.workflowId} (run ${owner.runId}, restore point ${owner.restorePoint}, created ${owner.createdAt})`;
}
