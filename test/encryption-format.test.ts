/**
 * The encryption format as docs/encryption.md specifies it: the checked-in test vectors
 * (test/fixtures/encryption) decrypt, both through lifeboat and through a reader written from
 * the specification alone; the binding refuses a swapped object; a keyring reads what older
 * keys wrote; `lifeboat decrypt` needs nothing but the key.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { LifeboatError } from '../src/domain/errors';
import { createDecryptStream, createEncryptStream, EncryptionKey, keyIdOf, keyringOf, loadEncryptionKey } from '../src/engines/crypto-stream';
import { createAutoDecompressStream } from '../src/engines/compression';
import { CLI, ROOT, runNode } from './helpers/cli';

const FIXTURES = path.join(ROOT, 'test/fixtures/encryption');

interface Vector {
  keyHex: string;
  keyId: string;
  chunkBytes: number;
  salt?: string;
  nonceBase?: string;
  objectKeyHex?: string;
  binding?: string;
  headerHex?: string;
  plaintext: { bytes: number; sha256: string };
  ciphertextFile: string;
  ciphertextSha256: string;
  emptyPlaintext?: { ciphertextFile: string; ciphertextBytes: number; ciphertextSha256: string };
}

const vector = (name: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as Vector;
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const keyOf = (hex: string): EncryptionKey => ({ keyId: keyIdOf(Buffer.from(hex, 'hex')), material: Buffer.from(hex, 'hex') });
/** The vectors' plaintext: byte i is i mod 251. */
const vectorPlaintext = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A reader written from docs/encryption.md alone, sharing no code with lifeboat's. */
function decryptBySpecification(object: Buffer, master: Buffer): { plaintext: Buffer; binding: string } {
  assert.equal(object.subarray(0, 8).toString('ascii'), 'LBOATENC');
  const version = object[8];
  const chunk = object.readUInt32BE(9);
  assert.equal(object.subarray(13, 21).toString('hex'), createHmac('sha256', master).update('lifeboat key id').digest().subarray(0, 8).toString('hex'));
  const salt = object.subarray(21, 37);
  const nonceBase = object.subarray(37, 49);
  const bindingLength = version === 2 ? object.readUInt16BE(49) : 0;
  const headerLength = version === 2 ? 51 + bindingLength : 49;
  const header = object.subarray(0, headerLength);
  const key = Buffer.from(hkdfSync('sha256', master, salt, `lifeboat-enc-v${version}`, 32));
  const frames: Buffer[] = [];
  for (let at = headerLength; at < object.length; at += chunk + 16) frames.push(object.subarray(at, Math.min(at + chunk + 16, object.length)));
  const plain = frames.map((frame, i) => {
    const nonce = Buffer.from(nonceBase);
    const counter = Buffer.alloc(12);
    counter.writeBigUInt64BE(BigInt(i), 3);
    if (i === frames.length - 1) counter[11] = 1;
    for (let j = 0; j < 12; j++) nonce[j] ^= counter[j];
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(header);
    d.setAuthTag(frame.subarray(frame.length - 16));
    return Buffer.concat([d.update(frame.subarray(0, frame.length - 16)), d.final()]);
  });
  return { plaintext: Buffer.concat(plain), binding: header.subarray(51).toString('utf8') };
}

describe('encryption format (docs/encryption.md, test vectors)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-enc-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const keyFile = (name: string, hex: string): `file:${string}` => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${hex}\n`, { mode: 0o600 });
    return `file:${file}`;
  };

  it('decrypts the v1 vector (objects written before v2 stay readable)', async () => {
    const v = vector('v1-three-chunks.json');
    const object = fixture(v.ciphertextFile);
    assert.equal(sha256(object), v.ciphertextSha256);
    const plain = await readAll(Readable.from([object]).pipe(createDecryptStream(keyOf(v.keyHex))));
    assert.equal(plain.length, v.plaintext.bytes);
    assert.equal(sha256(plain), v.plaintext.sha256);
    assert.deepEqual(plain, vectorPlaintext(v.plaintext.bytes));
    assert.deepEqual(decryptBySpecification(object, Buffer.from(v.keyHex, 'hex')).plaintext, plain);
  });

  it('decrypts the v2 vectors, by lifeboat and by a reader written from the specification; writing them again gives the same bytes', async () => {
    const v = vector('v2-three-chunks.json');
    const object = fixture(v.ciphertextFile);
    assert.equal(sha256(object), v.ciphertextSha256);
    assert.equal(object.subarray(0, 51 + Buffer.byteLength(v.binding!)).toString('hex'), v.headerHex);
    assert.equal(Buffer.from(hkdfSync('sha256', Buffer.from(v.keyHex, 'hex'), Buffer.from(v.salt!, 'hex'), 'lifeboat-enc-v2', 32)).toString('hex'), v.objectKeyHex);
    const expect = { target: 'app', backupName: 'logical-app-2026-12-01t03-00-00-000z' };
    const plain = await readAll(Readable.from([object]).pipe(createDecryptStream(keyOf(v.keyHex), { expect })));
    assert.equal(sha256(plain), v.plaintext.sha256);
    const bySpec = decryptBySpecification(object, Buffer.from(v.keyHex, 'hex'));
    assert.deepEqual(bySpec.plaintext, plain);
    assert.equal(bySpec.binding, v.binding);
    // Three frames: two of 1024 + 16 bytes, the last of 452 + 16.
    assert.equal(object.length, 51 + Buffer.byteLength(v.binding!) + 2 * 1040 + 468);

    const fixedRandom = { salt: Buffer.from(v.salt!, 'hex'), nonceBase: Buffer.from(v.nonceBase!, 'hex') };
    const again = await readAll(Readable.from([vectorPlaintext(2500)]).pipe(createEncryptStream(keyOf(v.keyHex), { chunkBytes: 1024, binding: expect, fixedRandom })));
    assert.deepEqual(again, object);

    const empty = fixture(v.emptyPlaintext!.ciphertextFile);
    assert.equal(sha256(empty), v.emptyPlaintext!.ciphertextSha256);
    assert.equal((await readAll(Readable.from([empty]).pipe(createDecryptStream(keyOf(v.keyHex), { expect })))).length, 0);
    assert.equal(decryptBySpecification(empty, Buffer.from(v.keyHex, 'hex')).plaintext.length, 0);
  });

  it('decrypts the v2 zstd vector: the binding declares compression=zstd, the expected binding is still target and backup, and the plaintext decompresses to the archive', async () => {
    const v = vector('v2-zstd.json') as Vector & { decompressed: { bytes: number; sha256: string } };
    const object = fixture(v.ciphertextFile);
    assert.equal(sha256(object), v.ciphertextSha256);
    assert.equal(object.subarray(0, 51 + Buffer.byteLength(v.binding!)).toString('hex'), v.headerHex);
    const expect = { target: 'app', backupName: 'logical-app-2026-12-01t09-00-00-000z' };
    let declared: string | undefined;
    const plain = await readAll(Readable.from([object]).pipe(createDecryptStream(keyOf(v.keyHex), { expect, onHeader: (h) => (declared = h.compression) })));
    assert.equal(declared, 'zstd');
    assert.equal(sha256(plain), v.plaintext.sha256);
    const bySpec = decryptBySpecification(object, Buffer.from(v.keyHex, 'hex'));
    assert.deepEqual(bySpec.plaintext, plain);
    assert.equal(bySpec.binding, v.binding);
    assert.ok(bySpec.binding.endsWith('\ncompression=zstd'));
    // Three frames: two of 1024 + 16 bytes and the rest.
    assert.equal(object.length, 51 + Buffer.byteLength(v.binding!) + 2 * 1040 + (v.plaintext.bytes - 2048) + 16);
    const archive = await readAll(Readable.from([plain]).pipe(createAutoDecompressStream({ declared: () => 'zstd' })));
    assert.deepEqual({ bytes: archive.length, sha256: sha256(archive) }, { bytes: v.decompressed.bytes, sha256: v.decompressed.sha256 });

    const fixedRandom = { salt: Buffer.from(v.salt!, 'hex'), nonceBase: Buffer.from(v.nonceBase!, 'hex') };
    const again = await readAll(Readable.from([plain]).pipe(createEncryptStream(keyOf(v.keyHex), { chunkBytes: 1024, binding: expect, compression: 'zstd', fixedRandom })));
    assert.deepEqual(again, object);
    // The older vectors declare nothing: their dumps are gzip.
    let olderDeclared: string | undefined;
    await readAll(Readable.from([fixture('v2-three-chunks.enc')]).pipe(createDecryptStream(keyOf(v.keyHex), { onHeader: (h) => (olderDeclared = h.compression) })));
    assert.equal(olderDeclared, 'gzip');
    // Data that is not what the header declares is refused, not fed to the wrong decompressor.
    await assert.rejects(readAll(Readable.from([gzipSync(archive)]).pipe(createAutoDecompressStream({ declared: () => 'zstd' }))), (err: LifeboatError) => {
      assert.equal(err.code, 'DECOMPRESSION_FAILED');
      assert.match(err.message, /header declares zstd but the data is gzip/);
      return true;
    });
    // Another backup's zstd object is still refused by name, the compression line aside.
    await assert.rejects(readAll(Readable.from([object]).pipe(createDecryptStream(keyOf(v.keyHex), { expect: { target: 'app', backupName: 'other' } }))), (err: LifeboatError) => {
      assert.equal(err.code, 'BACKUP_MISMATCH');
      assert.match(err.message, /^The encrypted object is bound to target app, backup logical-app-2026-12-01t09-00-00-000z, not to target app, backup other as expected/);
      return true;
    });
  });

  it('refuses an object bound to another backup with one sentence, and an altered binding fails authentication', async () => {
    const v = vector('v2-three-chunks.json');
    const object = fixture(v.ciphertextFile);
    await assert.rejects(readAll(Readable.from([object]).pipe(createDecryptStream(keyOf(v.keyHex), { expect: { target: 'app', backupName: 'another-backup' } }))), (err: LifeboatError) => {
      assert.equal(err.code, 'BACKUP_MISMATCH');
      assert.equal(
        err.message,
        'The encrypted object is bound to target app, backup logical-app-2026-12-01t03-00-00-000z, not to target app, backup another-backup as expected: it was swapped or copied over another backup, so it is refused; restore from that backup\'s own object or another copy.',
      );
      return true;
    });
    // Rewriting the binding in the header to pass the check breaks every chunk's tag.
    const forged = Buffer.from(object);
    const at = object.indexOf(Buffer.from('backup=logical-app-2026-12-01t03-00-00-000z'));
    forged.write('backup=logical-app-2026-12-01t03-00-00-000x', at);
    await assert.rejects(readAll(Readable.from([forged]).pipe(createDecryptStream(keyOf(v.keyHex), { expect: { target: 'app', backupName: 'logical-app-2026-12-01t03-00-00-000x' } }))), (err: LifeboatError) => {
      assert.equal(err.code, 'BACKUP_DAMAGED');
      assert.match(err.message, /chunk 0 does not authenticate/);
      return true;
    });
  });

  it('a keyring reads what a rotated-out key wrote, writes with the current key, and names a missing key by id', async () => {
    const oldHex = randomBytes(32).toString('hex');
    const newHex = randomBytes(32).toString('hex');
    const oldKey = loadEncryptionKey(keyFile('old.key', oldHex));
    const newKey = loadEncryptionKey(keyFile('new.key', newHex));
    const binding = { target: 'app', backupName: 'b1' };
    const plain = randomBytes(5000);
    const beforeRotation = await readAll(Readable.from([plain]).pipe(createEncryptStream(oldKey, { chunkBytes: 1024, binding })));

    const ring = keyringOf(newKey, [loadEncryptionKey(keyFile('old2.key', oldHex), oldKey.keyId)]);
    assert.deepEqual(await readAll(Readable.from([beforeRotation]).pipe(createDecryptStream(ring, { expect: binding }))), plain);
    const afterRotation = await readAll(Readable.from([plain]).pipe(createEncryptStream(ring, { chunkBytes: 1024, binding })));
    assert.equal(afterRotation.subarray(13, 21).toString('hex'), newKey.keyId);
    assert.deepEqual(await readAll(Readable.from([afterRotation]).pipe(createDecryptStream(ring, { expect: binding }))), plain);

    await assert.rejects(readAll(Readable.from([beforeRotation]).pipe(createDecryptStream(keyringOf(newKey)))), (err: LifeboatError) => {
      assert.equal(err.code, 'WRONG_KEY');
      assert.equal(err.message, `The backup was encrypted with key ${oldKey.keyId}, which is not in the keyring (${newKey.keyId}): add that key to the keyring (logicalBackup.previousEncryptionKeys, or another --key) to read it.`);
      return true;
    });
    // A keyring entry whose id is not its key's: caught when the key is loaded.
    assert.throws(() => loadEncryptionKey(keyFile('mislabelled.key', newHex), oldKey.keyId), (err: LifeboatError) => {
      assert.match(err.message, new RegExp(`has id ${newKey.keyId}, not ${oldKey.keyId} as the keyring says`));
      return true;
    });
  });

  it('lifeboat decrypt works with nothing but the key (no config file), and refuses a swapped object with exit 2', async () => {
    const v = vector('v2-three-chunks.json');
    const key = keyFile('vector.key', v.keyHex);
    const noConfig = { LIFEBOAT_CONFIG: path.join(dir, 'no-such-config.yaml'), LIFEBOAT_TEMPORAL_ADDRESS: '127.0.0.1:1' };
    const out = path.join(dir, 'plain.bin');
    const ok = await runNode(CLI, ['decrypt', '--key', key, '--in', path.join(FIXTURES, v.ciphertextFile), '--out', out, '--target', 'app', '--backup', 'logical-app-2026-12-01t03-00-00-000z'], noConfig);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(sha256(fs.readFileSync(out)), v.plaintext.sha256);
    assert.equal(ok.stderr, `decrypted: lifeboat-enc-v2, key ${v.keyId}, bound to kind=logical-dump, target=app, backup=logical-app-2026-12-01t03-00-00-000z\n`);

    const outV1 = path.join(dir, 'plain-v1.bin');
    const v1 = await runNode(CLI, ['decrypt', '--key', key, '--in', path.join(FIXTURES, 'v1-three-chunks.enc'), '--out', outV1], noConfig);
    assert.equal(v1.code, 0, v1.stderr);
    assert.deepEqual(fs.readFileSync(outV1), vectorPlaintext(2500));
    assert.equal(v1.stderr, `decrypted: lifeboat-enc-v1, key ${v.keyId}, no binding\n`);

    const out2 = path.join(dir, 'swapped.bin');
    const swapped = await runNode(CLI, ['decrypt', '--key', key, '--in', path.join(FIXTURES, v.ciphertextFile), '--out', out2, '--target', 'app', '--backup', 'other'], noConfig);
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, /^lifeboat: The encrypted object is bound to target app, backup logical-app-2026-12-01t03-00-00-000z, not to target app, backup other as expected/);
    assert.ok(!fs.existsSync(out2), 'nothing is written for a refused object');

    const z = vector('v2-zstd.json') as Vector & { decompressed: { bytes: number; sha256: string } };
    const zOut = path.join(dir, 'archive.bin');
    const zstdRun = await runNode(CLI, ['decrypt', '--key', key, '--in', path.join(FIXTURES, z.ciphertextFile), '--out', zOut, '--decompress', '--target', 'app', '--backup', 'logical-app-2026-12-01t09-00-00-000z'], noConfig);
    assert.equal(zstdRun.code, 0, zstdRun.stderr);
    assert.equal(sha256(fs.readFileSync(zOut)), z.decompressed.sha256);
    assert.equal(zstdRun.stderr, `decrypted: lifeboat-enc-v2, key ${v.keyId}, bound to kind=logical-dump, target=app, backup=logical-app-2026-12-01t09-00-00-000z, compression=zstd; zstd decompressed\n`);

    const ids = await runNode(CLI, ['decrypt', '--key', key, '--key-id'], noConfig);
    assert.equal(ids.stdout, `${v.keyId}  ${key}\n`);
  });
});
