/**
 * How lifeboat reads a pgBackRest 2.45 backup.manifest to verify one set: which objects hold
 * which files, what it cannot read itself, which WAL segments the set needs. The manifest lines
 * are as pgBackRest 2.45 wrote them on the local stack (zstd, bundles, an incremental set).
 * Reading them back from a real repository is tested in pgbackrest-engine and database-backup.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describeSetCheck, parseManifest, segmentsBetween, storedObjects, unreadableReason, walDirsBetween } from '../src/engines/pgbackrest/set-check';

const EMPTY_SHA1 = createHash('sha1').digest('hex');

const INCR = `[backrest]
backrest-format=5
backrest-version="2.45"

[backup]
backup-archive-start="00000001000000000000000B"
backup-archive-stop="00000001000000000000000B"
backup-bundle=true
backup-label="20261201-002349F_20261201-002357I"
backup-prior="20261201-002349F_20261201-002352I"
backup-reference="20261201-002349F,20261201-002349F_20261201-002352I,20261201-002349F_20261201-002357I"
backup-type="incr"

[backup:option]
option-compress=true
option-compress-type="zst"

[target:file]
pg_data/PG_VERSION={"bni":1,"bno":55773,"checksum":"587b596f04f7db9c2cad3d6b87dd2b3a05de4f35","rck":"c763f3304da14f884b9fd5d320f41e8a2a8d0eb4","reference":"20261201-002349F","repo-size":12,"size":3,"timestamp":1796084529}
pg_data/backup_label={"checksum":"e6fd8753fb82e0b2c0bd808a7cd018c7011b23a4","rck":"56c0ffbd5bc778fb72bf6ae07a86361265af1c54","repo-size":185,"size":258,"timestamp":1796084539}
pg_data/base/1/112={"bni":1,"bno":55716,"checksum":"9890dd22d170e0de4f4d9404aba2557a33b9909b","checksum-page":true,"rck":"b0385de006a65525550a13833c459417fb0baabf","reference":"20261201-002349F","repo-size":57,"size":8192,"timestamp":1796084529}
pg_data/base/1/13394={"checksum-page":true,"size":0,"timestamp":1796084529}
pg_data/base/16384/16390={"bni":1,"bno":311,"checksum":"0631457264ff7f8d5fb1edc2c0211992a67c73e6","rck":"e95aae39072ba1781c6fcd8cf81d1c0b8e819781","repo-size":18,"size":8192,"timestamp":1796084555}
pg_data/global/pg_control={"bni":1,"checksum":"71cba3da935791f93afc8535cc075d1f61a6fe12","rck":"ed9ab1da1f55cc02ceea776956f7eb163896caf5","repo-size":813,"size":8192,"timestamp":1796084556}
pg_data/pg_xact/0000={"bni":2,"bno":194706,"checksum":"da359662aa2791a7d22e4e6dbf248242f8482cc0","rck":"049b85ff62ac6390fb795515323e7b299be69555","reference":"20261201-002349F_20261201-002352I","repo-size":23,"size":8192,"timestamp":1796084538}

[target:file:default]
group="postgres"
mode="0600"
user="postgres"

[backrest]
backrest-checksum="4b0c9e4cd1d7f6d3f43a8d1c0e3b5a6f7e8d9c0b"
`;

describe('pgBackRest set check: reading a backup.manifest', () => {
  it('reads the label, the WAL range, the compression and every file with its sizes and checksums', () => {
    const m = parseManifest(INCR);
    assert.equal(m.label, '20261201-002349F_20261201-002357I');
    assert.equal(m.archiveStart, '00000001000000000000000B');
    assert.equal(m.archiveStop, '00000001000000000000000B');
    assert.equal(m.compressType, 'zst');
    assert.equal(m.bundle, true);
    assert.equal(m.encrypted, false);
    assert.equal(m.files.length, 7);
    assert.deepEqual(m.files[0], {
      name: 'pg_data/PG_VERSION',
      size: 3,
      checksum: '587b596f04f7db9c2cad3d6b87dd2b3a05de4f35',
      reference: '20261201-002349F',
      bundleId: 1,
      bundleOffset: 55773,
      repoSize: 12,
      repoChecksum: 'c763f3304da14f884b9fd5d320f41e8a2a8d0eb4',
      blockIncremental: false,
    });
    // An empty file has no checksum in the manifest: its content's is the empty SHA-1.
    assert.equal(m.files.find((f) => f.name === 'pg_data/base/1/13394')?.checksum, EMPTY_SHA1);
    // The first file of a bundle has no bno: offset 0.
    assert.equal(m.files.find((f) => f.name === 'pg_data/global/pg_control')?.bundleOffset, 0);
    assert.equal(unreadableReason(m), undefined);
  });

  it('groups the files into the objects that store them: bundles of this set and of the sets it reuses, by offset', () => {
    const { objects, notStored } = storedObjects(parseManifest(INCR), 'app');
    const byPath = new Map(objects.map((o) => [o.path, o.pieces.map((p) => [p.file.name, p.offset, p.length])]));
    assert.deepEqual(Object.fromEntries(byPath), {
      'backup/app/20261201-002349F/bundle/1': [
        ['pg_data/base/1/112', 55716, 57],
        ['pg_data/PG_VERSION', 55773, 12],
      ],
      'backup/app/20261201-002349F_20261201-002357I/pg_data/backup_label.zst': [['pg_data/backup_label', 0, 185]],
      'backup/app/20261201-002349F_20261201-002357I/bundle/1': [
        ['pg_data/global/pg_control', 0, 813],
        ['pg_data/base/16384/16390', 311, 18],
      ],
      'backup/app/20261201-002349F_20261201-002352I/bundle/2': [['pg_data/pg_xact/0000', 194706, 23]],
    });
    // A bundled set stores no empty file at all.
    assert.deepEqual(notStored.map((f) => f.name), ['pg_data/base/1/13394']);
  });

  it('stores every file on its own, empty ones too, in a set taken without bundles', () => {
    const unbundled = INCR.replace('backup-bundle=true', 'backup-bundle=false').replace(/"bni":\d+,("bno":\d+,)?/g, '');
    const { objects, notStored } = storedObjects(parseManifest(unbundled), 'app');
    assert.equal(notStored.length, 0);
    assert.equal(objects.length, 7);
    assert.ok(objects.some((o) => o.path === 'backup/app/20261201-002349F/pg_data/PG_VERSION.zst'));
    assert.ok(objects.some((o) => o.path === 'backup/app/20261201-002349F_20261201-002357I/pg_data/base/1/13394.zst'));
  });

  it('says why it cannot read a set itself: an encrypted repository, block-incremental files, an unknown compression', () => {
    const encrypted = INCR.replace('[target:file]', '[cipher]\ncipher-pass="c2VjcmV0cGFzcw"\n\n[target:file]');
    assert.equal(unreadableReason(parseManifest(encrypted)), 'the repository is encrypted');
    const block = INCR.replace('"checksum":"da359662', '"bi":1,"bim":96,"checksum":"da359662');
    assert.equal(unreadableReason(parseManifest(block)), 'it holds block-incremental files');
    assert.match(unreadableReason(parseManifest(INCR.replace('option-compress-type="zst"', 'option-compress-type="xz"'))) ?? '', /compression type xz/);
    // Before compress-type existed, compress=y meant gzip.
    assert.equal(parseManifest(INCR.replace('option-compress-type="zst"\n', '')).compressType, 'gz');
  });

  it('refuses a text that is not a manifest, or a file entry without size', () => {
    assert.throws(() => parseManifest('[backup]\nbackup-type="full"\n'), /no backup-label/);
    assert.throws(() => parseManifest(INCR.replace('"size":3,', '')), /pg_data\/PG_VERSION has no size or checksum/);
  });
});

describe('pgBackRest set check: the WAL a set needs', () => {
  it('lists every segment from archive start to stop, across a log boundary', () => {
    assert.deepEqual(segmentsBetween('00000001000000000000000B', '00000001000000000000000B', []), ['00000001000000000000000B']);
    assert.deepEqual(segmentsBetween('0000000200000003000000FE', '000000020000000400000001', []), [
      '0000000200000003000000FE',
      '0000000200000003000000FF',
      '000000020000000400000000',
      '000000020000000400000001',
    ]);
    assert.deepEqual(walDirsBetween('0000000200000003000000FE', '000000020000000400000001'), ['0000000200000003', '0000000200000004']);
  });
});

describe('pgBackRest set check: what it reports', () => {
  const base = { files: 1294, objects: 5, bytes: 38258097, referenced: ['20261201-002349F'], walSegments: 1 };

  it('names what it read, and the sets whose files it reused', () => {
    assert.equal(
      describeSetCheck({ ...base, problems: [] }, '20261201-002349F_20261201-002352I', 'repo1 (primary)'),
      'Read the 1294 files of 20261201-002349F_20261201-002352I (with the files it reuses from 20261201-002349F) back from repo1 (primary), 36.5 MiB in 5 objects, and found each of the size and SHA-1 its manifest records; the 1 WAL segment it needs to be consistent is archived and valid.',
    );
  });

  it('says when its WAL check began at the previous backup, so the WAL between two backups is checked once', () => {
    assert.equal(
      describeSetCheck({ ...base, referenced: [], walSegments: 3, walSince: '000000010000000000000004', problems: [] }, '20261201-002349F', 'repo2 (dr)'),
      "Read the 1294 files of 20261201-002349F back from repo2 (dr), 36.5 MiB in 5 objects, and found each of the size and SHA-1 its manifest records; the 3 WAL segments from the previous backup's end (000000010000000000000004) to its own, which point-in-time restores between them replay, are archived and valid.",
    );
  });

  it('names the damaged files first, at most three, and what to do', () => {
    const problems = ['a', 'b', 'c', 'd'].map((n) => ({ what: `pg_data/${n}`, detail: 'is stored in backup/app/X/bundle/1 with SHA-1 1 where the manifest records 2' }));
    const detail = describeSetCheck({ ...base, problems }, 'X', 'repo1 (primary)');
    assert.match(detail, /^X is damaged in repo1 \(primary\): pg_data\/a is stored in .*; pg_data\/c is stored in .*; and 1 more problems\. Take a new backup, and restore from another one meanwhile\.$/);
  });
});
