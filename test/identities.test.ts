/**
 * Identities are one form everywhere (trimmed, case-insensitive): the approval rule and its
 * four-eyes check, signer against decider and `people`, the config's duplicates; and in a
 * production tier the requester of a gated workflow (restore, failover, failback, backup
 * deletion) must be someone in `people`, refused in one sentence before anything starts.
 */
import assert from 'node:assert/strict';
import YAML from 'yaml';
import fs from 'node:fs';
import { signDecision } from '../src/client/decision-signing';
import { prepareFailbackStart } from '../src/client/failback-commands';
import { prepareFailoverStart } from '../src/client/failover-run-commands';
import { prepareRestore } from '../src/client/recovery-commands';
import { ConfigError, failoverEnvironments, gatePolicy, LifeboatConfig, loadConfig, parseConfig, requesterProblem } from '../src/config';
import { checkApprover, checkQuorumApprover, GatePrompt, normalizeIdentity } from '../src/domain/approval';
import { signatureProblem } from '../src/domain/signed-decision';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { testKey } from './helpers/signing';

const UNKNOWN = 'mallory@example.com is not in the config\'s people, and a request in the production environment production must come from a known person: pass your own identity with --as (or LIFEBOAT_USER), or add yourself to people';

describe('identities', () => {
  const config = loadConfig(CONFIG_FILE);
  /** The example config with one edit, parsed; its problems, or [] when it is valid. */
  const problems = (edit: (doc: { people: Record<string, string[]>; publicKeys: Record<string, string> }) => void): string[] => {
    const doc = YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8').replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'));
    edit(doc);
    try {
      parseConfig(YAML.stringify(doc), 'test.yaml', { dataDir: '/srv/lifeboat-test' });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  };

  it('the approval rule and the four-eyes check see one person whatever the case and spacing', () => {
    const policy = gatePolicy(config, 'production', 'restore', '  Alice@Example.COM ');
    assert.deepEqual(checkApprover(policy, ' CAROL@example.com'), { ok: true });
    assert.deepEqual(checkApprover(policy, 'alice@example.com'), { ok: false, reason: 'alice@example.com requested this and cannot approve it in production: someone else must' });
    const quorum = { ...policy, required: 2 };
    assert.deepEqual(checkQuorumApprover(quorum, [{ by: 'carol@example.com' }], 'Carol@Example.com '), {
      ok: false,
      reason: 'carol@example.com has already approved the restore gate, which needs 2 different people: 1 more must come from someone else',
    });
  });

  it('a signature by the decider counts whatever case either side typed; the keys of people are found the same way', () => {
    const prompt: GatePrompt = { title: 't', facts: [{ label: 'target', value: 'app' }] };
    const now = Date.now();
    const policy = gatePolicy(config, 'production', 'restore', 'alice@example.com');
    const signed = signDecision(testKey('carol@example.com'), { workflowId: 'w', runId: 'r', gate: 'restore', prompt, decision: 'approved', by: ' CAROL@Example.com', reason: 'ok', lifetimeMs: 60000, now: new Date(now) });
    assert.equal(signed.statement.by, 'carol@example.com');
    const ctx = { signing: policy.signing!, environment: 'production', production: true, workflowId: 'w', runId: 'r', gate: 'restore' as const, prompt, now, usedNonces: new Set<string>() };
    assert.equal(signatureProblem(ctx, 'approved', { by: 'Carol@example.COM  ', reason: 'ok', signed }, normalizeIdentity), undefined);
    // A publicKeys entry written in another case than people's is still that person's key.
    const doc = YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8').replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'));
    doc.publicKeys['CAROL@EXAMPLE.COM'] = doc.publicKeys['carol@example.com'];
    delete doc.publicKeys['carol@example.com'];
    const edited = parseConfig(YAML.stringify(doc), 'test.yaml', { dataDir: '/srv/lifeboat-test' });
    assert.equal(gatePolicy(edited, 'production', 'restore', 'alice@example.com').signing!.keys['carol@example.com'], policy.signing!.keys['carol@example.com']);
  });

  it('the config refuses two people, or two keys, that differ only in case (and an identity with spaces)', () => {
    assert.deepEqual(problems((d) => (d.people['Carol@Example.com'] = ['backup-owner'])), ['people["Carol@Example.com"]: is the same identity as carol@example.com (identities are compared case-insensitively): keep one entry']);
    // Spacing never gets as far: an identity with a space is not an identity.
    assert.deepEqual(problems((d) => (d.people[' dave@example.com'] = ['data-owner'])), ['people[" dave@example.com"]: is not a valid identity: it must be an email-style identity such as alice@example.com']);
    assert.deepEqual(problems((d) => (d.publicKeys['BOB@example.com'] = d.publicKeys['bob@example.com'])), ['publicKeys["BOB@example.com"]: is the same identity as bob@example.com (identities are compared case-insensitively): keep one entry']);
  });

  describe('the requester of a gated workflow in production is a known person', () => {
    it('requesterProblem: unknown in production is refused; known in any case, or anyone outside production, passes', () => {
      assert.equal(requesterProblem(config, ['production'], 'mallory@example.com'), UNKNOWN);
      assert.equal(requesterProblem(config, ['staging', 'production'], ' Mallory@Example.com'), UNKNOWN);
      assert.equal(requesterProblem(config, ['production'], ' ALICE@example.com '), undefined);
      assert.equal(requesterProblem(config, ['staging'], 'mallory@example.com'), undefined);
      assert.equal(requesterProblem(config, [], 'mallory@example.com'), undefined);
    });

    it('a gate of a run started past the CLI knows its requester is unknown (production only), so nobody can approve it', () => {
      assert.equal(gatePolicy(config, 'production', 'restore', ' Mallory@Example.com').unknownRequester, 'mallory@example.com');
      assert.equal(gatePolicy(config, 'production', 'restore', 'ALICE@example.com').unknownRequester, undefined);
      assert.equal(gatePolicy(config, 'staging', 'restore', 'mallory@example.com').unknownRequester, undefined);
    });

    it('restore, failover and failback are refused before they start; a failover drill (no gate) is not', () => {
      const restore = (as: string) => prepareRestore(config, { target: 'app', to: 'latest', reason: 'test', as, emergency: false, cutover: false, keep: false });
      assert.throws(() => restore('mallory@example.com'), { message: `${UNKNOWN}.` });
      assert.equal(restore(' Alice@Example.com').input.requestedBy, 'alice@example.com');
      assert.deepEqual(failoverEnvironments(config), ['production']);
      assert.throws(() => prepareFailoverStart(config, { drill: false, reason: 'region lost', as: 'mallory@example.com' }), { message: `${UNKNOWN}.` });
      assert.equal(prepareFailoverStart(config, { drill: true, reason: 'rehearsal', as: 'mallory@example.com' }).input.requestedBy, 'mallory@example.com');
      assert.throws(() => prepareFailbackStart(config, { failoverId: 'failover-1', reason: 'home again', as: 'mallory@example.com' }), { message: `${UNKNOWN}.` });
    });

    it('a restore in a non-production environment takes anyone', () => {
      const staging: LifeboatConfig = { ...config, targets: { ...config.targets, databases: config.targets.databases.map((d) => (d.name === 'app' ? { ...d, environment: 'staging' } : d)) } };
      assert.equal(prepareRestore(staging, { target: 'app', to: 'latest', reason: 'test', as: 'mallory@example.com', emergency: false, cutover: false, keep: false }).input.requestedBy, 'mallory@example.com');
    });

    it('the CLI says it in one sentence, exit 2, before it connects', async () => {
      const offline = { LIFEBOAT_TEMPORAL_PORT: '1', TEMPORAL_ADDRESS: undefined };
      const restore = await lifeboat(['restore', 'app', '--to', 'latest', '--reason', 'test', '--as', 'mallory@example.com'], offline);
      assert.equal(restore.code, 2, restore.stderr);
      assert.equal(restore.stderr, `lifeboat: ${UNKNOWN}.\n`);
      const failover = await lifeboat(['failover', 'start', '--reason', 'region lost', '--as', 'mallory@example.com'], offline);
      assert.equal(failover.code, 2, failover.stderr);
      assert.equal(failover.stderr, `lifeboat: ${UNKNOWN}.\n`);
    });
  });
});
