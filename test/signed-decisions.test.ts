/**
 * Signed decisions without a server: the signer (node:crypto, PEM and OpenSSH keys) against the
 * gate's pure-JS check, and every refusal the gate makes: unsigned, invalid, wrong key, another
 * person, other facts, another run, expired, replayed. Plus the config's rules for keys,
 * identities that differ only in case, and unsigned decisions in production.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { loadSigningKey, signDecision, DecisionToSign } from '../src/client/decision-signing';
import { ConfigError, gatePolicy, parseConfig } from '../src/config';
import { parseEd25519PublicKey } from '../src/config/public-key';
import { GatePrompt, normalizeIdentity } from '../src/domain/approval';
import { auditDecisionEvidence, canonicalJson, crossCheckHistory, DecisionEvidence, EvidenceDecision, evidenceDecisions, factsDigest, HistoryDecision, SignatureContext, signatureProblem } from '../src/domain/signed-decision';
import { privateTestKey } from './helpers/signing';

const ROOT = path.resolve(__dirname, '../..');
const EXAMPLE = path.join(ROOT, 'lifeboat.config.yaml');
const key = (file: string) => loadSigningKey(privateTestKey(file));

describe('signed decisions', () => {
  const config = parseConfig(fs.readFileSync(EXAMPLE, 'utf8').replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'), 'lifeboat.config.yaml', { dataDir: '/srv/lifeboat-test' });
  const policy = gatePolicy(config, 'production', 'restore', 'alice@example.com');
  const prompt: GatePrompt = { title: 'restore app to 2026-11-30T10:00:00Z', facts: [{ label: 'target', value: 'app' }, { label: 'destination', value: 'restore-app-1' }] };
  const now = Date.parse('2026-11-30T12:00:00Z');
  const ctx = (over: Partial<SignatureContext> = {}): SignatureContext => ({ signing: policy.signing!, environment: 'production', production: true, workflowId: 'wf-1', runId: 'run-1', gate: 'restore', prompt, now, usedNonces: new Set(), ...over });
  const decision = (by: string, over: Partial<DecisionToSign> = {}): DecisionToSign => ({ workflowId: 'wf-1', runId: 'run-1', gate: 'restore', prompt, decision: 'approved', by, reason: 'data owner agrees', lifetimeMs: 600000, now: new Date(now - 1000), ...over });
  const check = (signed: ReturnType<typeof signDecision> | undefined, by = 'bob@example.com', over: Partial<SignatureContext> = {}, reason = 'data owner agrees') =>
    signatureProblem(ctx(over), 'approved', { by, reason, signed }, normalizeIdentity);

  it('reads the public keys of the example config (OpenSSH line and PEM) into the policy of the people who may decide', () => {
    assert.deepEqual(Object.keys(policy.signing!.keys).sort(), ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dave@example.com']);
    assert.equal(policy.signing!.unsignedDecisions, 'refuse');
    assert.equal(gatePolicy(config, 'staging', 'restore', 'alice@example.com').signing!.unsignedDecisions, 'allow');
    for (const k of Object.values(policy.signing!.keys)) assert.match(k, /^[0-9a-f]{64}$/);
  });

  it('accepts a decision signed with the decider\'s key, PEM or OpenSSH', () => {
    assert.equal(check(signDecision(key('bob.pem'), decision('bob@example.com'))), undefined);
    assert.equal(check(signDecision(key('alice.key'), decision('alice@example.com')), 'Alice@Example.com '), undefined);
  });

  it('refuses an unsigned decision in production, and where the environment does not allow one', () => {
    assert.equal(check(undefined), 'unsigned decisions are refused in production: sign it with your Ed25519 key (lifeboat approve --key <file>)');
    assert.equal(check(undefined, 'bob@example.com', { environment: 'staging', production: false, signing: { ...policy.signing!, unsignedDecisions: 'allow' } }), undefined);
    assert.match(check(undefined, 'bob@example.com', { environment: 'test', production: false })!, /^unsigned decisions are refused in test/);
    // Even a policy saying allow does not open production.
    assert.match(check(undefined, 'bob@example.com', { signing: { ...policy.signing!, unsignedDecisions: 'allow' } })!, /^unsigned decisions are refused in production/);
  });

  it('refuses a key that is not the person\'s, with or without the key named', () => {
    const mallorys = signDecision(key('mallory.pem'), decision('bob@example.com'));
    assert.equal(check(mallorys), 'the decision is signed with a key that is not bob@example.com\'s (publicKeys in the config): sign with your own key');
    const unnamed = { ...mallorys, publicKey: undefined };
    assert.equal(check(unnamed), 'the signature does not verify with bob@example.com\'s public key: it was not made by bob@example.com\'s key over this decision');
    // Carol's own, valid signature claimed as Bob's decision.
    assert.match(check(signDecision(key('carol.pem'), decision('carol@example.com')), 'bob@example.com')!, /not bob@example\.com's/);
  });

  it('refuses a damaged signature and a statement changed after signing', () => {
    const signed = signDecision(key('bob.pem'), decision('bob@example.com'));
    assert.match(check({ ...signed, signature: signed.signature.replace(/^./, (c) => (c === '0' ? '1' : '0')) })!, /does not verify/);
    assert.match(check({ ...signed, statement: { ...signed.statement, reason: 'something else' } }, 'bob@example.com', {}, 'something else')!, /does not verify/);
    assert.match(check({ ...signed, signature: 'not hex' })!, /does not verify/);
  });

  it('refuses a genuine signature of another decision: facts, gate, run, workflow, verdict, reason', () => {
    const bob = (over: Partial<DecisionToSign>) => signDecision(key('bob.pem'), decision('bob@example.com', over));
    assert.equal(check(bob({ prompt: { ...prompt, facts: [{ label: 'target', value: 'app' }, { label: 'destination', value: 'elsewhere' }] } })), 'the signature covers other facts than the restore gate shows now: check `lifeboat status` and sign again');
    assert.equal(check(bob({ gate: 'cutover' })), 'the signature is for the cutover gate, not the pending restore gate');
    assert.equal(check(bob({ runId: 'run-0' })), 'the signature is for workflow wf-1 run run-0, not this one (wf-1 run run-1)');
    assert.match(check(bob({ workflowId: 'wf-2' }))!, /^the signature is for workflow wf-2/);
    assert.equal(check(bob({ decision: 'rejected' })), 'the signature says rejected, not approved');
    assert.equal(check(bob({ reason: 'other' })), 'the signed reason differs from the reason sent: sign the reason you send');
  });

  it('refuses an expired signature, one from the future, and one good for too long', () => {
    assert.equal(check(signDecision(key('bob.pem'), decision('bob@example.com', { now: new Date(now - 700000) }))), `the signature expired at ${new Date(now - 100000).toISOString()}: sign again`);
    assert.match(check(signDecision(key('bob.pem'), decision('bob@example.com', { now: new Date(now + 3600000) })))!, /in the future/);
    assert.match(check(signDecision(key('bob.pem'), decision('bob@example.com', { lifetimeMs: 25 * 3600000 })))!, /good for more than 24 h/);
  });

  it('refuses a replayed signature', () => {
    const signed = signDecision(key('bob.pem'), decision('bob@example.com'));
    assert.equal(check(signed, 'bob@example.com', { usedNonces: new Set([signed.statement.nonce]) }), 'this signature was already used (a replay): sign the decision again');
  });

  it('refuses someone without a public key on record', () => {
    assert.equal(check(signDecision(key('mallory.pem'), decision('mallory@example.com')), 'mallory@example.com'), 'mallory@example.com has no public key in the config (publicKeys), so their signature cannot be checked: add it there');
  });

  it('digests the facts canonically: key order does not matter, every value does', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 'x', c: null }] }), '{"a":[{"c":null,"d":"x"}],"b":1}');
    assert.equal(factsDigest('restore', prompt), factsDigest('restore', { facts: prompt.facts.map((f) => ({ value: f.value, label: f.label })), title: prompt.title } as GatePrompt));
    assert.notEqual(factsDigest('restore', prompt), factsDigest('cutover', prompt));
  });

  it('audits evidence offline: a good record passes, a tampered one fails', () => {
    const signed = signDecision(key('bob.pem'), decision('bob@example.com'));
    const evidence: DecisionEvidence = {
      kind: 'lifeboat-decision-evidence/v1', workflowId: 'wf-1', runId: 'run-1', sequence: 0, environment: 'production', production: true, requestedBy: 'alice@example.com',
      gate: 'restore', prompt, factsSha256: factsDigest('restore', prompt), unsignedDecisions: 'refuse', publicKeys: { 'bob@example.com': policy.signing!.keys['bob@example.com'] },
      decision: { gate: 'restore', decision: 'approved', by: 'bob@example.com', reason: 'data owner agrees', at: new Date(now).toISOString(), signed }, refused: [],
    };
    assert.deepEqual(auditDecisionEvidence(evidence, normalizeIdentity).map((a) => a.ok), [true]);
    const tampered = JSON.parse(JSON.stringify(evidence)) as DecisionEvidence;
    tampered.prompt.facts[1].value = 'elsewhere';
    assert.match(auditDecisionEvidence(tampered, normalizeIdentity)[0].detail, /recorded facts do not give the recorded digest/);
    const unsigned = { ...evidence, decision: { ...evidence.decision, signed: undefined } };
    assert.match(auditDecisionEvidence(unsigned, normalizeIdentity)[0].detail, /^unsigned, in an environment that refuses unsigned decisions/);
  });

  it('holds evidence against history both ways: an accepted decision without verifying evidence, and evidence the history does not have', () => {
    const h = (over: Partial<HistoryDecision> = {}): HistoryDecision => ({ runId: 'run-1', via: 'update', gate: 'restore', decision: 'approved', by: 'carol@example.com', reason: 'ok', at: '2026-11-30T12:00:00.000Z', nonce: 'n1', ...over });
    const e = (over: Partial<EvidenceDecision> = {}): EvidenceDecision => ({ runId: 'run-1', gate: 'restore', decision: 'approved', by: 'carol@example.com', reason: 'ok', at: '2026-11-30T12:00:00.000Z', nonce: 'n1', verifies: true, ...over });
    assert.deepEqual(crossCheckHistory([h()], [e()], normalizeIdentity), []);
    // The same person in another case on either side; a quorum's second approval.
    assert.deepEqual(crossCheckHistory([h({ by: 'Carol@Example.com' }), h({ by: 'dave@example.com', nonce: 'n2' })], [e(), e({ by: 'DAVE@example.com', nonce: 'n2' })], normalizeIdentity), []);
    assert.deepEqual(crossCheckHistory([h()], [], normalizeIdentity), ['the history accepted the approval of the restore gate by carol@example.com at 2026-11-30T12:00:00.000Z (run run-1), but no evidence record holds it']);
    assert.deepEqual(crossCheckHistory([h()], [e({ verifies: false })], normalizeIdentity), ['the history accepted the approval of the restore gate by carol@example.com at 2026-11-30T12:00:00.000Z (run run-1), but its evidence does not verify']);
    assert.deepEqual(crossCheckHistory([], [e({ decision: 'rejected' })], normalizeIdentity), ['the evidence claims the rejection of the restore gate by carol@example.com at 2026-11-30T12:00:00.000Z (run run-1), which the workflow\'s history does not have']);
    // Another signature (nonce), another run: not the same decision.
    assert.equal(crossCheckHistory([h({ nonce: 'n9' })], [e()], normalizeIdentity).length, 2);
    assert.equal(crossCheckHistory([h({ runId: 'run-2' })], [e()], normalizeIdentity).length, 2);
    // A signal: matched to evidence when the gate took it (here unsigned, where allowed); one the gate refused has none, and that is no mismatch.
    const signal = h({ via: 'signal', gate: undefined, at: undefined, nonce: undefined, reason: 'from the UI' });
    assert.deepEqual(crossCheckHistory([signal], [e({ nonce: undefined, reason: 'from the UI' })], normalizeIdentity), []);
    assert.deepEqual(crossCheckHistory([signal], [], normalizeIdentity), []);
  });

  it('lists every person\'s decision of a record with its audit: a quorum\'s approvals and the rejection that ended it, never an expiry', () => {
    const approval = signDecision(key('bob.pem'), decision('bob@example.com'));
    const rejection = signDecision(key('carol.pem'), decision('carol@example.com', { decision: 'rejected' }));
    const at = new Date(now).toISOString();
    const evidence: DecisionEvidence = {
      kind: 'lifeboat-decision-evidence/v1', workflowId: 'wf-1', runId: 'run-1', sequence: 0, environment: 'production', production: true, requestedBy: 'alice@example.com',
      gate: 'restore', prompt, factsSha256: factsDigest('restore', prompt), unsignedDecisions: 'refuse', publicKeys: { 'bob@example.com': policy.signing!.keys['bob@example.com'] },
      decision: {
        gate: 'restore', decision: 'rejected', by: 'carol@example.com', reason: 'data owner agrees', at, signed: rejection, required: 2,
        approvals: [{ gate: 'restore', decision: 'approved', by: 'bob@example.com', reason: 'data owner agrees', at, signed: approval }],
      },
      refused: [],
    };
    const audited = auditDecisionEvidence(evidence, normalizeIdentity);
    // Carol's key is not on this record: her rejection does not verify, bob's approval does.
    assert.deepEqual(evidenceDecisions(evidence, audited, true).map((d) => [d.decision, d.by, d.nonce, d.verifies]), [
      ['approved', 'bob@example.com', approval.statement.nonce, true],
      ['rejected', 'carol@example.com', rejection.statement.nonce, false],
    ]);
    // A record found where it does not belong verifies nothing.
    assert.deepEqual(evidenceDecisions(evidence, audited, false).map((d) => d.verifies), [false, false]);
    const expired: DecisionEvidence = { ...evidence, decision: { gate: 'restore', decision: 'expired', by: 'lifeboat', reason: 'nobody decided', at } };
    assert.deepEqual(evidenceDecisions(expired, auditDecisionEvidence(expired, normalizeIdentity), true), []);
  });

  describe('config', () => {
    const text = fs.readFileSync(EXAMPLE, 'utf8').replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
    const problems = (edit: (doc: { environments: Record<string, Record<string, unknown>>; people: Record<string, string[]>; publicKeys: Record<string, string> }) => void): string[] => {
      const doc = YAML.parse(text);
      edit(doc);
      try {
        parseConfig(YAML.stringify(doc), 'test.yaml', { dataDir: '/srv/lifeboat-test' });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
      return [];
    };

    it('keeps configs without keys valid (people stay role lists)', () => {
      assert.deepEqual(problems((d) => delete (d as Partial<typeof d>).publicKeys), []);
    });
    it('refuses unsignedDecisions: allow in a production environment', () => {
      assert.deepEqual(problems((d) => (d.environments.production.unsignedDecisions = 'allow')), ['environments.production.unsignedDecisions: must be refuse in a production environment: every production decision is signed with the decider\'s key']);
    });
    it('refuses two people who differ only in case', () => {
      assert.deepEqual(problems((d) => (d.people['Bob@Example.com'] = ['data-owner'])), ['people["Bob@Example.com"]: is the same identity as bob@example.com (identities are compared case-insensitively): keep one entry']);
    });
    it('refuses a key that is not Ed25519, and a key of someone not in people', () => {
      const rsa = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== someone';
      assert.deepEqual(problems((d) => (d.publicKeys['carol@example.com'] = rsa)), ['publicKeys["carol@example.com"]: must be an Ed25519 public key: the "ssh-ed25519 AAAA…" line of a .pub file, or a PEM "BEGIN PUBLIC KEY" block']);
      assert.deepEqual(problems((d) => (d.publicKeys['zed@example.com'] = d.publicKeys['carol@example.com'])), ['publicKeys["zed@example.com"]: is not in people: add the person there, or remove the key']);
      assert.equal(parseEd25519PublicKey('ssh-ed25519 AAAA').ok, false);
    });
  });
});
