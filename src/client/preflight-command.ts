import { connectClient } from '../client/temporal';
import { LifeboatConfig } from '../config';
import { PreflightResult } from '../domain/preflight';
import { line, printJson } from './output';

/** Runs the preflight workflow and waits for its verdict. Exit 0 when every check passed. */
export async function preflightCommand(config: LifeboatConfig, options: { targets?: string[]; json: boolean; workflowId?: string }): Promise<number> {
  const client = await connectClient(config);
  try {
    const workflowId = options.workflowId ?? `preflight-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    if (!options.json) line(`preflight ${workflowId}: checking ${options.targets?.join(', ') ?? 'every target'}...`);
    const handle = await client.workflow.start('preflight', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [{ targets: options.targets }],
      staticSummary: `Preflight of ${options.targets?.join(', ') ?? 'every target'}`,
    });
    const result = (await handle.result()) as PreflightResult;
    if (options.json) printJson({ workflowId, ...result });
    else {
      for (const c of result.checks) line(`${c.ok ? 'ok  ' : c.advisory ? 'WARN' : 'FAIL'} ${c.component}: ${c.detail}`);
      line(result.ok ? 'preflight passed: lifeboat can back up and restore every target checked.' : `preflight found ${result.problems.length} problem(s); fix them before relying on backups.`);
    }
    return result.ok ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}
