/**
 * A small ssh-agent client (the agent protocol, draft-miller-ssh-agent, over the Unix socket
 * SSH_AUTH_SOCK names): lists the agent's keys and asks it to sign, so a person's Ed25519 key
 * can sign a decision without its private half ever leaving the agent. An ssh-ed25519 agent
 * signature is the raw Ed25519 signature of the data, the one the gate checks.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { sshString } from '../config/public-key';

const SSH_AGENT_FAILURE = 5;
const SSH_AGENTC_REQUEST_IDENTITIES = 11;
const SSH_AGENT_IDENTITIES_ANSWER = 12;
const SSH_AGENTC_SIGN_REQUEST = 13;
const SSH_AGENT_SIGN_RESPONSE = 14;
/** An agent that does not answer in this long is stuck (or not an agent). */
const AGENT_TIMEOUT_MS = 10_000;

export class SshAgentError extends Error {}

export interface AgentKey {
  /** The key's wire blob, as the agent names it in a sign request. */
  blob: Buffer;
  comment: string;
  /** `SHA256:<base64>`, as `ssh-add -l` and `ssh-keygen -lf` print it. */
  fingerprint: string;
  type: string;
  /** The raw 32-byte public key in hex, for Ed25519 keys. */
  ed25519Hex?: string;
}

function sshStringBytes(value: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(value.length);
  return Buffer.concat([length, value]);
}

export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** One request, one answer, on a fresh connection to the agent. */
function exchange(socketPath: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let received = Buffer.alloc(0);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(AGENT_TIMEOUT_MS, () => fail(new SshAgentError(`the ssh-agent at ${socketPath} did not answer in ${AGENT_TIMEOUT_MS / 1000} s`)));
    socket.on('error', (err: NodeJS.ErrnoException) => fail(new SshAgentError(`no ssh-agent answers at ${socketPath} (${err.code ?? err.message})`)));
    socket.on('connect', () => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(request.length);
      socket.write(Buffer.concat([length, request]));
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      const size = received.readUInt32BE(0);
      if (received.length < 4 + size) return;
      socket.end();
      resolve(received.subarray(4, 4 + size));
    });
    socket.on('end', () => fail(new SshAgentError(`the ssh-agent at ${socketPath} closed the connection without an answer`)));
  });
}

export async function agentKeys(socketPath: string): Promise<AgentKey[]> {
  const answer = await exchange(socketPath, Buffer.from([SSH_AGENTC_REQUEST_IDENTITIES]));
  if (answer[0] !== SSH_AGENT_IDENTITIES_ANSWER) throw new SshAgentError(`the ssh-agent at ${socketPath} refused to list its keys (message ${answer[0]})`);
  const count = answer.readUInt32BE(1);
  const keys: AgentKey[] = [];
  let at = 5;
  for (let i = 0; i < count; i++) {
    const blob = sshString(answer, at);
    const comment = sshString(answer, blob.next);
    at = comment.next;
    const type = sshString(blob.value, 0).value.toString();
    let ed25519Hex: string | undefined;
    if (type === 'ssh-ed25519') {
      const key = sshString(blob.value, sshString(blob.value, 0).next).value;
      if (key.length === 32) ed25519Hex = key.toString('hex');
    }
    keys.push({ blob: Buffer.from(blob.value), comment: comment.value.toString(), fingerprint: sshFingerprint(blob.value), type, ed25519Hex });
  }
  return keys;
}

/** The agent's Ed25519 signature of `data` with `key`: the raw 64 bytes. */
export async function agentSignEd25519(socketPath: string, key: AgentKey, data: Uint8Array): Promise<Buffer> {
  const flags = Buffer.alloc(4); // no flags: Ed25519 has one signature scheme
  const request = Buffer.concat([Buffer.from([SSH_AGENTC_SIGN_REQUEST]), sshStringBytes(key.blob), sshStringBytes(Buffer.from(data)), flags]);
  const answer = await exchange(socketPath, request);
  if (answer[0] === SSH_AGENT_FAILURE) throw new SshAgentError(`the ssh-agent refused to sign with ${key.fingerprint} (${key.comment || 'no comment'}): it may ask for confirmation (ssh-add -c) or the key was removed`);
  if (answer[0] !== SSH_AGENT_SIGN_RESPONSE) throw new SshAgentError(`the ssh-agent answered a sign request with message ${answer[0]}`);
  const signature = sshString(answer, 1).value;
  const format = sshString(signature, 0);
  const raw = sshString(signature, format.next).value;
  if (format.value.toString() !== 'ssh-ed25519' || raw.length !== 64) throw new SshAgentError(`the ssh-agent signed in ${format.value.toString()} form, not a 64-byte ssh-ed25519 signature`);
  return Buffer.from(raw);
}
