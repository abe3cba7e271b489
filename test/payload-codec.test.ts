/**
 * History encryption without a server: the AES-256-GCM codec and its keyring, the config's
 * keyring section, and the codec server's protocol, CORS and token checks over real HTTP.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { createCodecServer } from '../src/codec-server';
import { ConfigError, parseConfig } from '../src/config';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, Keyring, loadKeyring } from '../src/engines/payload-codec';

const REASON = 'orders deleted by a bad migration on db-7.internal';
const keyringOf = (current: string, keys: Record<string, Buffer>): Keyring => ({ currentKeyId: current, keys: new Map(Object.entries(keys)) });
const meta = (p: Payload, key: string) => Buffer.from(p.metadata![key]!).toString();

describe('history encryption (payload codec)', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const plain = defaultPayloadConverter.toPayload({ reason: REASON, requestedBy: 'alice@example.com' });

  it('round trip: encrypts with the current key, names it, and decodes to the same payload', async () => {
    const codec = new AesGcmPayloadCodec(keyringOf('k1', { k1 }));
    const [sealed] = await codec.encode([plain]);
    assert.equal(meta(sealed, 'encoding'), ENCRYPTED_ENCODING);
    assert.equal(meta(sealed, KEY_ID_METADATA), 'k1');
    assert.ok(!Buffer.from(sealed.data!).toString('latin1').includes('bad migration'), 'no plaintext in the sealed data');
    assert.ok(!Object.values(sealed.metadata!).some((v) => Buffer.from(v!).toString().includes('json')), 'the original encoding is sealed too');
    const [opened] = await codec.decode([sealed]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened), { reason: REASON, requestedBy: 'alice@example.com' });
    // A fresh IV each time: the same value never encrypts the same way twice.
    const [again] = await codec.encode([plain]);
    assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(sealed.data!));
  });

  it('key rotation: after k2 becomes current, payloads sealed with k1 still decode, and new ones name k2', async () => {
    const [old] = await new AesGcmPayloadCodec(keyringOf('k1', { k1 })).encode([plain]);
    const rotated = new AesGcmPayloadCodec(keyringOf('k2', { k1, k2 }));
    const [fresh] = await rotated.encode([plain]);
    assert.equal(meta(fresh, KEY_ID_METADATA), 'k2');
    const decoded = await rotated.decode([old, fresh]);
    assert.deepEqual(decoded.map((p) => defaultPayloadConverter.fromPayload(p)), [
      { reason: REASON, requestedBy: 'alice@example.com' },
      { reason: REASON, requestedBy: 'alice@example.com' },
    ]);
  });

  it('a payload sealed with a key id the keyring lacks fails with a sentence naming that id', async () => {
    const [sealed] = await new AesGcmPayloadCodec(keyringOf('gone', { gone: k1 })).encode([plain]);
    await assert.rejects(new AesGcmPayloadCodec(keyringOf('k2', { k2 })).decode([sealed]), {
      message: 'a payload is encrypted with key id gone, which is not in this keyring (k2): add that key to temporal.encryption.keys to read it.',
    });
  });

  it('refuses tampered ciphertext, a swapped key id, and the wrong key under the right id', async () => {
    const codec = new AesGcmPayloadCodec(keyringOf('k1', { k1, k2 }));
    const [sealed] = await codec.encode([plain]);
    const flipped = Buffer.from(sealed.data!);
    flipped[20] ^= 1;
    await assert.rejects(codec.decode([{ ...sealed, data: flipped }]), /key id k1 failed authentication: it was altered/);
    // The key id is bound as associated data: relabelling the payload does not get it decrypted.
    await assert.rejects(codec.decode([{ metadata: { ...sealed.metadata, [KEY_ID_METADATA]: Buffer.from('k2') }, data: sealed.data }]), /key id k2 failed authentication/);
    await assert.rejects(new AesGcmPayloadCodec(keyringOf('k1', { k1: k2 })).decode([sealed]), /key id k1 failed authentication/);
    await assert.rejects(codec.decode([{ ...sealed, data: Buffer.alloc(8) }]), /too short to be one: it was altered/);
  });

  it('passes payloads that are not marked encrypted through unchanged (histories recorded before, signals from the Web UI)', async () => {
    const codec = new AesGcmPayloadCodec(keyringOf('k1', { k1 }));
    const binary = { metadata: { encoding: Buffer.from('binary/plain') }, data: Buffer.from([1, 2, 3]) };
    const decoded = await codec.decode([plain, binary]);
    assert.equal(decoded[0], plain);
    assert.equal(decoded[1], binary);
  });

  it('loads the keyring from secret references, hex or base64, and refuses a key that is not 32 bytes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-keyring-'));
    try {
      fs.writeFileSync(path.join(dir, 'a'), k1.toString('hex') + '\n', { mode: 0o600 });
      const ring = loadKeyring({ currentKey: 'b', keys: { a: `file:${dir}/a`, b: 'env:LB_TEST_KEY_B' } }, { LB_TEST_KEY_B: k2.toString('base64') });
      assert.deepEqual(ring.keys.get('a'), k1);
      assert.deepEqual(ring.keys.get('b'), k2);
      assert.equal(ring.currentKeyId, 'b');
      fs.writeFileSync(path.join(dir, 'short'), 'abcd', { mode: 0o600 });
      assert.throws(() => loadKeyring({ currentKey: 's', keys: { s: `file:${dir}/short` } }), {
        message: `the history encryption key at file:${dir}/short is not 32 bytes written as 64 hex characters or base64: put a key made with \`openssl rand -hex 32\` there.`,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the config refuses a currentKey that is not in keys, and a codec server without a keyring', () => {
    const text = fs.readFileSync(path.resolve(__dirname, '../../lifeboat.config.yaml'), 'utf8');
    const problems = (t: string) => {
      try {
        parseConfig(t, 'lifeboat.config.yaml', { dataDir: '/tmp/lb' });
        return '';
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.message;
      }
    };
    assert.equal(problems(text), '');
    assert.match(problems(text.replace('currentKey: local-1', 'currentKey: local-2')), /temporal\.encryption\.currentKey: is "local-2", which is not in keys \(local-1\): add it there or name one of those/);
    const withoutKeyring = text.replace(/\n {2}encryption:\n {4}currentKey: local-1\n {4}keys:\n {6}local-1: .*\n/, '\n');
    assert.notEqual(withoutKeyring, text);
    assert.match(problems(withoutKeyring), /temporal\.codecServer: needs temporal\.encryption/);
  });
});

describe('lifeboat codec-server (HTTP, CORS, bearer token)', () => {
  const UI = 'http://127.0.0.1:8233';
  const TOKEN = 'tok-' + randomBytes(8).toString('hex');
  const codec = new AesGcmPayloadCodec(keyringOf('k1', { k1: randomBytes(32) }));
  const server = createCodecServer({ codec, uiOrigin: UI, token: () => TOKEN });
  let base = '';

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const asJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
    data: Buffer.from(p.data!).toString('base64'),
  });
  const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('encodes and decodes over the codec protocol, with the bearer header or the /t/<token> prefix', async () => {
    const plain = defaultPayloadConverter.toPayload(REASON);
    const encoded = await post('/encode', { payloads: [asJson(plain)] }, { Authorization: `Bearer ${TOKEN}` });
    assert.equal(encoded.status, 200);
    const { payloads } = (await encoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    assert.equal(Buffer.from(payloads[0].metadata.encoding, 'base64').toString(), ENCRYPTED_ENCODING);
    const decoded = await post(`/t/${TOKEN}/decode`, { payloads }, { Origin: UI, 'X-Namespace': 'default' });
    assert.equal(decoded.status, 200);
    assert.equal(decoded.headers.get('access-control-allow-origin'), UI);
    const back = ((await decoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads[0];
    assert.equal(Buffer.from(back.data, 'base64').toString(), JSON.stringify(REASON));
    assert.equal(Buffer.from(back.metadata.encoding, 'base64').toString(), 'json/plain');
  });

  it('answers the UI origin\'s preflight with the methods and headers it needs, and nothing to any other origin', async () => {
    const preflight = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace,authorization' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), UI);
    assert.equal(preflight.headers.get('access-control-allow-methods'), 'POST, OPTIONS');
    assert.equal(preflight.headers.get('access-control-allow-headers'), 'Content-Type, Authorization, X-Namespace');
    for (const method of ['OPTIONS', 'POST']) {
      const evil = await fetch(`${base}/decode`, { method, headers: { Origin: 'http://evil.example', Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, ...(method === 'POST' ? { body: '{"payloads":[]}' } : {}) });
      assert.equal(evil.status, 403, method);
      assert.equal(evil.headers.get('access-control-allow-origin'), null, method);
      assert.match(((await evil.json()) as { error: string }).error, /^origin http:\/\/evil\.example may not use this codec server: only http:\/\/127\.0\.0\.1:8233/);
    }
  });

  it('refuses a request without the token or with a wrong one (401), before reading any payload', async () => {
    const none = await post('/decode', { payloads: [] }, { Origin: UI });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await none.json()) as { error: string }).error, 'a bearer token is required: send Authorization: Bearer <token>');
    const wrong = await post('/decode', { payloads: [] }, { Authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: string }).error, 'the bearer token is not the codec server\'s');
    assert.equal((await post('/t/nope/decode', { payloads: [] })).status, 401);
  });

  it('says what is wrong with a bad request: no payloads, a wrong route, a payload it cannot decode', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const noPayloads = await post('/decode', { nothing: true }, auth);
    assert.equal(noPayloads.status, 400);
    assert.equal((await post('/elsewhere', { payloads: [] }, auth)).status, 404);
    const foreign = { metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING).toString('base64'), [KEY_ID_METADATA]: Buffer.from('old').toString('base64') }, data: Buffer.alloc(40).toString('base64') };
    const refused = await post('/decode', { payloads: [foreign] }, auth);
    assert.equal(refused.status, 422);
    assert.match(((await refused.json()) as { error: string }).error, /key id old, which is not in this keyring/);
  });
});
