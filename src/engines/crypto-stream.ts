/**
 * Stream building blocks the backup engines share, so a backup of any size flows through in
 * bounded memory: client-side encryption, a SHA-256 meter, and feeding a multipart upload.
 *
 * The encryption container is specified in docs/encryption.md, with test vectors in
 * test/fixtures/encryption. In short (all integers big-endian):
 *
 *   offset  size  field
 *   0       8     magic, ASCII "LBOATENC"
 *   8       1     version: 2 is written; 1 is still read
 *   9       4     chunk size C: plaintext bytes per chunk (1 KiB .. 16 MiB)
 *   13      8     key id: first 8 bytes of HMAC-SHA256(master key, "lifeboat key id")
 *   21      16    salt, random per object: the object key is HKDF-SHA256(master key, salt,
 *                 info "lifeboat-enc-v<version>")
 *   37      12    nonce base, random per object
 *   v2 only:
 *   49      2     binding length L (0 .. 4096)
 *   51      L     binding: UTF-8 text naming what the object is (for a logical dump
 *                 "kind=logical-dump\ntarget=<target>\nbackup=<backup name>", followed by
 *                 "\ncompression=zstd" when the plaintext is zstd; without it, gzip)
 *   then chunks: AES-256-GCM of up to C bytes each, followed by its 16-byte tag
 *
 * Every chunk but the last holds exactly C bytes; the last holds 0..C bytes and is always
 * present. Chunk i's nonce is the nonce base XOR (i as uint64 in bytes 3..10, and 1 in byte 11
 * for the last chunk only), so chunks cannot be dropped, reordered or appended. The whole header
 * is every chunk's additional authenticated data: in v2 that includes the binding, so an object
 * cannot be passed off as another backup's (a reader says which binding it expects). Plaintext
 * leaves the decryptor only after its chunk's tag checked out.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, Hash } from 'node:crypto';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortMultipartUploadCommand, type CompleteMultipartUploadCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LifeboatError } from '../domain/errors';
import { resolveSecret } from '../config/load';
import type { SecretRef } from '../config/fields';
import { activityCancellationSignal } from '../platform/processes';

/** The format new objects are written in. */
export const ENCRYPTION_FORMAT = 'lifeboat-enc-v2';
const MAGIC = Buffer.from('LBOATENC', 'ascii');
const WRITTEN_VERSION = 2;
/** Bytes of the fixed part of the header (all of a v1 header). */
export const HEADER_BYTES = 49;
const TAG_BYTES = 16;
const MIN_CHUNK = 1024;
const MAX_CHUNK = 16 * 1024 * 1024;
export const MAX_BINDING_BYTES = 4096;
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

/** A 32-byte master key, read from its reference only when a stream needs it. */
export interface EncryptionKey {
  /** 16 hex characters; safe to record and show (see the format's key id). */
  readonly keyId: string;
  /** @internal */
  readonly material: Buffer;
}

/** What an object is, bound into its authenticated header (v2). */
export interface DumpBinding {
  target: string;
  backupName: string;
  /** What kind of backup the object is (default `logical-dump`; a directory archive is `directory`, a SQLite backup `sqlite`). */
  kind?: string;
}

/** How a logical dump's plaintext is compressed: gzip (every dump before zstd, no binding line) or zstd. */
export type DumpCompression = 'gzip' | 'zstd';
export const DUMP_COMPRESSIONS: readonly DumpCompression[] = ['gzip', 'zstd'];

/** The binding text of a logical dump: fixed field order, one `name=value` per line. */
export function bindingText(b: DumpBinding): string {
  return `kind=${b.kind ?? 'logical-dump'}\ntarget=${b.target}\nbackup=${b.backupName}`;
}

/** The binding written for a dump: its identity, then `compression=<c>` for anything but gzip (the historical default). */
export function bindingTextWith(b: DumpBinding, compression: DumpCompression | undefined): string {
  return compression && compression !== 'gzip' ? `${bindingText(b)}\ncompression=${compression}` : bindingText(b);
}

const COMPRESSION_LINE = /\ncompression=([^\n]*)$/;

/** A header binding split into what the object is (compared with the expected binding) and how its plaintext is compressed. */
export function splitBinding(text: string): { identity: string; compression?: string } {
  const m = COMPRESSION_LINE.exec(text);
  return m ? { identity: text.slice(0, m.index), compression: m[1] } : { identity: text };
}

function describeBinding(text: string): string {
  if (!text) return 'nothing (it has no binding)';
  const fields = new Map(text.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  return fields.has('target') && fields.has('backup') ? `target ${fields.get('target')}, backup ${fields.get('backup')}` : JSON.stringify(text);
}

export function keyIdOf(material: Buffer): string {
  return createHmac('sha256', material).update('lifeboat key id').digest().subarray(0, 8).toString('hex');
}

/** The key in a reference's text: 64 hex characters or base64 of 32 bytes. */
export function parseKeyMaterial(raw: string): Buffer | undefined {
  const text = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded.length === 32) return decoded;
  }
  return undefined;
}

/**
 * Resolves a key reference (`file:/path` or `env:NAME`) holding 32 bytes as 64 hex characters
 * or as base64. Messages name the reference, never the value. `expectedKeyId`, when given (a
 * keyring entry's id), must be the key's fingerprint: a key file swapped by mistake is caught here.
 */
export function loadEncryptionKey(ref: SecretRef, expectedKeyId?: string): EncryptionKey {
  const material = parseKeyMaterial(resolveSecret(ref));
  if (!material) {
    throw new LifeboatError(
      `The backup encryption key at ${ref} is not 32 bytes written as 64 hex characters or base64: put a key made with \`openssl rand -hex 32\` there.`,
      'ENCRYPTION_KEY_INVALID',
    );
  }
  const keyId = keyIdOf(material);
  if (expectedKeyId !== undefined && expectedKeyId.toLowerCase() !== keyId) {
    throw new LifeboatError(`The key at ${ref} has id ${keyId}, not ${expectedKeyId} as the keyring says: point the entry at the key with that id, or correct its keyId.`, 'ENCRYPTION_KEY_INVALID');
  }
  return { keyId, material };
}

/**
 * The keys a reader may need: the current one (new objects are written with it) and older ones,
 * kept so objects written before a rotation stay readable.
 */
export interface Keyring {
  current: EncryptionKey;
  previous: EncryptionKey[];
}

export function keyringOf(current: EncryptionKey, previous: EncryptionKey[] = []): Keyring {
  return { current, previous: previous.filter((k) => k.keyId !== current.keyId) };
}

function asKeyring(keys: EncryptionKey | Keyring): Keyring {
  return 'current' in keys ? keys : { current: keys, previous: [] };
}

/** Queue of buffers that hands out exact byte counts without copying more than it returns. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;

  push(buf: Buffer): void {
    if (buf.length === 0) return;
    this.parts.push(buf);
    this.length += buf.length;
  }

  /** The first n bytes without taking them (n <= length). */
  peek(n: number): Buffer {
    const whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    if (this.parts.length > 1) this.parts = [whole];
    return whole.subarray(0, n);
  }

  take(n: number): Buffer {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const head = this.parts[0];
      if (head.length <= need) {
        out.push(head);
        this.parts.shift();
        need -= head.length;
      } else {
        out.push(head.subarray(0, need));
        // Copy the rest so the (possibly large) parent buffer can be freed.
        this.parts[0] = Buffer.from(head.subarray(need));
        need = 0;
      }
    }
    this.length -= n;
    return out.length === 1 ? out[0] : Buffer.concat(out, n);
  }
}

function chunkNonce(base: Buffer, index: number, last: boolean): Buffer {
  const nonce = Buffer.from(base);
  const counter = Buffer.alloc(12);
  counter.writeBigUInt64BE(BigInt(index), 3);
  counter[11] = last ? 1 : 0;
  for (let i = 0; i < 12; i++) nonce[i] ^= counter[i];
  return nonce;
}

function objectKey(key: EncryptionKey, salt: Buffer, version: number): Buffer {
  return Buffer.from(hkdfSync('sha256', key.material, salt, `lifeboat-enc-v${version}`, 32));
}

export interface EncryptOptions {
  /** Plaintext bytes per authenticated chunk (default 256 KiB). */
  chunkBytes?: number;
  /** What the object is; readers that expect another binding refuse it. */
  binding?: DumpBinding;
  /** How the plaintext is compressed, written into the binding (only with `binding`; gzip writes no line, as before). */
  compression?: DumpCompression;
  /** @internal Fixed salt and nonce base: only for writing the test vectors. */
  fixedRandom?: { salt: Buffer; nonceBase: Buffer };
}

/** Encrypts a byte stream into the container format (version 2). */
export function createEncryptStream(keys: EncryptionKey | Keyring, options: EncryptOptions = {}): Transform {
  const key = asKeyring(keys).current;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_CHUNK || chunkBytes > MAX_CHUNK) {
    throw new LifeboatError(`Encryption chunk size ${chunkBytes} is out of range: use a whole number of bytes from ${MIN_CHUNK} to ${MAX_CHUNK}.`, 'BAD_INPUT');
  }
  const binding = Buffer.from(options.binding ? bindingTextWith(options.binding, options.compression) : '', 'utf8');
  if (binding.length > MAX_BINDING_BYTES) throw new LifeboatError(`The object's binding is ${binding.length} bytes, over the ${MAX_BINDING_BYTES} the format allows: use shorter target and backup names.`, 'BAD_INPUT');
  const salt = options.fixedRandom?.salt ?? randomBytes(16);
  const nonceBase = options.fixedRandom?.nonceBase ?? randomBytes(12);
  const header = Buffer.alloc(HEADER_BYTES + 2 + binding.length);
  MAGIC.copy(header, 0);
  header[8] = WRITTEN_VERSION;
  header.writeUInt32BE(chunkBytes, 9);
  Buffer.from(key.keyId, 'hex').copy(header, 13);
  salt.copy(header, 21);
  nonceBase.copy(header, 37);
  header.writeUInt16BE(binding.length, HEADER_BYTES);
  binding.copy(header, HEADER_BYTES + 2);
  const aesKey = objectKey(key, salt, WRITTEN_VERSION);
  const pending = new ByteQueue();
  let index = 0;

  const seal = (plain: Buffer, last: boolean): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', aesKey, chunkNonce(nonceBase, index++, last), { authTagLength: TAG_BYTES });
    cipher.setAAD(header);
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };

  let started = false;
  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      if (!started) {
        this.push(header);
        started = true;
      }
      pending.push(data);
      // Strictly more than a chunk: whatever is left at the end must make up the last chunk.
      while (pending.length > chunkBytes) this.push(seal(pending.take(chunkBytes), false));
      done();
    },
    flush(done: TransformCallback) {
      if (!started) this.push(header);
      this.push(seal(pending.take(pending.length), true));
      done();
    },
  });
}

function damaged(detail: string): LifeboatError {
  return new LifeboatError(`The encrypted backup is damaged or was altered (${detail}): restore from another copy (the DR region's) or take a new backup.`, 'BACKUP_DAMAGED');
}

/** What an object's header says, before any chunk is read. */
export interface EncryptedHeader {
  version: 1 | 2;
  chunkBytes: number;
  keyId: string;
  /** The binding text ('' for v1 and unbound objects). */
  binding: string;
  /**
   * The plaintext's compression a logical dump's binding declares (`compression=zstd`); gzip
   * when a dump's binding has no such line (all dumps written before zstd); undefined when the
   * object is not bound to a dump (v1, unbound).
   */
  compression?: DumpCompression;
  /** Header bytes, binding included. */
  length: number;
}

/**
 * Parses a header from the first bytes of an object; undefined when more bytes are needed.
 * Throws on anything that is not a header this lifeboat reads.
 */
export function parseHeader(head: Buffer): EncryptedHeader | undefined {
  if (head.length < 9) return undefined;
  if (!head.subarray(0, 8).equals(MAGIC)) {
    throw new LifeboatError('The object is not a lifeboat encrypted backup (its first bytes are not the format\'s magic): check that you named a backup object.', 'NOT_A_BACKUP');
  }
  const version = head[8];
  if (version !== 1 && version !== 2) {
    throw new LifeboatError(`The backup uses encryption format version ${version}, which this lifeboat does not read: upgrade lifeboat to restore it.`, 'UNSUPPORTED_FORMAT');
  }
  const fixed = version === 1 ? HEADER_BYTES : HEADER_BYTES + 2;
  if (head.length < fixed) return undefined;
  const chunkBytes = head.readUInt32BE(9);
  if (chunkBytes < MIN_CHUNK || chunkBytes > MAX_CHUNK) throw damaged(`its header declares a chunk size of ${chunkBytes} bytes`);
  const bindingBytes = version === 1 ? 0 : head.readUInt16BE(HEADER_BYTES);
  if (bindingBytes > MAX_BINDING_BYTES) throw damaged(`its header declares a binding of ${bindingBytes} bytes`);
  if (head.length < fixed + bindingBytes) return undefined;
  const binding = head.subarray(fixed, fixed + bindingBytes).toString('utf8');
  const declared = splitBinding(binding).compression;
  if (declared !== undefined && !DUMP_COMPRESSIONS.includes(declared as DumpCompression)) {
    throw new LifeboatError(`The backup's plaintext is compressed with "${declared}", which this lifeboat does not read: upgrade lifeboat to restore it.`, 'UNSUPPORTED_FORMAT');
  }
  return {
    version,
    chunkBytes,
    keyId: head.subarray(13, 21).toString('hex'),
    binding,
    length: fixed + bindingBytes,
    ...(binding.startsWith('kind=logical-dump\n') ? { compression: (declared as DumpCompression | undefined) ?? 'gzip' } : {}),
  };
}

export interface DecryptOptions {
  /**
   * The object must be bound to this (v2). A v1 object has no binding and is read as before:
   * lifeboat wrote v1 before bindings existed.
   */
  expect?: DumpBinding;
  /** Called with the header once it is read (before any plaintext). */
  onHeader?: (header: EncryptedHeader) => void;
}

/** Checks a parsed header against the keyring and the expected binding; returns the key to use. */
export function keyForHeader(header: EncryptedHeader, keys: EncryptionKey | Keyring, expect?: DumpBinding): EncryptionKey {
  const ring = asKeyring(keys);
  if (expect && header.version >= 2) {
    const wanted = bindingText(expect);
    // The compression line says how the plaintext is packed, not which backup it is.
    if (splitBinding(header.binding).identity !== wanted) {
      throw new LifeboatError(
        `The encrypted object is bound to ${describeBinding(header.binding)}, not to ${describeBinding(wanted)} as expected: it was swapped or copied over another backup, so it is refused; restore from that backup's own object or another copy.`,
        'BACKUP_MISMATCH',
      );
    }
  }
  const key = [ring.current, ...ring.previous].find((k) => k.keyId === header.keyId);
  if (!key) {
    const known = [ring.current, ...ring.previous].map((k) => k.keyId).join(', ');
    throw new LifeboatError(
      `The backup was encrypted with key ${header.keyId}, which is not in the keyring (${known}): add that key to the keyring (logicalBackup.previousEncryptionKeys, or another --key) to read it.`,
      'WRONG_KEY',
    );
  }
  return key;
}

/** Decrypts the container format (v1 or v2); fails at the first chunk that does not authenticate. */
export function createDecryptStream(keys: EncryptionKey | Keyring, options: DecryptOptions = {}): Transform {
  const pending = new ByteQueue();
  let header: Buffer | undefined;
  let aesKey: Buffer;
  let nonceBase: Buffer;
  let chunkBytes = 0;
  let index = 0;

  const open = (frame: Buffer, last: boolean): Buffer => {
    if (frame.length < TAG_BYTES) throw damaged('it ends inside a chunk');
    const decipher = createDecipheriv('aes-256-gcm', aesKey, chunkNonce(nonceBase, index, last), { authTagLength: TAG_BYTES });
    decipher.setAAD(header!);
    decipher.setAuthTag(frame.subarray(frame.length - TAG_BYTES));
    const plain = decipher.update(frame.subarray(0, frame.length - TAG_BYTES));
    try {
      decipher.final();
    } catch {
      throw damaged(`chunk ${index} does not authenticate`);
    }
    index++;
    return plain;
  };

  const readHeader = (): boolean => {
    const parsed = parseHeader(pending.peek(Math.min(pending.length, HEADER_BYTES + 2 + MAX_BINDING_BYTES)));
    if (!parsed) return false;
    const key = keyForHeader(parsed, keys, options.expect);
    const h = pending.take(parsed.length);
    chunkBytes = parsed.chunkBytes;
    aesKey = objectKey(key, h.subarray(21, 37), parsed.version);
    nonceBase = Buffer.from(h.subarray(37, 49));
    header = Buffer.from(h);
    options.onHeader?.(parsed);
    return true;
  };

  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      try {
        pending.push(data);
        if (!header && !readHeader()) return done();
        // A full frame followed by more bytes cannot be the last one.
        while (pending.length > chunkBytes + TAG_BYTES) this.push(open(pending.take(chunkBytes + TAG_BYTES), false));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        if (!header && (pending.length === 0 || !readHeader())) throw pending.length === 0 ? damaged('it is empty') : damaged('it ends inside its header');
        this.push(open(pending.take(pending.length), true));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/**
 * Passes bytes through unchanged while counting and hashing them. `onEnd` runs before the
 * stream ends and may veto the end by throwing (used to refuse a copy whose hash is wrong,
 * so an upload fed by it is aborted instead of completed).
 */
export class Sha256Meter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private result?: string;
  bytes = 0;

  constructor(
    private readonly onChunk?: (bytes: number) => void,
    private readonly onEnd?: (sha256: string, bytes: number) => void | Promise<void>,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onChunk?.(this.bytes);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.result = this.hash.digest('hex');
    Promise.resolve()
      .then(() => this.onEnd?.(this.result!, this.bytes))
      .then(() => done(), (err: Error) => done(err));
  }

  /** Hex SHA-256 of everything that passed; only after the stream ended. */
  get sha256(): string {
    if (this.result === undefined) throw new Error('the SHA-256 meter was read before its stream ended');
    return this.result;
  }
}

export type UploadOutcome =
  | { ok: true; versionId?: string }
  | {
      ok: false;
      /** Which side failed first: reading/transforming the data, or the upload. */
      side: 'source' | 'upload';
      error: unknown;
      /** Set when the upload completed anyway, so the caller can remove what it must not keep. */
      versionId?: string;
    };

/**
 * Pipes `streams` (a source and transforms) into a multipart upload of their output, holding
 * at most about partSize × (queueSize + 1) bytes. Whichever side fails first stops the other,
 * so nothing waits on a dead stream, and is reported as the cause.
 */
export async function uploadFromStreams(args: {
  s3: S3Client;
  bucket: string;
  key: string;
  contentType?: string;
  metadata?: Record<string, string>;
  /** A source and at least one transform; the last one's output is uploaded. */
  streams: [Readable, Transform, ...Transform[]];
  partSize: number;
  queueSize: number;
  /** Stops reading and aborts the upload; inside an activity, its cancellation by default. */
  signal?: AbortSignal;
}): Promise<UploadOutcome> {
  const body = args.streams[args.streams.length - 1];
  const upload = new Upload({
    client: args.s3,
    params: { Bucket: args.bucket, Key: args.key, Body: body, ContentType: args.contentType, Metadata: args.metadata },
    partSize: args.partSize,
    queueSize: args.queueSize,
    leavePartsOnError: false,
  });
  const abort = new AbortController();
  let first: { side: 'source' | 'upload'; error: unknown } | undefined;
  const piping = pipeline(args.streams, { signal: abort.signal }).catch((error: unknown) => {
    first ??= { side: 'source', error };
    void upload.abort();
  });
  const uploading = upload.done().then(
    (out) => out as CompleteMultipartUploadCommandOutput,
    (error: unknown) => {
      first ??= { side: 'upload', error };
      abort.abort();
      return undefined;
    },
  );
  // A cancelled activity stops its stream at once: the source fails, which aborts the upload.
  const cancel = args.signal ?? activityCancellationSignal();
  const onCancel = () => args.streams[0].destroy(cancel?.reason instanceof Error ? cancel.reason : new Error('cancelled'));
  if (cancel?.aborted) onCancel();
  else cancel?.addEventListener('abort', onCancel, { once: true });
  const [, uploaded] = await Promise.all([piping, uploading]).finally(() => cancel?.removeEventListener('abort', onCancel));
  const versionId = uploaded?.VersionId && uploaded.VersionId !== 'null' ? uploaded.VersionId : undefined;
  if (first) {
    // An abort that lands while the multipart upload is being created leaves it behind (lib-storage
    // learns its id only afterwards): abort that one explicitly. Already aborted is fine.
    const uploadId = (upload as unknown as { uploadId?: string }).uploadId;
    if (uploadId) await args.s3.send(new AbortMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: uploadId })).catch(() => undefined);
    return { ok: false, ...first, ...(versionId ? { versionId } : {}) };
  }
  return { ok: true, ...(versionId ? { versionId } : {}) };
}
