/**
 * Write-once evidence in both regions' object-locked buckets (the stack's two MinIO servers):
 * written with its hash, read back intact, adopted on retry, never written over, and a copy that
 * lost its bytes or retention is named.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LifeboatError } from '../src/domain/errors';
import { EvidenceLocation, EvidenceStore, sha256Hex } from '../src/engines/evidence-store';
import { s3ClientFor, Stack } from '../src/stack/stack';
import { useStack } from './helpers/stack';

describe('evidence store (write-once, both regions, real MinIO)', function () {
  let stack: Stack;
  let clients: S3Client[] = [];
  let locations: EvidenceLocation[];
  const prefix = `lbtest-evidence-${randomBytes(4).toString('hex')}`;

  before(async function () {
    this.timeout(600000);
    stack = await useStack();
    const s = stack.ctx.settings;
    locations = [s.minio.primary, s.minio.dr].map((region) => {
      const s3 = s3ClientFor(s, region);
      clients.push(s3);
      return { region: region.region, bucket: region.evidenceBucket, s3 };
    });
  });

  after(() => {
    for (const c of clients) c.destroy();
    clients = [];
  });

  const store = () => new EvidenceStore(locations, { retentionDays: 1, mode: 'GOVERNANCE' });

  it('writes a report to both regions under retention, with the hash the catalog records, and reads it back intact', async () => {
    const body = Buffer.from(JSON.stringify({ drill: 'd-1', result: 'passed', rows: 20000 }));
    const receipt = await store().put(`${prefix}/d-1/report.json`, body, 'application/json');
    assert.equal(receipt.sha256, sha256Hex(body));
    assert.equal(receipt.bytes, body.length);
    assert.deepEqual(receipt.copies.map((c) => c.region), ['primary', 'dr']);
    for (const copy of receipt.copies) {
      assert.ok(copy.versionId, 'each copy has its version');
      const days = (Date.parse(copy.retainUntil) - Date.now()) / 86400000;
      assert.ok(days > 0.99 && days <= 1, `retained ${days.toFixed(3)} days`);
    }
    const checks = await store().verify(receipt);
    assert.deepEqual(checks.map((c) => [c.region, c.ok]), [['primary', true], ['dr', true]], JSON.stringify(checks));
    assert.match(checks[0].detail, /SHA-256 matches; GOVERNANCE retention until /);
    assert.deepEqual(await store().read(receipt), body);
  });

  it('adopts its own copy on a retry, and refuses other bytes under the same key without writing over them', async () => {
    const key = `${prefix}/d-2/report.json`;
    const body = Buffer.from('{"drill":"d-2"}');
    const first = await store().put(key, body, 'application/json');
    const again = await store().put(key, body, 'application/json');
    assert.deepEqual(again.copies.map((c) => c.versionId), first.copies.map((c) => c.versionId), 'the retry wrote nothing new');
    await assert.rejects(store().put(key, Buffer.from('{"drill":"d-2","result":"passed"}'), 'application/json'), (err: unknown) => {
      assert.ok(err instanceof LifeboatError);
      assert.equal(err.code, 'EVIDENCE_CONFLICT');
      assert.match(err.message, /already holds different evidence under .*never written over; write this report under a new key\.$/);
      return true;
    });
    assert.ok((await store().verify(first)).every((c) => c.ok));
  });

  it('two attempts racing to write the same report end with one copy per region (a conditional write, not two versions)', async () => {
    const key = `${prefix}/d-5/report.json`;
    const body = Buffer.from('{"drill":"d-5"}');
    const [a, b] = await Promise.all([store().put(key, body, 'application/json'), store().put(key, body, 'application/json')]);
    assert.deepEqual(a.copies.map((c) => c.versionId), b.copies.map((c) => c.versionId));
  });

  it('keeps the recorded version when someone writes over the key or tries to delete it', async () => {
    const key = `${prefix}/d-3/report.md`;
    const body = Buffer.from('# Drill d-3\n\npassed\n');
    const receipt = await store().put(key, body, 'text/markdown');
    const [primary] = locations;
    // A later version (a direct PUT, as anyone with write access could) does not touch the recorded one.
    await primary.s3.send(new PutObjectCommand({ Bucket: primary.bucket, Key: key, Body: 'forged' }));
    // Deleting the recorded version is refused while it is under retention.
    await assert.rejects(primary.s3.send(new DeleteObjectCommand({ Bucket: primary.bucket, Key: key, VersionId: receipt.copies[0].versionId })), /object is WORM protected|AccessDenied|retention/i);
    const checks = await store().verify(receipt);
    assert.ok(checks.every((c) => c.ok), JSON.stringify(checks));
    assert.deepEqual(await store().read(receipt), body);
  });

  it('names a copy whose bytes are not the recorded ones', async () => {
    const key = `${prefix}/d-4/report.json`;
    const receipt = await store().put(key, Buffer.from('{"drill":"d-4"}'), 'application/json');
    // As if the catalog's hash and the bucket disagree: the check says which region and why.
    const forged = { ...receipt, sha256: sha256Hex(Buffer.from('something else')) };
    const checks = await store().verify(forged);
    assert.deepEqual(checks.map((c) => c.ok), [false, false]);
    assert.match(checks[0].detail, /^The copy in lifeboat-evidence-primary \(primary\) has SHA-256 [0-9a-f]{64}, not the recorded [0-9a-f]{64}: it is not the report that was written\.$/);
    await assert.rejects(store().read(forged), /No copy of .* reads back as recorded/);
  });

  it('refuses a store with no bucket or no retention, in one sentence', () => {
    assert.throws(() => new EvidenceStore([], { retentionDays: 1, mode: 'COMPLIANCE' }), /at least one bucket/);
    assert.throws(() => new EvidenceStore(locations, { retentionDays: 0, mode: 'COMPLIANCE' }), /keeps nothing; give at least 1 day/);
  });
});
