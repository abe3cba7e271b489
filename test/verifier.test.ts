/**
 * The verifier on the real primary, in a scratch database: range checksums that see one changed
 * row wherever it is and do not care about row order or primary keys, empty critical tables,
 * facts compared only when they describe the same state, and smoke queries that cannot write,
 * cannot chain statements and never run as a superuser.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { createPorts } from '../src/activities/ports';
import { restoreActivities } from '../src/activities/restore';
import { LifeboatError } from '../src/domain/errors';
import { comparability, DatabaseFacts } from '../src/domain/verification';
import { captureFacts, DatabaseEndpoint, runSmokeQuery, snapshotFacts, tableFacts, VerificationProgress, verifyDatabase } from '../src/engines/verifier';
import { VERIFY_ROLE } from '../src/stack/sample-app';
import { loadStackSettings } from '../src/stack/settings';
import { derivedConfig } from './helpers/scratch';
import { useStack } from './helpers/stack';

const settings = loadStackSettings();
const database = `lb_verify_${randomBytes(4).toString('hex')}`;
/** Tens of MB: well past one range at the small range size below, quick enough for CI. */
const ROWS = Number(process.env.LIFEBOAT_TEST_VERIFY_ROWS || 150_000);
const PAGES_PER_RANGE = 256;

const endpoint = (user: string): DatabaseEndpoint => ({ host: settings.host, port: settings.postgres.primaryPort, database, user });
const asVerifier = endpoint(VERIFY_ROLE);
const asSuperuser = endpoint(settings.postgres.superuser);

async function withPg<T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database: db });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const sql = (text: string) => withPg(database, (c) => c.query(text));
const factsOf = (table: string, onProgress?: (p: VerificationProgress) => void) => withPg(database, (c) => tableFacts(c, table, { pagesPerRange: PAGES_PER_RANGE, onProgress }));

describe('verifier (bounded checksums, source facts, read-only smoke queries)', function () {
  this.timeout(10 * 60 * 1000);

  before(async () => {
    await useStack();
    await withPg('app', (c) => c.query(`CREATE DATABASE ${database}`));
    // `big` has a primary key; `shuffled` holds the same rows written in another order, so
    // their rows sit on other pages; `bag` has no key and duplicate rows.
    await sql(`CREATE TABLE big (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL, amount numeric(12,2), payload text NOT NULL)`);
    await sql(
      `INSERT INTO big SELECT i, timestamptz '2026-01-01 00:00:00+00' + i * interval '7 seconds', (i % 10007) / 7.0, repeat(md5(i::text), 5) FROM generate_series(1, ${ROWS}) AS i`,
    );
    await sql(`CREATE TABLE shuffled (LIKE big INCLUDING ALL)`);
    await sql(`INSERT INTO shuffled SELECT * FROM big ORDER BY md5(id::text)`);
    await sql(`CREATE TABLE bag (label text, n int)`);
    await sql(`INSERT INTO bag SELECT 'row-' || (i % 500), i % 7 FROM generate_series(1, 5000) AS i`);
    await sql(`CREATE TABLE bag_copy AS SELECT * FROM bag ORDER BY n DESC, label`);
    await sql(`CREATE TABLE nothing (id int PRIMARY KEY)`);
    await sql(`CREATE SEQUENCE counter`);
    // No autovacuum or autoanalyze later: they would assign transaction ids mid-test.
    await sql(`ANALYZE`);
  });

  after(async () => {
    await withPg('app', (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  });

  it('checksums a table of tens of MB in many page ranges, heartbeating rows done, and equal contents in another order match', async () => {
    const size = Number((await sql(`SELECT pg_total_relation_size('big') AS b`)).rows[0].b);
    assert.ok(size > 30 * 1024 * 1024, `big is ${size} bytes`);
    const progress: VerificationProgress[] = [];
    const big = await factsOf('big', (p) => progress.push(p));
    const shuffled = await factsOf('shuffled');
    assert.equal(big.rows, ROWS);
    assert.match(big.checksum, /^h64:[0-9a-f]{16}$/);
    assert.deepEqual({ ...shuffled, table: 'big' }, big, 'same rows, other pages: same checksum');

    const ranges = progress.filter((p) => p.rowsDone! > 0);
    assert.ok(ranges.length > 10, `${ranges.length} ranges reported`);
    assert.ok(ranges.every((p, i) => i === 0 || p.rowsDone! >= ranges[i - 1].rowsDone!), 'rows done only grow');
    const last = progress[progress.length - 1];
    assert.equal(last.rowsDone, ROWS);
    assert.equal(last.pagesDone, last.pages);
    assert.equal(last.table, 'big');
  });

  it('sees one changed row in the first, a middle and the last range, and matches again once it is put back', async () => {
    const reference = await factsOf('big');
    const positions = (await sql(`SELECT min(id) AS first, max(id) AS last FROM big`)).rows[0] as { first: string; last: string };
    for (const id of [positions.first, String(Math.floor(ROWS / 2)), positions.last]) {
      await sql(`UPDATE shuffled SET amount = amount + 0.01 WHERE id = ${id}`);
      const changed = await factsOf('shuffled');
      assert.equal(changed.rows, reference.rows);
      assert.notEqual(changed.checksum, reference.checksum, `row ${id} changed`);
      await sql(`UPDATE shuffled SET amount = amount - 0.01 WHERE id = ${id}`);
      assert.equal((await factsOf('shuffled')).checksum, reference.checksum, `row ${id} put back`);
    }
  });

  it('checksums a table without a primary key as a multiset: order does not matter, a duplicate does', async () => {
    const bag = await factsOf('bag');
    assert.equal((await factsOf('bag_copy')).checksum, bag.checksum);
    await sql(`INSERT INTO bag_copy VALUES ('row-1', 1)`);
    const more = await factsOf('bag_copy');
    assert.equal(more.rows, bag.rows + 1);
    assert.notEqual(more.checksum, bag.checksum);
    // Same count, one duplicate replaced by another row: the checksum still differs.
    await sql(`DELETE FROM bag_copy WHERE ctid = (SELECT ctid FROM bag_copy WHERE label = 'row-2' AND n = 2 LIMIT 1)`);
    const swapped = await factsOf('bag_copy');
    assert.equal(swapped.rows, bag.rows);
    assert.notEqual(swapped.checksum, bag.checksum);
    await sql(`DELETE FROM bag_copy WHERE ctid = (SELECT ctid FROM bag_copy WHERE label = 'row-1' AND n = 1 LIMIT 1)`);
    await sql(`INSERT INTO bag_copy VALUES ('row-2', 2)`);
    assert.equal((await factsOf('bag_copy')).checksum, bag.checksum);
  });

  it('stops between ranges when cancelled', async () => {
    const abort = new AbortController();
    await assert.rejects(
      withPg(database, (c) => tableFacts(c, 'big', { pagesPerRange: PAGES_PER_RANGE, signal: abort.signal, onProgress: (p) => p.rowsDone && abort.abort() })),
      /checksum of big cancelled after \d+ rows/,
    );
  });

  it('fails an empty critical table and one it cannot read, naming each', async () => {
    const report = await verifyDatabase(asVerifier, { criticalTables: ['big', 'nothing', 'missing'], smokeQueries: [] });
    assert.equal(report.ok, false);
    const check = (name: string) => report.checks.find((c) => c.name === name);
    assert.equal(check('table big')?.ok, true);
    assert.match(check('table big')!.detail, new RegExp(`^${ROWS} rows, checksum h64:`));
    assert.equal(check('table nothing')?.ok, false);
    assert.match(check('table nothing')!.detail, /^empty: a critical table without rows means lost data/);
    assert.equal(check('table missing')?.ok, false);
    assert.match(check('table missing')!.detail, /cannot read it: relation "missing" does not exist/);
  });

  it('compares with source facts taken at the same state: identical passes, a different table fails by name', async () => {
    const source = await captureFacts(asVerifier, ['big', 'bag']);
    assert.equal(source.inProgress, 0);
    const same = await verifyDatabase(asVerifier, { criticalTables: ['big', 'bag'], smokeQueries: [], expected: { available: true, facts: source } });
    assert.deepEqual(
      same.checks.filter((c) => c.name.startsWith('table') || c.name.startsWith('compared')),
      [
        { name: 'table big', ok: true, detail: `${ROWS} rows, identical to the source (checksum ${source.tables[0].checksum})` },
        { name: 'table bag', ok: true, detail: `5000 rows, identical to the source (checksum ${source.tables[1].checksum})` },
        { name: 'compared with the source', ok: true, detail: `every critical table identical to the source at ${source.takenAt}` },
      ],
    );
    assert.equal(same.ok, true, JSON.stringify(same.checks));

    // A source whose `bag` held bag_copy's rows (one row fewer) at this very state.
    await sql(`DELETE FROM bag_copy WHERE ctid = (SELECT ctid FROM bag_copy LIMIT 1)`);
    const now = await withPg(database, (c) => snapshotFacts(c, ['big', 'bag_copy']));
    const sourceFacts: DatabaseFacts = { ...now.facts, tables: [now.facts.tables[0], { ...now.facts.tables[1], table: 'bag' }] };
    const differs = await verifyDatabase(asVerifier, { criticalTables: ['big', 'bag'], smokeQueries: [], expected: { available: true, facts: sourceFacts } });
    assert.equal(differs.ok, false);
    assert.equal(differs.checks.find((c) => c.name === 'table big')?.ok, true);
    assert.match(differs.checks.find((c) => c.name === 'table bag')!.detail, /^5000 rows where the source had 4999 \(checksum h64:[0-9a-f]{16}, the source's h64:[0-9a-f]{16}\)$/);
    assert.deepEqual(differs.checks.find((c) => c.name === 'compared with the source'), { name: 'compared with the source', ok: false, detail: `bag differ from the source's facts taken at ${sourceFacts.takenAt}` });
  });

  it('does not compare facts of another state, and says why', async () => {
    const before = await captureFacts(asVerifier, ['bag']);
    await sql(`INSERT INTO bag VALUES ('late', 1)`);
    const report = await verifyDatabase(asVerifier, { criticalTables: ['bag'], smokeQueries: [], expected: { available: true, facts: before } });
    assert.equal(report.ok, true, JSON.stringify(report.checks));
    const compared = report.checks.find((c) => c.name === 'compared with the source')!;
    assert.match(compared.detail, /^not possible: the source committed transactions after its facts were taken/);
    assert.match(report.checks.find((c) => c.name === 'table bag')!.detail, /^5001 rows, checksum/);

    const unavailable = await verifyDatabase(asVerifier, { criticalTables: ['bag'], smokeQueries: [], expected: { available: false, reason: 'the source did not answer' } });
    assert.deepEqual(unavailable.checks.find((c) => c.name === 'compared with the source'), { name: 'compared with the source', ok: true, detail: 'not possible: the source did not answer' });
  });

  it('decides comparability from running transactions, transaction ids and recent commits', () => {
    const at = (xmax: string, recentCommitted: number, inProgress = 0): DatabaseFacts => ({ takenAt: '2026-11-30T00:00:00.000Z', xmax, inProgress, recentCommitted, tables: [] });
    assert.deepEqual(comparability(at('1000', 990), at('1000', 990)), { comparable: true });
    assert.match((comparability(at('1000', 990, 2), at('1000', 990)) as { reason: string }).reason, /^2 transaction\(s\) were running on the source/);
    assert.match((comparability(at('1000', 990), at('1003', 993)) as { reason: string }).reason, /committed transactions after its facts were taken \(transaction ids 1000 to 1003\)/);
    assert.match((comparability(at('1000', 990), at('998', 988)) as { reason: string }).reason, /ends before the moment the source's facts were taken \(transaction ids 998 to 1000 missing\)/);
    // Same xmax (a checkpoint carried it), but a commit record never replayed: that transaction shows as aborted on the copy.
    assert.match((comparability(at('1000', 990), at('1000', 989)) as { reason: string }).reason, /\(1 committed transaction\(s\) missing\): the source's latest WAL was not archived yet$/);
  });

  it('runs smoke queries as the verify role, never a superuser', async () => {
    const whoAmI = { name: 'who', sql: `SELECT 1 FROM pg_roles WHERE rolname = current_user AND current_user = '${VERIFY_ROLE}' AND NOT rolsuper` };
    const report = await verifyDatabase(asVerifier, { criticalTables: ['big'], smokeQueries: [whoAmI] });
    assert.deepEqual(report.checks.find((c) => c.name === 'verification role'), { name: 'verification role', ok: true, detail: `${VERIFY_ROLE}, not a superuser` });
    assert.deepEqual(report.checks.find((c) => c.name === 'smoke query who'), { name: 'smoke query who', ok: true, detail: '1 rows' });
    assert.equal(report.ok, true, JSON.stringify(report.checks));

    const asRoot = await verifyDatabase(asSuperuser, { criticalTables: ['big'], smokeQueries: [whoAmI] });
    assert.equal(asRoot.ok, false);
    assert.match(asRoot.checks.find((c) => c.name === 'verification role')!.detail, new RegExp(`^connected as ${settings.postgres.superuser}, a superuser, who could write: give verification a role that can only read`));
    assert.deepEqual(asRoot.checks.find((c) => c.name === 'smoke query who'), { name: 'smoke query who', ok: false, detail: `not run: ${settings.postgres.superuser} is a superuser` });
  });

  it('fails a smoke query that writes, even one that slipped past the config, and the data stays', async () => {
    const rows = async () => Number((await sql(`SELECT count(*) AS n FROM big`)).rows[0].n);
    const report = await verifyDatabase(asVerifier, {
      criticalTables: ['big'],
      smokeQueries: [
        { name: 'sneaky-delete', sql: 'WITH gone AS (DELETE FROM big RETURNING id) SELECT count(*) FROM gone' },
        { name: 'sneaky-sequence', sql: `SELECT nextval('counter')` },
      ],
    });
    assert.equal(report.ok, false);
    // PostgreSQL names the statement's top level: a SELECT whose CTE deletes.
    assert.deepEqual(report.checks.find((c) => c.name === 'smoke query sneaky-delete'), { name: 'smoke query sneaky-delete', ok: false, detail: 'cannot execute SELECT in a read-only transaction' });
    assert.equal(report.checks.find((c) => c.name === 'smoke query sneaky-sequence')?.ok, false);
    assert.equal(await rows(), ROWS);
    // The read-only transaction alone holds, even for a role that could write.
    await assert.rejects(
      withPg(database, (c) => runSmokeQuery(c, 'DELETE FROM big')),
      /^error: cannot execute DELETE in a read-only transaction$/,
    );
    assert.equal(await rows(), ROWS);
  });

  it('refuses a smoke query with a second statement (extended protocol), and the second never runs', async () => {
    const report = await verifyDatabase(asVerifier, { criticalTables: ['big'], smokeQueries: [{ name: 'two', sql: 'SELECT 1; SELECT 2' }] });
    assert.deepEqual(report.checks.find((c) => c.name === 'smoke query two'), { name: 'smoke query two', ok: false, detail: 'cannot insert multiple commands into a prepared statement' });
    await assert.rejects(
      withPg(database, (c) => runSmokeQuery(c, 'SELECT 1; DROP TABLE big')),
      /cannot insert multiple commands into a prepared statement/,
    );
    assert.equal(Number((await sql(`SELECT count(*) AS n FROM big`)).rows[0].n), ROWS);
  });

  it('refuses, without retrying, a verify role that cannot log in, naming it and the fix', async () => {
    const ports = createPorts(derivedConfig((doc) => (doc.targets.databases[0].verifyUser = 'lifeboat_nobody')));
    try {
      const instance = { instanceId: 'the-primary', status: 'available', createdByLifeboat: false, endpoint: { host: settings.host, port: settings.postgres.primaryPort } };
      await assert.rejects(new MockActivityEnvironment().run(restoreActivities(ports).verifyRestoredInstance, 'app', instance), (err: unknown) => {
        assert.ok(err instanceof LifeboatError, String(err));
        assert.equal(err.code, 'VERIFY_ROLE_UNUSABLE');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /^verification cannot log in to the-primary as lifeboat_nobody \(role "lifeboat_nobody" does not exist\): create that role on the source \(CREATE ROLE lifeboat_nobody LOGIN; GRANT pg_read_all_data TO lifeboat_nobody\) or set verifyUser in the config\.$/);
        return true;
      });
    } finally {
      await ports.close();
    }
  });
});
