/**
 * The pure rules behind issue 12's restore leftovers: the exit code of a restore's outcome, what a
 * logical restore's row counts are compared with, the expiry of what has none, a bucket's
 * fingerprint lines, and the ids of restored buckets, databases and schemas.
 */
import assert from 'node:assert/strict';
import { outcomeExitCode } from '../src/client/restore-start';
import { rowCountBasis } from '../src/domain/logical-restore';
import { bucketFingerprintLines, expiryVerdict, removalProblem, RestoredInstance, restoredThingId } from '../src/domain/restored-instances';

describe('restore leftovers (rules)', () => {
  it('one exit code per outcome: done 0; rejected, expired, failed, cancelled 1', () => {
    for (const done of ['restored', 'restored-and-cut-over', 'passed', 'failed-over', undefined]) assert.equal(outcomeExitCode(done), 0, String(done));
    for (const not of ['rejected', 'expired', 'failed', 'verification-failed', 'cancelled', 'cutover-rejected']) assert.equal(outcomeExitCode(not), 1, not);
  });

  it('compares with the counts recorded at backup time, table by table falling back to the archive, and says which', () => {
    const archive = { 'public.a': 5, 'public.b': 7 };
    const recorded = rowCountBasis({ 'public.a': 6 }, archive);
    assert.deepEqual(recorded.expected('public.a'), { rows: 6, source: 'counted when the backup was taken' });
    assert.deepEqual(recorded.expected('public.b'), { rows: 7, source: 'in the dump' });
    assert.equal(recorded.detail('b1'), "the row counts recorded when backup b1 was taken (its snapshot); the dump's own rows for public.b, which they lack");
    const old = rowCountBasis(undefined, archive);
    assert.deepEqual(old.expected('public.a'), { rows: 5, source: 'in the dump' });
    assert.equal(old.detail('b0'), "the dump's own rows: backup b0 was taken before lifeboat recorded row counts at backup time");
  });

  const thing = (over: Partial<RestoredInstance>): RestoredInstance => ({
    instanceId: 'x',
    kind: 'instance',
    details: {},
    target: 'app',
    engine: 'pgbackrest',
    madeBy: 'drFailover',
    owner: { workflowId: 'w', runId: 'r' },
    restorePoint: 'latest',
    restoredFrom: 'the DR copies of app',
    createdAt: '2026-12-01T00:00:00.000Z',
    servedTraffic: false,
    state: 'kept',
    ...over,
  });

  it('what has no expiry is never due, and a DR instance serving traffic is never removed', () => {
    assert.equal(expiryVerdict(thing({ kind: 'dr-instance' }), Date.parse('2030-01-01T00:00:00Z'), 86_400_000).action, 'keep');
    const serving = thing({ kind: 'dr-instance', servedTraffic: true });
    assert.equal(expiryVerdict(serving, Date.now(), 0).action, 'keep');
    assert.match(removalProblem(serving, 'dr-1')!, /^dr-1 has taken traffic, and lifeboat never removes a DR instance that has: fail back first/);
    assert.match(removalProblem(thing({ kind: 'bucket', servedTraffic: true, details: { bucket: 'restore-x' } }), 'bucket:primary/restore-x')!, /never removes a bucket that has: copy what you need out of restore-x/);
  });

  it('a bucket fingerprint changes with any write, overwrite or delete, not with the listing order', () => {
    const a = { key: 'a', versionId: '1', etag: '"e1"', size: 3, lastModified: '2026-12-01T00:00:00.000Z' };
    const b = { key: 'b', versionId: '1', etag: '"e2"', size: 4, lastModified: '2026-12-01T00:00:00.000Z' };
    assert.deepEqual(bucketFingerprintLines([a, b]), bucketFingerprintLines([b, a]));
    assert.notDeepEqual(bucketFingerprintLines([a, b]), bucketFingerprintLines([a, { ...b, etag: '"e3"', lastModified: '2026-12-02T00:00:00.000Z' }]));
    assert.notDeepEqual(bucketFingerprintLines([a, b]), bucketFingerprintLines([a, b, { key: 'b', versionId: '2', deleteMarker: true }]));
    assert.notDeepEqual(bucketFingerprintLines([a, b]), bucketFingerprintLines([a]));
  });

  it('names restored buckets, databases and schemas by kind', () => {
    assert.equal(restoredThingId('bucket', { store: 'primary', bucket: 'restore-x' }), 'bucket:primary/restore-x');
    assert.equal(restoredThingId('database', { target: 'app', database: 'restored_app_1' }), 'database:app/restored_app_1');
    assert.equal(restoredThingId('schema', { target: 'app', database: 'app', schema: 'recovered_1' }), 'schema:app/app.recovered_1');
  });
});
