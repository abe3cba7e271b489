import { Context } from '@temporalio/activity';

/** The id of the workflow running this activity: names of things activities create derive from it. */
export function currentWorkflowId(): string {
  const info = Context.current().info;
  const id = info.workflowExecution?.workflowId;
  if (!id) throw new Error(`activity ${info.activityType} ran outside a workflow; lifeboat activities need one to name what they create.`);
  return id;
}
