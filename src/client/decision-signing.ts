/**
 * The signer's side of signed decisions: reads a person's Ed25519 private key (`--key`: a file,
 * `env:NAME` or `file:/path`; a PEM PKCS#8 key from openssl or an unencrypted OpenSSH key from
 * ssh-keygen) and signs the statement of one decision with node:crypto. The gate checks it with
 * src/domain/signed-decision.ts.
 */
import crypto, { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { GateName, GatePrompt, normalizeIdentity } from '../domain/approval';
import { DECISION_PURPOSE, DecisionStatement, factsDigest, SignedDecision, statementBytes } from '../domain/signed-decision';
import { sshString } from '../config/public-key';
import { UsageError } from './args';

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
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--key ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): give the path of your Ed25519 private key.`);
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

export function signDecision(key: KeyObject, d: DecisionToSign): SignedDecision {
  const now = d.now ?? new Date();
  const statement: DecisionStatement = {
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
  const signature = crypto.sign(null, Buffer.from(statementBytes(statement)), key).toString('hex');
  return { statement, signature, publicKey: publicKeyHex(key) };
}
