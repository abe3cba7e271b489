/**
 * `lifeboat audit verify <workflow-id>`: re-checks every signed decision of a workflow offline,
 * from the write-once evidence bucket: each record reads back as the bytes whose SHA-256 the
 * catalog holds, each signature verifies with the signer's key against the facts the gate
 * showed, and the bucket holds no decision record the catalog does not know. Then holds the
 * evidence against the workflow's history in Temporal, both ways (decision-history.ts). Prints
 * who approved what, when, against which facts; exit 1 if anything fails.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Client, isGrpcServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { decisionEvidenceKey, DECISION_EVIDENCE_EVENT_KIND } from '../activities/approvals';
import { evidenceStoreFor } from '../activities/drills';
import { createPorts } from '../activities/ports';
import type { LifeboatConfig } from '../config';
import { parseEd25519PublicKey } from '../config/public-key';
import { normalizeIdentity } from '../domain/approval';
import { auditDecisionEvidence, AuditedSignature, crossCheckHistory, DecisionEvidence, EvidenceDecision, evidenceDecisions, HistoryDecision } from '../domain/signed-decision';
import { UsageError } from './args';
import { decisionsInHistory } from './decision-history';
import { line, printJson } from './output';

interface EvidenceRow {
  key: string;
  sha256: string;
  bytes: number;
  copies: Array<{ region: string; bucket: string; versionId: string; retainUntil: string }>;
}

export interface AuditedRecord {
  key: string;
  ok: boolean;
  problem?: string;
  gate?: string;
  facts?: Array<{ label: string; value: string }>;
  factsSha256?: string;
  refused?: number;
  signatures: AuditedSignature[];
}

/** What the workflow's history says against the evidence: checked (the runs read) or not on the server any more. */
export interface HistoryCheck {
  checked: boolean;
  runs: string[];
  /** Decisions the history accepted through updates (signals are matched, not counted). */
  accepted: number;
  problems: string[];
  note?: string;
}

/** The history's decisions of every run the evidence names, and of the latest run. */
async function historyCheck(client: Client, workflowId: string, evidence: EvidenceDecision[]): Promise<HistoryCheck> {
  let latest: string;
  try {
    latest = (await client.workflow.getHandle(workflowId).describe()).runId;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { checked: false, runs: [], accepted: 0, problems: [], note: 'the workflow is no longer on the Temporal server (past its retention): only the evidence was checked' };
    throw err;
  }
  const runs = [...new Set([...evidence.map((e) => e.runId), latest])];
  const history: HistoryDecision[] = [];
  const unknownRuns: string[] = [];
  for (const runId of runs) {
    try {
      history.push(...(await decisionsInHistory(client, workflowId, runId)));
    } catch (err) {
      // fetchHistory passes the server's NOT_FOUND (gRPC code 5) through as it came.
      if (err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && err.code === 5)) unknownRuns.push(runId);
      else throw err;
    }
  }
  const problems = [
    ...unknownRuns.map((r) => `the evidence names run ${r}, which the Temporal server does not have (a run of another workflow, or past its retention)`),
    ...crossCheckHistory(history, evidence.filter((e) => !unknownRuns.includes(e.runId)), normalizeIdentity),
  ];
  return { checked: true, runs, accepted: history.filter((h) => h.via === 'update').length, problems };
}

export async function auditVerifyCommand(config: LifeboatConfig, o: { workflowId: string; json: boolean; client: () => Promise<Client> }): Promise<number> {
  const ports = createPorts(config);
  try {
    const rows = await ports.catalog.query<{ details: EvidenceRow }>(`SELECT details FROM workflow_events WHERE workflow_id = $1 AND kind = $2 ORDER BY id`, [o.workflowId, DECISION_EVIDENCE_EVENT_KIND]);
    const store = evidenceStoreFor(config, ports);
    const keysNow: Record<string, string> = {};
    for (const [who, text] of Object.entries(config.publicKeys ?? {})) {
      const parsed = parseEd25519PublicKey(text);
      if (parsed.ok) keysNow[normalizeIdentity(who)] = parsed.hex;
    }
    const records: AuditedRecord[] = [];
    const decided: EvidenceDecision[] = [];
    for (const { details: e } of rows) {
      try {
        const body = await store.read({ key: e.key, sha256: e.sha256, bytes: e.bytes, contentType: '', copies: e.copies.map((c) => ({ ...c, key: e.key, mode: config.evidence.lockMode })) });
        const evidence = JSON.parse(body.toString('utf8')) as DecisionEvidence;
        const problems: string[] = [];
        if (evidence.workflowId !== o.workflowId) problems.push(`the record is of workflow ${evidence.workflowId}`);
        if (decisionEvidenceKey(config.evidence.prefix, evidence) !== e.key) problems.push('the record does not belong under its key');
        const signatures = auditDecisionEvidence(evidence, normalizeIdentity, keysNow);
        decided.push(...evidenceDecisions(evidence, signatures, !problems.length));
        records.push({ key: e.key, ok: !problems.length && signatures.every((s) => s.ok), ...(problems.length ? { problem: problems.join('; ') } : {}), gate: evidence.gate, facts: evidence.prompt.facts, factsSha256: evidence.factsSha256, refused: evidence.refused.length, signatures });
      } catch (err) {
        records.push({ key: e.key, ok: false, problem: (err as Error).message, signatures: [] });
      }
    }
    // A record in the bucket that the catalog does not point at is a decision someone hid from the index.
    const known = new Set(rows.map((r) => r.details.key));
    const prefix = `${config.evidence.prefix}decisions/${encodeURIComponent(o.workflowId)}/`;
    const listed = await ports.objectStore(config.evidence.store).send(new ListObjectsV2Command({ Bucket: config.evidence.bucket, Prefix: prefix }));
    for (const obj of listed.Contents ?? []) {
      if (obj.Key && !known.has(obj.Key)) records.push({ key: obj.Key, ok: false, problem: 'in the evidence bucket but not on record in the catalog', signatures: [] });
    }
    const client = await o.client();
    let history: HistoryCheck;
    try {
      history = await historyCheck(client, o.workflowId, decided);
    } finally {
      await client.connection.close();
    }
    if (!records.length && !history.problems.length) throw new UsageError(`no decision of workflow "${o.workflowId}" is in the evidence: check the id (only gates decided since signed decisions exist are there).`);
    const ok = records.every((r) => r.ok) && !history.problems.length;
    if (o.json) printJson({ workflowId: o.workflowId, ok, records, history });
    else {
      for (const r of records) {
        line(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.gate ?? '?'} gate  ${r.key}${r.problem ? `: ${r.problem}` : ''}`);
        if (r.facts) line(`      facts (SHA-256 ${r.factsSha256}): ${r.facts.map((f) => `${f.label}: ${f.value}`).join('; ')}`);
        for (const s of r.signatures) line(`      ${s.ok ? 'ok  ' : 'FAIL'}  ${s.decision} by ${s.by} at ${s.at}${s.signed ? ', signed' : ', unsigned'}: ${s.detail}`);
        if (r.refused) line(`      ${r.refused} refused decision${r.refused === 1 ? '' : 's'} on record while the gate was open`);
      }
      if (!history.checked) line(`note  history: ${history.note}`);
      else if (!history.problems.length) line(`ok    history: the ${history.accepted} decision${history.accepted === 1 ? '' : 's'} the workflow's history accepted ${history.accepted === 1 ? 'is' : 'are'} the evidence's, no more and no fewer`);
      for (const p of history.problems) line(`FAIL  history: ${p}`);
      line(ok ? `every decision of ${o.workflowId} verifies (${records.length} record${records.length === 1 ? '' : 's'})` : `AUDIT FAILED for ${o.workflowId}`);
    }
    return ok ? 0 : 1;
  } finally {
    await ports.close();
  }
}
