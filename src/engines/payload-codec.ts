/**
 * Workflow history encryption: a Temporal PayloadCodec with AES-256-GCM and a keyring. Every
 * payload it encodes names its key id in its metadata, so keys rotate without breaking old
 * histories: new payloads use the current key, a payload decodes with the key it names.
 * Payloads not marked encrypted (histories recorded before encryption, `temporal workflow signal`
 * from a shell, the Web UI's signals) pass through unchanged. Codecs run outside the workflow
 * sandbox, on the client and the worker's main thread, so node:crypto is fine here.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { resolveSecret } from '../config/load';
import type { SecretRef } from '../config';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const ProtoPayload = temporal.api.common.v1.Payload;
const utf8 = new TextEncoder();
const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** Key material by key id, and which id new payloads are encrypted with. */
export interface Keyring {
  currentKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
}

/** The config's `temporal.encryption` section, as loaded (key material still behind its references). */
export interface EncryptionSettings {
  currentKey: string;
  keys: Record<string, SecretRef>;
}

/** 32 bytes written as 64 hex characters or base64; the message names the reference, never the value. */
export function parseKeyMaterial(raw: string, where: string): Buffer {
  const value = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(value)) {
    const decoded = Buffer.from(value, 'base64');
    if (decoded.length === 32) return decoded;
  }
  throw new Error(`the history encryption key at ${where} is not 32 bytes written as 64 hex characters or base64: put a key made with \`openssl rand -hex 32\` there.`);
}

/** Reads every key of the keyring from where its reference points. */
export function loadKeyring(settings: EncryptionSettings, env: NodeJS.ProcessEnv = process.env): Keyring {
  const keys = new Map<string, Buffer>();
  for (const [id, ref] of Object.entries(settings.keys)) keys.set(id, parseKeyMaterial(resolveSecret(ref, env), ref));
  if (!keys.has(settings.currentKey)) {
    throw new Error(`temporal.encryption.currentKey ${settings.currentKey} is not one of temporal.encryption.keys (${[...keys.keys()].join(', ')}): add it there or name one of those.`);
  }
  return { currentKeyId: settings.currentKey, keys };
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {
    for (const [id, key] of keyring.keys) if (key.length !== 32) throw new Error(`history encryption key ${id} is ${key.length} bytes: AES-256 needs 32.`);
    if (!keyring.keys.has(keyring.currentKeyId)) throw new Error(`the current history encryption key ${keyring.currentKeyId} is not in the keyring.`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  /** The whole payload (metadata and data) is sealed; the key id is bound to it as associated data. */
  private encrypt(payload: Payload): Payload {
    const keyId = this.keyring.currentKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keyring.keys.get(keyId)!, iv);
    cipher.setAAD(Buffer.from(keyId, 'utf8'));
    const sealed = Buffer.concat([cipher.update(ProtoPayload.encode(payload).finish()), cipher.final()]);
    return {
      metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(keyId) },
      data: Buffer.concat([iv, sealed, cipher.getAuthTag()]),
    };
  }

  private decrypt(payload: Payload): Payload {
    if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!keyId) throw new Error(`an encrypted payload names no key id (metadata ${KEY_ID_METADATA}): it was not written by lifeboat's codec.`);
    const key = this.keyring.keys.get(keyId);
    if (!key) {
      throw new Error(`a payload is encrypted with key id ${keyId}, which is not in this keyring (${[...this.keyring.keys.keys()].join(', ')}): add that key to temporal.encryption.keys to read it.`);
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`a payload encrypted with key id ${keyId} is too short to be one: it was altered.`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(keyId, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new Error(`a payload encrypted with key id ${keyId} failed authentication: it was altered, or key ${keyId} in this keyring is not the key it was encrypted with.`);
    }
    const decoded = ProtoPayload.decode(plain);
    return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
  }
}
