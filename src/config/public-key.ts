/**
 * Ed25519 public keys as people paste them into the config: an OpenSSH line
 * (`ssh-ed25519 AAAA… comment`, what `ssh-keygen -t ed25519` writes to the .pub file) or a PEM
 * SubjectPublicKeyInfo block (what `openssl pkey -pubout` writes). Decoded to the 32 raw bytes, in
 * hex, the form the gate's pure-JS verifier takes.
 */

/** DER prefix of an Ed25519 SubjectPublicKeyInfo: SEQUENCE, AlgorithmIdentifier 1.3.101.112, BIT STRING of 32 bytes. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Reads one length-prefixed string of the SSH wire format at `offset`. */
export function sshString(buf: Buffer, offset: number): { value: Buffer; next: number } {
  if (offset + 4 > buf.length) throw new Error('truncated');
  const length = buf.readUInt32BE(offset);
  const start = offset + 4;
  if (start + length > buf.length) throw new Error('truncated');
  return { value: buf.subarray(start, start + length), next: start + length };
}

export type PublicKeyParse = { ok: true; hex: string } | { ok: false; problem: string };

export function parseEd25519PublicKey(text: string): PublicKeyParse {
  const trimmed = text.trim();
  const ssh = /^ssh-ed25519\s+([A-Za-z0-9+/=]+)(?:\s.*)?$/s.exec(trimmed);
  if (ssh) {
    try {
      const blob = Buffer.from(ssh[1], 'base64');
      const type = sshString(blob, 0);
      const key = sshString(blob, type.next);
      if (type.value.toString() === 'ssh-ed25519' && key.value.length === 32 && key.next === blob.length) return { ok: true, hex: key.value.toString('hex') };
    } catch {
      // Falls through to the one message below.
    }
    return { ok: false, problem: 'is an ssh-ed25519 line whose key does not decode: paste the whole line of the .pub file' };
  }
  const pem = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----$/.exec(trimmed);
  if (pem) {
    const der = Buffer.from(pem[1].replace(/\s+/g, ''), 'base64');
    if (der.length === 44 && der.subarray(0, 12).equals(SPKI_ED25519_PREFIX)) return { ok: true, hex: der.subarray(12).toString('hex') };
    return { ok: false, problem: 'is a PEM public key but not an Ed25519 one: make one with `openssl genpkey -algorithm ed25519` (or ssh-keygen -t ed25519)' };
  }
  return { ok: false, problem: 'must be an Ed25519 public key: the "ssh-ed25519 AAAA…" line of a .pub file, or a PEM "BEGIN PUBLIC KEY" block' };
}
