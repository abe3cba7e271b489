/**
 * The failback's pure parts: the no-lost-transaction verdict from the two sides' tables, the new
 * instance's name (from the run, so a retry adopts its own, within PostgreSQL's and pgBackRest's
 * limits), and the Markdown report a person reads.
 */
import assert from 'node:assert/strict';
import { failbackMarkdown, FailbackReport, noLossProof } from '../src/domain/failback';
import { failbackInstanceName } from '../src/workflows/failback';

describe('failback rules', () => {
  it('no loss only when every table has as many rows on both sides and the checksums matched', () => {
    const equal = noLossProof(
      [
        { table: 'public.app_writes', drPrimaryRows: 41, restoredRows: 41 },
        { table: 'public.orders', drPrimaryRows: 20000, restoredRows: 20000 },
      ],
      { ok: true },
    );
    assert.equal(equal.ok, true);
    assert.equal(equal.basis, 'compared');
    assert.equal(equal.detail, 'no committed transaction lost: every table holds exactly what the fenced DR primary held (public.app_writes 41/41, public.orders 20000/20000), and the checksums match');

    const short = noLossProof([{ table: 'public.app_writes', drPrimaryRows: 41, restoredRows: 40 }], { ok: true });
    assert.equal(short.ok, false);
    assert.equal(short.detail, 'DATA DIFFERS: public.app_writes has 40 rows, the fenced DR primary 41');

    const changed = noLossProof([{ table: 'public.orders', drPrimaryRows: 3, restoredRows: 3 }], { ok: false, failed: 'checksums differ for public.orders' });
    assert.equal(changed.ok, false);
    assert.equal(changed.detail, 'the verification failed: checksums differ for public.orders');
  });

  it('names the new instance from the run and the target, lower-case, at most 60 characters, starting with a letter', () => {
    assert.equal(failbackInstanceName('failback-2026-11-30T10-00-00-000z', 'app'), 'failback-2026-11-30t10-00-00-000z-app');
    assert.equal(failbackInstanceName('2026_run', 'App'), 'fb-2026-run-app');
    const long = failbackInstanceName(`failback-${'x'.repeat(80)}`, 'app');
    assert.ok(long.length <= 60 && !long.endsWith('-'), long);
    assert.equal(failbackInstanceName('failback-1', 'app'), failbackInstanceName('failback-1', 'app'));
  });

  it('the Markdown report says the outcome, the write outage, the proof and each name', () => {
    const report: FailbackReport = {
      workflowId: 'failback-1',
      failoverId: 'failover-1',
      outcome: 'failed-back',
      requestedBy: 'dave@example.com',
      reason: 'primary region back',
      startedAt: '2026-11-30T10:00:00.000Z',
      finishedAt: '2026-11-30T10:09:00.000Z',
      writeOutageSeconds: 75,
      databases: [
        {
          target: 'app',
          drInstanceId: 'failover-1-restore-app-db',
          restoredInstanceId: 'failback-1-app',
          restoredEndpoint: { host: '127.0.0.1', port: 55441 },
          proof: noLossProof([{ table: 'public.app_writes', drPrimaryRows: 2, restoredRows: 2 }], { ok: true }),
          names: [{ name: 'db.app.lifeboat.test.', from: '127.0.0.1:55440', to: '127.0.0.1:55441', state: 'moved', detail: 'reaches the restored instance' }],
          retired: 'retired failover-1-restore-app-db',
          seconds: {},
        },
      ],
      decisions: [],
      notes: [],
      cleanup: [],
    };
    const md = failbackMarkdown(report);
    assert.match(md, /^# Failback failback-1: FAILED-BACK\n/);
    assert.match(md, /^- Write outage \(DR primary fenced until the application answered from the primary region\): 1 min 15 s$/m);
    assert.match(md, /^- Proof: no committed transaction lost: /m);
    assert.match(md, /^- Name db\.app\.lifeboat\.test\.: 127\.0\.0\.1:55440 -> 127\.0\.0\.1:55441 \(moved\): reaches the restored instance$/m);
  });
});
