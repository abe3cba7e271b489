/**
 * Gates that need several people (a quorum): the pure rule (who may add an approval, when a
 * quorum can ever be met, how progress reads) and the config's refusal of a quorum nobody can
 * meet. No server: the workflow side is in approval-quorum-gate.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError, loadConfig, parseConfig } from '../src/config';
import {
  checkQuorumApprover,
  Decision,
  defaultRequiredApprovals,
  describeQuorumProgress,
  GatePolicy,
  possibleApprovers,
  quorumProblem,
  requiredApprovals,
} from '../src/domain/approval';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.yaml');

/** A config document as the user writes it: untyped, so the tests can break it any way they like. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawDoc = Record<string, any>;

const failoverPolicy = (overrides: Partial<GatePolicy> = {}): GatePolicy => ({
  gate: 'failover',
  environment: 'production',
  production: true,
  selfApproval: false,
  requestedBy: 'carol@example.com',
  allowedRoles: ['incident-commander'],
  roster: { 'alice@example.com': ['incident-commander'], 'bob@example.com': ['incident-commander'], 'erin@example.com': ['incident-commander'], 'carol@example.com': ['incident-commander'] },
  required: 2,
  ...overrides,
});

const approval = (by: string): Decision => ({ gate: 'failover', decision: 'approved', by, reason: 'region down', at: '2026-11-30T03:00:00.000Z' });

describe('approval quorum (two-person gates)', () => {
  describe('the rule', () => {
    it('defaults to two approvers for a production failover and one for everything else', () => {
      assert.equal(defaultRequiredApprovals('failover', true), 2);
      assert.equal(defaultRequiredApprovals('failover', false), 1);
      for (const gate of ['restore', 'emergencyRestore', 'cutover'] as const) assert.equal(defaultRequiredApprovals(gate, true), 1);
    });

    it('reads a policy recorded before quorums existed as a one-person gate', () => {
      const recordedBeforeQuorums: GatePolicy = failoverPolicy({ required: undefined });
      assert.equal(requiredApprovals(recordedBeforeQuorums), 1);
      assert.equal(requiredApprovals(failoverPolicy({ required: 3 })), 3);
    });

    it('counts each person once, whatever case they type their name in, and still applies the role rule', () => {
      const policy = failoverPolicy();
      assert.deepEqual(checkQuorumApprover(policy, [], 'alice@example.com'), { ok: true });
      assert.deepEqual(checkQuorumApprover(policy, [approval('alice@example.com')], 'bob@example.com'), { ok: true });
      assert.deepEqual(checkQuorumApprover(policy, [approval('alice@example.com')], ' Alice@Example.com'), {
        ok: false,
        reason: 'alice@example.com has already approved the failover gate, which needs 2 different people: 1 more must come from someone else',
      });
      const requester = checkQuorumApprover(policy, [approval('alice@example.com')], 'carol@example.com');
      assert.equal(requester.ok, false);
      assert.match(requester.ok ? '' : requester.reason, /^carol@example\.com requested this and cannot approve it in production/);
      const outsider = checkQuorumApprover(policy, [], 'dave@example.com');
      assert.match(outsider.ok ? '' : outsider.reason, /^dave@example\.com does not hold a role that approves the failover gate/);
    });

    it('knows when a quorum can never be met', () => {
      assert.equal(possibleApprovers({ people: 2, requesterExcluded: true }), 1);
      assert.equal(possibleApprovers({ people: 2, requesterExcluded: false }), 2);
      assert.equal(quorumProblem(1, { people: 2, requesterExcluded: true }), undefined);
      assert.equal(quorumProblem(2, { people: 3, requesterExcluded: true }), undefined);
      assert.equal(quorumProblem(2, { people: 2, requesterExcluded: true }), 'asks for 2 approvers, but only 1 can ever approve (2 people hold one of its roles, and the requester may be one of them and cannot approve)');
      assert.equal(quorumProblem(0, { people: 5, requesterExcluded: true }), 'must be a whole number of at least 1 (got 0): a gate needs someone to approve it');
    });

    it('reads progress as "approval 1 of 2 recorded; waiting for one more", and nothing once the gate is decided', () => {
      assert.equal(describeQuorumProgress({ decision: 'approved', approvals: [approval('alice@example.com')], required: 2 }), 'approval 1 of 2 recorded; waiting for one more');
      assert.equal(describeQuorumProgress({ decision: 'approved', approvals: [approval('alice@example.com')], required: 3 }), 'approval 1 of 3 recorded; waiting for 2 more');
      assert.equal(describeQuorumProgress({ decision: 'approved', approvals: [approval('alice@example.com'), approval('bob@example.com')], required: 2 }), undefined);
      assert.equal(describeQuorumProgress({ decision: 'rejected', approvals: [approval('alice@example.com')], required: 2 }), undefined);
      assert.equal(describeQuorumProgress({ decision: 'approved' }), undefined);
    });
  });

  describe('the config', () => {
    const stock = loadConfig(CONFIG_FILE);
    /** The stock config with `edit` applied, parsed as a file is. */
    function parseEdited(edit: (doc: RawDoc) => void) {
      const doc = YAML.parse(fs.readFileSync(CONFIG_FILE, 'utf8')) as RawDoc;
      edit(doc);
      return parseConfig(YAML.stringify(doc), 'edited.yaml');
    }
    function problems(edit: (doc: RawDoc) => void): string[] {
      try {
        parseEdited(edit);
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
    }

    it('the stock production environment asks two people explicitly, and three commanders can meet it', () => {
      assert.equal(stock.environments.production.approvers.failover, 2);
      assert.equal(stock.environments.staging.approvers.failover, undefined);
    });

    it('refuses a quorum larger than the people who may approve, or below one, in one sentence', () => {
      assert.deepEqual(
        problems((d) => (d.environments.production.approvers = { cutover: 3 })),
        ['environments.production.approvers.cutover: asks for 3 approvers, but only 2 can ever approve (3 people hold one of its roles, and the requester may be one of them and cannot approve): lower it, or give more people one of the gate\'s roles'],
      );
      assert.deepEqual(problems((d) => (d.environments.production.approvers = { restore: 0 })), ['environments.production.approvers.restore: must be at least 1 (got 0)']);
    });

    it('refuses the default two-person failover when only two people hold its role, and says how to fix it', () => {
      assert.deepEqual(
        problems((d) => {
          delete d.environments.production.approvers;
          delete d.people['erin@example.com'];
          delete (d as { publicKeys?: Record<string, string> }).publicKeys?.['erin@example.com'];
        }),
        [
          // A backup deletion by hand is a two-person gate in production too, with the same default role.
          'environments.production.gates.backupDeletion: by default in a production environment asks for 2 approvers, but only 1 can ever approve (2 people hold one of its roles, and the requester may be one of them and cannot approve): give another person one of these roles (incident-commander), or set approvers.backupDeletion to the number you accept',
          'environments.production.gates.failover: by default in a production environment asks for 2 approvers, but only 1 can ever approve (2 people hold one of its roles, and the requester may be one of them and cannot approve): give another person one of these roles (incident-commander), or set approvers.failover to the number you accept',
        ],
      );
      // Saying one is enough is a decision the config can make, on record.
      const accepted = parseEdited((d) => {
        d.environments.production.approvers = { failover: 1, backupDeletion: 1 };
        delete d.people['erin@example.com'];
        delete (d as { publicKeys?: Record<string, string> }).publicKeys?.['erin@example.com'];
      });
      assert.equal(accepted.environments.production.approvers.failover, 1);
    });

    it('lets a non-production environment with self-approval count the requester', () => {
      // Staging's gates take the default role (incident-commander: alice, bob, erin), and its requesters may approve their own requests.
      const config = parseEdited((d) => (d.environments.staging.approvers = { restore: 3 }));
      assert.equal(config.environments.staging.approvers.restore, 3);
      assert.match(problems((d) => (d.environments.staging.approvers = { restore: 4 }))[0], /^environments\.staging\.approvers\.restore: asks for 4 approvers, but only 3 can ever approve \(3 people hold one of its roles\)/);
    });
  });
});
