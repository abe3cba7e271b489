/**
 * `lifeboat audit verify <workflow-id>`: re-checks every signed decision of a workflow offline,
 * from the write-once evidence bucket: each record reads back as the bytes whose SHA-256 the
 * catalog holds, each signature verifies with the signer's key against the facts the gate
 * showed, and the bucket holds no decision record the catalog does not know. Prints who
 * approved what, when, against which facts; exit 1 if anything fails.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { decisionEvidenceKey, DECISION_EVIDENCE_EVENT_KIND } from '../activities/approvals';
import { evidenceStoreFor } from '../activities/drills';
import { createPorts } from '../activities/ports';
import type { LifeboatConfig } from '../config';
import { parseEd25519PublicKey } from '../config/public-key';
import { normalizeIdentity } from '../domain/approval';
import { auditDecisionEvidence, AuditedSignature, DecisionEvidence } from '../domain/signed-decision';
import { UsageError } from './args';
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

export async function auditVerifyCommand(config: LifeboatConfig, o: { workflowId: string; json: boolean }): Promise<number> {
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
    for (const { details: e } of rows) {
      try {
        const body = await store.read({ key: e.key, sha256: e.sha256, bytes: e.bytes, contentType: '', copies: e.copies.map((c) => ({ ...c, key: e.key, mode: config.evidence.lockMode })) });
        const evidence = JSON.parse(body.toString('utf8')) as DecisionEvidence;
        const problems: string[] = [];
        if (evidence.workflowId !== o.workflowId) problems.push(`the record is of workflow ${evidence.workflowId}`);
        if (decisionEvidenceKey(config.evidence.prefix, evidence) !== e.key) problems.push('the record does not belong under its key');
        const signatures = auditDecisionEvidence(evidence, normalizeIdentity, keysNow);
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
    if (!records.length) throw new UsageError(`no decision of workflow "${o.workflowId}" is in the evidence: check the id (only gates decided since signed decisions exist are there).`);
    const ok = records.every((r) => r.ok);
    if (o.json) printJson({ workflowId: o.workflowId, ok, records });
    else {
      for (const r of records) {
        line(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.gate ?? '?'} gate  ${r.key}${r.problem ? `: ${r.problem}` : ''}`);
        if (r.facts) line(`      facts (SHA-256 ${r.factsSha256}): ${r.facts.map((f) => `${f.label}: ${f.value}`).join('; ')}`);
        for (const s of r.signatures) line(`      ${s.ok ? 'ok  ' : 'FAIL'}  ${s.decision} by ${s.by} at ${s.at}${s.signed ? ', signed' : ', unsigned'}: ${s.detail}`);
        if (r.refused) line(`      ${r.refused} refused decision${r.refused === 1 ? '' : 's'} on record while the gate was open`);
      }
      line(ok ? `every decision of ${o.workflowId} verifies (${records.length} record${records.length === 1 ? '' : 's'})` : `AUDIT FAILED for ${o.workflowId}`);
    }
    return ok ? 0 : 1;
  } finally {
    await ports.close();
  }
}
