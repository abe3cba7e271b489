/**
 * The live state of a long-running workflow, as people see it: the `status` query (CLI), the
 * phase search attribute and the current-details markdown (Web UI), and a timeline.
 */
import { setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { Decision, PendingGate, TimelineEntry, WorkflowStatus } from '../domain/approval';
import { statusQuery } from './messages';
import { LifeboatAwaitingApproval } from './search-attributes';
import { showPhase } from './ui';
import { formatDuration } from '../domain/format';

export class StatusBoard {
  readonly startedAt = new Date().toISOString();
  phase = 'starting';
  pendingGate?: PendingGate;
  readonly decisions: Decision[] = [];
  readonly timeline: TimelineEntry[] = [];
  readonly refused: WorkflowStatus['refused'] = [];

  constructor(
    readonly kind: string,
    readonly target: string,
    /** Set once known (validation tells it); shown as elapsed against the target. */
    public rtoTargetSeconds?: number,
  ) {
    setHandler(statusQuery, () => this.snapshot());
  }

  /** Moves to a phase: timeline entry, search attribute and the Web UI's current details. */
  enter(phase: string, note: string): void {
    this.phase = phase;
    this.timeline.push({ at: new Date().toISOString(), phase, note });
    showPhase(phase, this.markdown(note));
  }

  setPendingGate(gate: PendingGate | undefined): void {
    this.pendingGate = gate;
    upsertSearchAttributes([{ key: LifeboatAwaitingApproval, value: gate !== undefined }]);
  }

  elapsedSeconds(): number {
    return Math.round((new Date().getTime() - Date.parse(this.startedAt)) / 1000);
  }

  snapshot(): WorkflowStatus {
    return {
      kind: this.kind,
      target: this.target,
      phase: this.phase,
      startedAt: this.startedAt,
      rtoTargetSeconds: this.rtoTargetSeconds,
      pendingGate: this.pendingGate,
      decisions: [...this.decisions],
      timeline: [...this.timeline],
      refused: [...this.refused],
    };
  }

  private markdown(note: string): string {
    const lines = [`**${this.kind}** of **${this.target}**: ${note}`, ''];
    if (this.rtoTargetSeconds) {
      // An absolute deadline stays true while the page sits unchanged; "elapsed" would freeze.
      const due = new Date(Date.parse(this.startedAt) + this.rtoTargetSeconds * 1000).toISOString();
      const elapsed = this.elapsedSeconds();
      lines.push(`RTO target ${formatDuration(this.rtoTargetSeconds)}: recovery due by **${due}** (started ${this.startedAt})${elapsed > this.rtoTargetSeconds ? ', **over target**' : ''}.`, '');
    }
    const gate = this.pendingGate;
    if (gate) {
      lines.push(`### Waiting for approval: ${gate.prompt.title}`, '', ...gate.prompt.facts.map((f) => `- **${f.label}:** ${f.value}`), '');
      lines.push(`Any of: ${gate.allowedRoles.join(', ')}${gate.requestedBy ? ` (not ${gate.requestedBy})` : ''}. Reminder at ${gate.remindAt}, aborts at ${gate.abortAt}.`, '');
      lines.push('```', `lifeboat approve ${workflowInfo().workflowId} --gate ${gate.gate} --reason "..." --as <you>`, `lifeboat reject ${workflowInfo().workflowId} --reason "..." --as <you>`, '```');
    }
    for (const d of this.decisions) lines.push(`- ${d.gate}: **${d.decision}** by ${d.by} at ${d.at}: ${d.reason}`);
    return lines.join('\n');
  }
}

