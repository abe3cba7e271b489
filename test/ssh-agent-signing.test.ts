/**
 * `lifeboat approve|reject --key ssh-agent`: decisions signed by a real OpenSSH agent (Debian's
 * ssh-agent and ssh-add, on a socket of the test's own) through lifeboat's own agent-protocol
 * client, checked by the gate's pure-JS verifier against the key the config has for the person;
 * and every refusal (no agent, no fitting key, a key of someone else, not Ed25519), in one
 * sentence with exit 2 before lifeboat connects to anything.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DecisionToSign, loadSigningKey, sshAgentSigner } from '../src/client/decision-signing';
import { agentKeys } from '../src/client/ssh-agent';
import { gatePolicy, loadConfig } from '../src/config';
import { GatePrompt, normalizeIdentity } from '../src/domain/approval';
import { signatureProblem, statementBytes } from '../src/domain/signed-decision';
import { CONFIG_FILE, lifeboat } from './helpers/cli';
import { privateTestKey, TEST_KEYS_DIR } from './helpers/signing';
import { sshFingerprintOf, sshKeygen, startSshAgent, TestSshAgent } from './helpers/ssh-agent';

describe('signing through ssh-agent (a real OpenSSH agent)', () => {
  const config = loadConfig(CONFIG_FILE);
  // Bob asks for the restore; alice (backup-owner) approves it with the key her agent holds.
  const policy = gatePolicy(config, 'production', 'restore', 'bob@example.com');
  const alicesKey = policy.signing!.keys['alice@example.com'];
  const aliceFingerprint = sshFingerprintOf(path.join(TEST_KEYS_DIR, 'alice.pub'));
  const prompt: GatePrompt = { title: 'restore app to latest', facts: [{ label: 'target', value: 'app' }, { label: 'destination', value: 'restore-app-7' }] };
  const decision: DecisionToSign = { workflowId: 'wf-agent', runId: 'run-agent', gate: 'restore', prompt, decision: 'approved', by: 'alice@example.com', reason: 'backup owner agrees', lifetimeMs: 600000 };
  const gateCheck = (signed: Awaited<ReturnType<Awaited<ReturnType<typeof sshAgentSigner>>['sign']>>) =>
    signatureProblem(
      { signing: policy.signing!, environment: 'production', production: true, workflowId: 'wf-agent', runId: 'run-agent', gate: 'restore', prompt, now: Date.now(), usedNonces: new Set() },
      'approved',
      { by: 'alice@example.com', reason: 'backup owner agrees', signed },
      normalizeIdentity,
    );
  const other = sshKeygen('ed25519', 'someone-else@example.com');
  const rsa = sshKeygen('rsa', 'rsa-key@example.com');
  let agent: TestSshAgent;

  before(async () => {
    agent = await startSshAgent();
  });
  after(async () => {
    await agent?.stop();
    other.remove();
    rsa.remove();
  });
  beforeEach(() => agent.removeAll());

  it('signs with the agent\'s key that publicKeys gives the person: the gate accepts it, and it is the signature of the key file itself', async () => {
    agent.add(other.file);
    agent.add(privateTestKey('alice.key'));
    const listed = await agentKeys(agent.socket);
    assert.deepEqual(listed.map((k) => k.fingerprint).sort(), [aliceFingerprint, sshFingerprintOf(`${other.file}.pub`)].sort());
    const signer = await sshAgentSigner({ by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: agent.socket });
    assert.equal(signer.publicKeyHex, alicesKey);
    const signed = await signer.sign(decision);
    assert.equal(gateCheck(signed), undefined);
    // Ed25519 is deterministic: the agent's raw signature is node:crypto's with the same private key.
    assert.equal(signed.signature, crypto.sign(null, Buffer.from(statementBytes(signed.statement)), loadSigningKey(privateTestKey('alice.key'))).toString('hex'));
    // A signature over anything else does not pass for it.
    assert.match(gateCheck({ ...signed, statement: { ...signed.statement, reason: 'other' } })!, /does not verify with alice@example\.com's public key/);
  });

  it('takes the key named by its SHA256 fingerprint or its comment', async () => {
    agent.add(other.file);
    agent.add(privateTestKey('alice.key'));
    for (const selector of [aliceFingerprint, 'alice@example.com (lifeboat TEST key)']) {
      const signer = await sshAgentSigner({ selector, by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: agent.socket });
      assert.equal(gateCheck(await signer.sign(decision)), undefined, selector);
    }
  });

  it('refuses, in one sentence, no agent, an agent without the person\'s key, a key named that is not theirs or not Ed25519', async () => {
    const refusal = (o: Parameters<typeof sshAgentSigner>[0]) => sshAgentSigner(o).then(() => 'signed', (err: Error) => err.message);
    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try {
      assert.equal(await refusal({ by: 'alice@example.com', configuredKeyHex: alicesKey }), '--key ssh-agent needs a running ssh-agent, but SSH_AUTH_SOCK is not set: start one (eval "$(ssh-agent)") and add your key (ssh-add <key file>).');
    } finally {
      if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved;
    }
    const gone = path.join(os.tmpdir(), `lifeboat-no-agent-${process.pid}.sock`);
    assert.equal(await refusal({ by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: gone }), `--key ssh-agent cannot reach the agent: no ssh-agent answers at ${gone} (ENOENT); start one (eval "$(ssh-agent)") and add your key (ssh-add <key file>).`);
    agent.add(other.file);
    agent.add(rsa.file);
    assert.equal(await refusal({ by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: agent.socket }), 'the ssh-agent holds none of alice@example.com\'s key (the Ed25519 key in publicKeys; it holds 2 keys): add it with ssh-add <key file>.');
    assert.equal(await refusal({ selector: 'someone-else@example.com', by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: agent.socket }), 'the ssh-agent\'s key someone-else@example.com is not alice@example.com\'s key in the config (publicKeys), so the gate would refuse it: name alice@example.com\'s own key.');
    assert.equal(await refusal({ selector: 'rsa-key@example.com', by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: agent.socket }), 'the ssh-agent\'s key rsa-key@example.com is an ssh-rsa key: decisions are signed with Ed25519 keys (ssh-keygen -t ed25519).');
    assert.equal(await refusal({ selector: 'SHA256:nothing', by: 'alice@example.com', configuredKeyHex: alicesKey, socketPath: agent.socket }), 'the ssh-agent holds no key with fingerprint SHA256:nothing (it holds 2 keys): check `ssh-add -l` and name one of them.');
    assert.equal(await refusal({ by: 'mallory@example.com', socketPath: agent.socket }), 'mallory@example.com has no public key in the config (publicKeys), so lifeboat cannot tell which ssh-agent key is theirs: add it there, or name the key with --key ssh-agent:<fingerprint>.');
  });

  describe('the CLI refuses before it connects (exit 2)', () => {
    // Nothing listens here: a command that got as far as connecting would fail otherwise, not with these sentences.
    const offline = { LIFEBOAT_TEMPORAL_PORT: '1', TEMPORAL_ADDRESS: undefined };

    it('no agent, an agent without the key, an empty key name', async () => {
      const noAgent = await lifeboat(['approve', 'restore-app-x', '--reason', 'go', '--as', 'alice@example.com', '--key', 'ssh-agent'], { ...offline, SSH_AUTH_SOCK: undefined });
      assert.equal(noAgent.code, 2, noAgent.stderr);
      assert.equal(noAgent.stderr, 'lifeboat: --key ssh-agent needs a running ssh-agent, but SSH_AUTH_SOCK is not set: start one (eval "$(ssh-agent)") and add your key (ssh-add <key file>).\n');
      agent.add(other.file);
      const noKey = await lifeboat(['reject', 'restore-app-x', '--reason', 'no', '--as', 'Alice@Example.com ', '--key', 'ssh-agent'], { ...offline, SSH_AUTH_SOCK: agent.socket });
      assert.equal(noKey.code, 2, noKey.stderr);
      assert.equal(noKey.stderr, 'lifeboat: the ssh-agent holds none of alice@example.com\'s key (the Ed25519 key in publicKeys; it holds 1 key): add it with ssh-add <key file>.\n');
      const empty = await lifeboat(['approve', 'restore-app-x', '--reason', 'go', '--as', 'alice@example.com', '--key', 'ssh-agent:'], offline);
      assert.equal(empty.code, 2, empty.stderr);
      assert.match(empty.stderr, /^lifeboat: --key ssh-agent: names no key: give its fingerprint/);
    });

    it('a private key file others can read, naming the file and chmod 600', async () => {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-open-key-')), 'alice.key');
      fs.copyFileSync(path.join(TEST_KEYS_DIR, 'alice.key'), file);
      for (const mode of [0o644, 0o640]) {
        fs.chmodSync(file, mode);
        const open = await lifeboat(['approve', 'restore-app-x', '--reason', 'go', '--as', 'alice@example.com', '--key', file], offline);
        assert.equal(open.code, 2, open.stderr);
        assert.equal(open.stderr, `lifeboat: --key ${file} is open to other users (mode ${mode.toString(8)}), so lifeboat refuses to sign with it: run chmod 600 ${file}.\n`);
      }
      fs.chmodSync(file, 0o600);
      assert.equal(loadSigningKey(file).asymmetricKeyType, 'ed25519');
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    });
  });
});
