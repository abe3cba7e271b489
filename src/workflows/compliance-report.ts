/**
 * complianceReport: the weekly proof that every target is as the procedures require. Reads the
 * facts of each target (last verified backup and RPO, last passed drill against its cadence,
 * retention as found, open failures, the predicted RTO), judges them (src/domain/compliance.ts),
 * writes the report to both regions' write-once evidence buckets with its hashes in the catalog,
 * and raises a critical alert when anything is in breach. Read-only towards every target.
 */
import { ActivityOptions, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { buildComplianceReport, ComplianceReportInput, ComplianceReportResult, TargetFacts } from '../domain/compliance';
import { describeFailure } from './failure';
import { agentQueueOf, onHost } from './host-work';
import { StatusBoard } from './status-board';
import { STEP_HEARTBEAT } from './step-heartbeat';

const QUICK: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: STEP_HEARTBEAT, retry: { maximumAttempts: 5, initialInterval: '1 second' } };
const quick = proxyActivities<Activities>(QUICK);

export async function complianceReport(input: ComplianceReportInput = {}): Promise<ComplianceReportResult> {
  const info = workflowInfo();
  const board = new StatusBoard('compliance report', 'every target');
  board.enter('gathering', 'reading the facts of every target');
  const targets = await quick.complianceTargets();
  const facts: TargetFacts[] = [];
  for (const t of targets) {
    board.enter('gathering', `reading the facts of ${t.target}`);
    const f = await quick.complianceFacts(t.target);
    if (t.kind === 'database') {
      // A target on an agent has pgBackRest's sizes read there (patch host-work-on-agents); the prediction is made here.
      const queue = await agentQueueOf(t.target);
      try {
        const sizesRead = queue ? await onHost(QUICK, queue).readBackupSizes.executeWithOptions({ summary: `Read the backup sizes of ${t.target} on its agent` }, [t.target]) : undefined;
        f.prediction = await quick.predictRestore(t.target, ...(sizesRead ? [{ sizesRead }] : []));
      } catch (err) {
        // A prediction that cannot be made is not a breach: the report says why there is none.
        f.prediction = undefined;
        board.enter('gathering', `no RTO prediction for ${t.target}: ${describeFailure(err)}`);
      }
    }
    facts.push(f);
  }
  const report = buildComplianceReport(facts, { reportId: info.workflowId, runId: info.runId, generatedAt: new Date().toISOString(), requestedBy: input.requestedBy ?? 'schedule' });
  board.enter('reporting', `writing the report to the evidence buckets: ${report.summary}`);
  const evidence = await quick.publishComplianceReport(report);
  if (!report.ok) {
    await quick
      .notify({ severity: 'critical', title: `Compliance BREACH: ${report.breaches} finding${report.breaches === 1 ? '' : 's'}`, text: `${report.summary}. Report: ${evidence[0]?.key ?? '(not written)'}.` })
      .catch(() => undefined);
  }
  board.enter(report.ok ? 'done' : 'breach', report.summary);
  return { report, evidence };
}
