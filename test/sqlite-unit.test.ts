/**
 * SQLite targets, the parts that need no server: the config's rules for `targets.sqlite`, the
 * restore's destination rules and temporary file, the checks a restore and a read-back make
 * (integrity_check's answer, row counts against the backup's), and the encryption binding.
 * The engine's own parts run against the real `sqlite3` shell in a scratch directory.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError, parseConfig } from '../src/config';
import { compareTableCounts, destinationProblem, integrityCheck, normalizePath, restoreMarker, restoreTempPath, sqliteBackupKey, sqliteBinding } from '../src/domain/sqlite';
import { bindingText } from '../src/engines/crypto-stream';
import { countRows, snapshot, sqliteFileProblem } from '../src/engines/sqlite';
import { destinationProblemOnHost } from '../src/activities/sqlite';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawDoc = Record<string, any>;

function config(sqlite: RawDoc[]): RawDoc {
  return {
    version: 1,
    environments: { production: { tier: 'production' } },
    people: { 'alice@example.com': ['incident-commander', 'backup-owner'], 'bob@example.com': ['incident-commander', 'data-owner'], 'erin@example.com': ['incident-commander'] },
    catalog: { host: 'catalog.internal' },
    evidence: { store: 'eu', bucket: 'acme-evidence' },
    objectStores: [
      { name: 'eu', region: 'eu-west-1' },
      { name: 'eu2', region: 'eu-west-1' },
      { name: 'us', region: 'us-east-1' },
    ],
    targets: { sqlite },
  };
}

const target = (extra: RawDoc = {}): RawDoc => ({
  name: 'shop-db',
  environment: 'production',
  path: '/var/lib/shop/shop.db',
  store: 'eu',
  bucket: 'acme-backups',
  encryptionKey: { secretRef: 'file:/etc/lifeboat/sqlite.key' },
  dr: { store: 'us', bucket: 'acme-backups-dr' },
  ...extra,
});

function problemsOf(doc: RawDoc): string[] {
  try {
    parseConfig(YAML.stringify(doc), 'test.yaml', { dataDir: '/srv/lifeboat-test' });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return assert.fail('the config was accepted');
}

describe('SQLite targets (unit)', () => {
  describe('config', () => {
    it('accepts a SQLite target alone, with its defaults (prefix sqlite/, no schedule)', () => {
      const c = parseConfig(YAML.stringify(config([target()])), 'test.yaml', { dataDir: '/srv/lifeboat-test' });
      assert.equal(c.targets.sqlite.length, 1);
      assert.equal(c.targets.sqlite[0].prefix, 'sqlite/');
      assert.equal(c.targets.sqlite[0].schedule, undefined);
      assert.deepEqual(c.targets.databases, []);
    });

    it('refuses a DR copy in the same region, a file declared twice, a relative path and a name another target has', () => {
      assert.deepEqual(problemsOf(config([target({ dr: { store: 'eu2', bucket: 'x-dr' } })])), ['targets.sqlite[0].dr.store: is in region eu-west-1 like store: a copy in the same region does not survive losing it']);
      assert.deepEqual(problemsOf(config([target(), target({ name: 'shop-db-2' })])), ['targets.sqlite[1].path: is the file of targets.sqlite[0] (shop-db) too: declare each database file once']);
      assert.ok(problemsOf(config([target({ path: 'shop.db' })])).some((p) => p.startsWith('targets.sqlite[0].path:')));
      assert.ok(problemsOf(config([target(), target({ path: '/other.db' })])).some((p) => p.startsWith('targets.sqlite[1].name:')));
    });

    it('takes a schedule of its own, with its defaults', () => {
      const c = parseConfig(YAML.stringify(config([target({ schedule: { daysOfWeek: ['monday'] } })])), 'test.yaml', { dataDir: '/srv/lifeboat-test' });
      assert.equal(c.targets.sqlite[0].schedule?.enabled, true);
      assert.deepEqual(c.targets.sqlite[0].schedule?.daysOfWeek, ['monday']);
    });
  });

  describe('restore destination', () => {
    const source = '/var/lib/shop/shop.db';
    it('refuses a relative path, a directory, the source and its companion files, in one sentence each', () => {
      assert.match(destinationProblem('restored.db', source)!, /^--into restored\.db is not an absolute path: give the full path of a new file, such as \/var\/lib\/shop\/restored-shop\.db\.$/);
      assert.match(destinationProblem('/tmp/', source)!, /names a directory/);
      assert.match(destinationProblem('/var/lib/shop/../shop/./shop.db', source)!, /is the source database of this target: a restore never writes over its source/);
      assert.match(destinationProblem('/var/lib/shop/shop.db-wal', source)!, /companion file/);
      assert.equal(destinationProblem('/var/lib/shop/shop-before-migration.db', source), undefined);
    });

    it('names the temporary file after the run, beside the destination, hidden', () => {
      const tmp = restoreTempPath('/var/lib/shop/restored.db', 'restore-sqlite-shop-db-2026/12/01');
      assert.equal(tmp, `/var/lib/shop/.restored.db.${restoreMarker('restore-sqlite-shop-db-2026/12/01')}.tmp`);
      assert.equal(restoreMarker('a b/c'), 'lifeboat-restore-a-b-c');
      assert.equal(normalizePath('/a/./b/../c//d'), '/a/c/d');
    });

    it('checks on the host: a missing directory, an existing file or companion, the source through a link', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-sqlite-unit-'));
      try {
        const src = path.join(dir, 'src.db');
        fs.writeFileSync(src, '');
        fs.symlinkSync(dir, path.join(dir, 'link'));
        assert.match((await destinationProblemOnHost(path.join(dir, 'nope', 'x.db'), src))!, /which is not an existing directory/);
        fs.writeFileSync(path.join(dir, 'taken.db-wal'), '');
        assert.match((await destinationProblemOnHost(path.join(dir, 'taken.db'), src))!, /already exists \(as taken\.db-wal\)/);
        assert.match((await destinationProblemOnHost(path.join(dir, 'link', 'src.db'), src))!, /is the source database of this target/);
        assert.equal(await destinationProblemOnHost(path.join(dir, 'new.db'), src), undefined);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('checks', () => {
    it('counts: equal, different, missing and unexpected tables each say so', () => {
      const checks = compareTableCounts({ orders: 3, items: 9, gone: 1 }, { orders: 3, items: 8, extra: 2 });
      assert.deepEqual(checks, [
        { name: 'rows in gone', ok: false, detail: 'the table is missing (the backup recorded 1 rows)' },
        { name: 'rows in items', ok: false, detail: '8, but 9 at backup time' },
        { name: 'rows in orders', ok: true, detail: '3, as at backup time' },
        { name: 'rows in extra', ok: false, detail: 'the table was not in the backup\'s records (2 rows)' },
      ]);
    });

    it('integrity_check passes only on a lone "ok"', () => {
      assert.deepEqual(integrityCheck('ok\n'), { name: 'integrity_check', ok: true, detail: 'ok' });
      assert.equal(integrityCheck('').ok, false);
      const bad = integrityCheck('*** in database main ***\nPage 5: btreeInitPage() returns error code 11\nok\n');
      assert.equal(bad.ok, false);
      assert.match(bad.detail, /btreeInitPage/);
    });

    it('binds each object to kind sqlite, its target and backup; keys end in .sqlite.gz.enc', () => {
      assert.equal(bindingText(sqliteBinding('shop-db', 'b1')), 'kind=sqlite\ntarget=shop-db\nbackup=b1');
      assert.equal(bindingText({ target: 'app', backupName: 'b1' }), 'kind=logical-dump\ntarget=app\nbackup=b1', 'logical dumps keep their binding');
      assert.equal(sqliteBackupKey('sqlite/', 'shop-db', 'b1'), 'sqlite/shop-db/b1.sqlite.gz.enc');
    });
  });

  describe('engine on the real sqlite3 shell', () => {
    let dir: string;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-sqlite-engine-'))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('copies with the backup API, checks and counts the copy; refuses what is not a database', async () => {
      const src = path.join(dir, 'weird name.db');
      execFileSync('sqlite3', [src, 'PRAGMA journal_mode=WAL', 'CREATE TABLE "odd ""name"" t" (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO \"odd \"\"name\"\" t\" (v) VALUES ('a'), ('b'), ('c')", 'CREATE TABLE empty (x)']);
      const facts = await snapshot(src, path.join(dir, 'copy.db'));
      assert.equal(facts.integrity, 'ok');
      assert.equal(facts.journalMode, 'wal');
      assert.deepEqual(facts.tables, { empty: 0, 'odd "name" t': 3 });
      assert.deepEqual(await countRows(path.join(dir, 'copy.db')), facts.tables);
      assert.equal(facts.databaseBytes, fs.statSync(path.join(dir, 'copy.db')).size);
      fs.writeFileSync(path.join(dir, 'text.db'), 'not a database at all, just text');
      assert.equal(await sqliteFileProblem(path.join(dir, 'text.db')), `${path.join(dir, 'text.db')} is not a SQLite database (its first bytes are not "SQLite format 3")`);
      assert.equal(await sqliteFileProblem(path.join(dir, 'missing.db')), `${path.join(dir, 'missing.db')} does not exist`);
      await assert.rejects(snapshot(path.join(dir, 'text.db'), path.join(dir, 'copy2.db')), /is not a SQLite database/);
    });
  });
});
