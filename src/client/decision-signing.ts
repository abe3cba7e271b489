/**
 * The signer's side of signed decisions: reads a person's Ed25519 private key (`--key`: a file,
 * `env:NAME` or `file:/path`; a PEM PKCS#8 key from openssl or an unencrypted OpenSSH key from
 * ssh-keygen) and signs the statement of one decision with node:crypto, or has the running
 * ssh-agent sign it (`--key ssh-agent[:<fingerprint or comment>]`). The gate checks it with
 * src/domain/signed-decision.ts.
 */
import crypto, { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { GateName, GatePrompt, normalizeIdentity } from '../domain/approval';
import { DECISION_PURPOSE, DecisionStatement, factsDigest, SignedDecision, signatureVerifies, statementBytes } from '../domain/signed-decision';
import { sshString } from '../config/public-key';
import { UsageError } from './args';
import { AgentKey, agentKeys, agentSignEd25519, SshAgentError } from './ssh-agent';

/** DER prefix of an Ed25519 PKCS#8 private key around its 32-byte seed. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The key's text, from a file path, `file:/path` or `env:NAME`. */
function keyText(ref: string): string {
  if (ref.startsWith('env:')) {
    const value = process.env[ref.slice(4)];
    if (!value) throw new UsageError(`--key ${ref} names an unset environment variable: set ${ref.slice(4)} to the PEM or OpenSSH private key.`);
    return value;
  }
  const file = ref.startsWith('file:') ? ref.slice(5) : ref;
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new UsageError(`--key ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): give the path of your Ed25519 private key.`);
  }
  try {
    // Judged on the open file, like secret files: a private key others can read is no longer only yours.
    const mode = fs.fstatSync(fd).mode & 0o777;
    if ((mode & 0o077) !== 0) throw new UsageError(`--key ${file} is open to other users (mode ${mode.toString(8).padStart(3, '0')}), so lifeboat refuses to sign with it: run chmod 600 ${file}.`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** An unencrypted `openssh-key-v1` private key, as ssh-keygen writes it, to its Ed25519 seed. */
function opensshSeed(text: string): Buffer {
  const body = text.replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const buf = Buffer.from(body, 'base64');
  const magic = 'openssh-key-v1\0';
  if (buf.subarray(0, magic.length).toString('latin1') !== magic) throw new Error('not an openssh-key-v1 key');
  let at = magic.length;
  const cipher = sshString(buf, at);
  at = cipher.next;
  if (cipher.value.toString() !== 'none') {
    throw new UsageError('--key is a passphrase-protected OpenSSH key, which lifeboat cannot open: export an unprotected copy into your secret store (ssh-keygen -p -N "" -f <copy>) and pass that.');
  }
  at = sshString(buf, at).next; // kdf name
  at = sshString(buf, at).next; // kdf options
  const count = buf.readUInt32BE(at);
  at += 4;
  if (count !== 1) throw new Error(`holds ${count} keys`);
  at = sshString(buf, at).next; // public key blob
  const priv = sshString(buf, at).value;
  let p = 8; // two check integers
  const type = sshString(priv, p);
  p = type.next;
  if (type.value.toString() !== 'ssh-ed25519') throw new UsageError(`--key is an OpenSSH ${type.value.toString()} key: decisions are signed with Ed25519 (ssh-keygen -t ed25519).`);
  p = sshString(priv, p).next; // public key
  const secret = sshString(priv, p).value; // seed (32) + public key (32)
  return secret.subarray(0, 32);
}

export function loadSigningKey(ref: string): KeyObject {
  const text = keyText(ref);
  let key: KeyObject;
  try {
    key = text.includes('BEGIN OPENSSH PRIVATE KEY')
      ? crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, opensshSeed(text)]), format: 'der', type: 'pkcs8' })
      : crypto.createPrivateKey(text);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--key ${ref} is not a private key lifeboat can read (${(err as Error).message}): give an Ed25519 key in PEM (openssl genpkey -algorithm ed25519) or OpenSSH form (ssh-keygen -t ed25519).`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UsageError(`--key ${ref} is a ${key.asymmetricKeyType} key: decisions are signed with Ed25519 keys.`);
  return key;
}

/** The raw 32-byte public key (hex) of a private key. */
export function publicKeyHex(key: KeyObject): string {
  return crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
}

export interface DecisionToSign {
  workflowId: string;
  runId: string;
  gate: GateName;
  prompt: GatePrompt;
  decision: 'approved' | 'rejected';
  by: string;
  reason: string;
  /** How long the signature stays good, in ms. */
  lifetimeMs: number;
  now?: Date;
}

function statementOf(d: DecisionToSign): DecisionStatement {
  const now = d.now ?? new Date();
  return {
    purpose: DECISION_PURPOSE,
    workflowId: d.workflowId,
    runId: d.runId,
    gate: d.gate,
    decision: d.decision,
    by: normalizeIdentity(d.by),
    reason: d.reason,
    factsSha256: factsDigest(d.gate, d.prompt),
    nonce: crypto.randomBytes(16).toString('hex'),
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + d.lifetimeMs).toISOString(),
  };
}

export function signDecision(key: KeyObject, d: DecisionToSign): SignedDecision {
  const statement = statementOf(d);
  const signature = crypto.sign(null, Buffer.from(statementBytes(statement)), key).toString('hex');
  return { statement, signature, publicKey: publicKeyHex(key) };
}

/** Whatever signs a decision: a private key lifeboat read, or a key held by the ssh-agent. */
export interface DecisionSigner {
  /** The raw 32-byte public key, hex. */
  publicKeyHex: string;
  sign(d: DecisionToSign): Promise<SignedDecision>;
}

export function keySigner(key: KeyObject): DecisionSigner {
  return { publicKeyHex: publicKeyHex(key), sign: async (d) => signDecision(key, d) };
}

/** `--key ssh-agent` or `--key ssh-agent:<fingerprint or comment>`: the agent holds the key (a file named ssh-agent is `./ssh-agent`). */
export const SSH_AGENT_KEY = 'ssh-agent';

export function isSshAgentRef(ref: string): boolean {
  return ref === SSH_AGENT_KEY || ref.startsWith(`${SSH_AGENT_KEY}:`);
}

/**
 * The running ssh-agent's Ed25519 key for `by`: the one `selector` names (an `SHA256:` fingerprint,
 * as `ssh-add -l` prints it, or the key's comment), else the one whose public key is `by`'s in
 * the config. Refused in one sentence when no agent runs or none of its keys fits, so nothing is
 * sent to the workflow.
 */
export async function sshAgentSigner(o: { selector?: string; by: string; configuredKeyHex?: string; socketPath?: string }): Promise<DecisionSigner> {
  const socketPath = o.socketPath ?? process.env.SSH_AUTH_SOCK;
  if (!socketPath) throw new UsageError('--key ssh-agent needs a running ssh-agent, but SSH_AUTH_SOCK is not set: start one (eval "$(ssh-agent)") and add your key (ssh-add <key file>).');
  let keys: AgentKey[];
  try {
    keys = await agentKeys(socketPath);
  } catch (err) {
    if (err instanceof SshAgentError) throw new UsageError(`--key ssh-agent cannot reach the agent: ${err.message}; start one (eval "$(ssh-agent)") and add your key (ssh-add <key file>).`);
    throw err;
  }
  const ed25519 = keys.filter((k) => k.ed25519Hex);
  let chosen: AgentKey | undefined;
  if (o.selector) {
    const wanted = o.selector.startsWith('SHA256:') ? o.selector : undefined;
    const named = keys.filter((k) => (wanted ? k.fingerprint === wanted : k.comment === o.selector));
    if (!named.length) throw new UsageError(`the ssh-agent holds no key ${wanted ? 'with fingerprint' : 'with the comment'} ${o.selector} (it holds ${keys.length} key${keys.length === 1 ? '' : 's'}): check \`ssh-add -l\` and name one of them.`);
    chosen = named.find((k) => k.ed25519Hex);
    if (!chosen) throw new UsageError(`the ssh-agent's key ${o.selector} is an ${named[0].type} key: decisions are signed with Ed25519 keys (ssh-keygen -t ed25519).`);
    if (o.configuredKeyHex && chosen.ed25519Hex !== o.configuredKeyHex.toLowerCase()) throw new UsageError(`the ssh-agent's key ${o.selector} is not ${o.by}'s key in the config (publicKeys), so the gate would refuse it: name ${o.by}'s own key.`);
  } else {
    if (!o.configuredKeyHex) throw new UsageError(`${o.by} has no public key in the config (publicKeys), so lifeboat cannot tell which ssh-agent key is theirs: add it there, or name the key with --key ssh-agent:<fingerprint>.`);
    chosen = ed25519.find((k) => k.ed25519Hex === o.configuredKeyHex!.toLowerCase());
    if (!chosen) throw new UsageError(`the ssh-agent holds none of ${o.by}'s key (the Ed25519 key in publicKeys; it holds ${keys.length} key${keys.length === 1 ? '' : 's'}): add it with ssh-add <key file>.`);
  }
  const key = chosen;
  return {
    publicKeyHex: key.ed25519Hex!,
    async sign(d) {
      const statement = statementOf(d);
      let raw: Buffer;
      try {
        raw = await agentSignEd25519(socketPath, key, statementBytes(statement));
      } catch (err) {
        if (err instanceof SshAgentError) throw new UsageError(`--key ssh-agent: ${err.message}.`);
        throw err;
      }
      const signed = { statement, signature: raw.toString('hex'), publicKey: key.ed25519Hex! };
      // An agent that signs with something else would only be found out at the gate: say it here.
      if (!signatureVerifies(signed, key.ed25519Hex!)) throw new UsageError(`the ssh-agent's signature with ${key.fingerprint} does not verify with that key: check the agent (ssh-add -l).`);
      return signed;
    },
  };
}
