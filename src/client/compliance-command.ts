/**
 * `lifeboat compliance [--run] [--json]`: prints the latest compliance report from the catalog
 * (or runs the complianceReport workflow now with --run and prints that one). Exit 0 when the
 * report found every target compliant, 1 when it found a breach.
 */
import type { Client } from '@temporalio/client';
import { createPorts } from '../activities/ports';
import type { LifeboatConfig } from '../config';
import type { ComplianceEvidence, ComplianceReport, ComplianceReportInput, ComplianceReportResult } from '../domain/compliance';
import { failureOf, follow } from './backup-commands';
import { formatTable, line, printJson } from './output';

export function printComplianceReport(report: ComplianceReport, evidence: ComplianceEvidence[]): void {
  line(`Compliance report ${report.reportId} (${report.generatedAt}): ${report.ok ? 'COMPLIANT' : `BREACH, ${report.breaches} finding${report.breaches === 1 ? '' : 's'}`}`);
  line(`  ${report.summary}`);
  for (const t of report.targets) {
    line();
    line(`${t.target} (${t.kind}, ${t.environment}): ${t.ok ? 'compliant' : 'BREACH'}`);
    for (const text of formatTable(t.checks.map((c) => [`  ${c.status === 'breach' ? 'BREACH' : c.status}`, c.name, c.detail]))) line(text);
  }
  const json = evidence.find((e) => e.format === 'json');
  if (json) {
    line();
    line(`report: ${json.key.replace(/\.json$/, '.{json,md}')} in ${json.copies.map((c) => `${c.bucket} (${c.region})`).join(' and ')}; SHA-256 of the JSON ${json.sha256}`);
  }
}

export async function complianceCommand(config: LifeboatConfig, o: { run: boolean; json: boolean; requestedBy: string; client: () => Promise<Client> }): Promise<number> {
  let result: ComplianceReportResult | undefined;
  if (o.run) {
    const client = await o.client();
    try {
      const workflowId = `compliance-${new Date().toISOString().replace(/[:.]/g, '-').toLowerCase()}`;
      const input: ComplianceReportInput = { requestedBy: o.requestedBy };
      const handle = await client.workflow.start('complianceReport', {
        taskQueue: config.temporal.taskQueue,
        workflowId,
        args: [input],
        staticSummary: 'compliance report of every target',
        staticDetails: `Requested by ${o.requestedBy} from the lifeboat CLI.`,
      });
      try {
        result = await follow<ComplianceReportResult>(client, handle, o.json);
      } catch (err) {
        if (o.json) printJson({ workflowId, ok: false, failure: failureOf(err) });
        else line(`compliance report ${workflowId} FAILED: ${failureOf(err)}`);
        return 1;
      }
    } finally {
      await client.connection.close();
    }
  } else {
    const ports = createPorts(config);
    try {
      const [row] = await ports.catalog.query<{ report: ComplianceReport; evidence: ComplianceEvidence[] }>('SELECT report, evidence FROM compliance_reports ORDER BY generated_at DESC, id DESC LIMIT 1');
      if (!row) {
        if (o.json) printJson({ ok: false, report: null, detail: 'no compliance report on record' });
        else line('No compliance report on record yet: run one now with `lifeboat compliance --run`, or let the weekly schedule (`lifeboat schedules apply`) make it.');
        return 1;
      }
      result = { report: row.report, evidence: row.evidence };
    } finally {
      await ports.close();
    }
  }
  if (o.json) printJson(result);
  else printComplianceReport(result.report, result.evidence);
  return result.report.ok ? 0 : 1;
}
