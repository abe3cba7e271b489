/**
 * The directory archive format (lifeboat-dir-v1) on real files: a tree with modes, owners, a
 * symlink and an empty directory is scanned, archived, encrypted and decrypted, extracted into a
 * new directory and compared entry by entry; a changed file, a damaged archive, a path leaving
 * the directory and an archive bound to another backup are refused.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { DirectoryManifest } from '../src/domain/directory-backup';
import { prepareDirectoryRestore } from '../src/client/directory-commands';
import { derivedConfig } from './helpers/scratch';
import { archiveStream, checkArchive, compareTree, DIRECTORY_ARCHIVE_FORMAT, extractArchive, isSafeRelative, manifestSha256, readManifest, scanDirectory } from '../src/engines/directory-archive';
import { createDecryptStream, createEncryptStream, keyIdOf } from '../src/engines/crypto-stream';

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('directory archive (lifeboat-dir-v1)', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-dirarch-'));
  const src = path.join(root, 'etc-app');
  const isRoot = process.getuid?.() === 0;
  let manifest: DirectoryManifest;

  before(async () => {
    fs.mkdirSync(path.join(src, 'conf.d'), { recursive: true });
    fs.mkdirSync(path.join(src, 'empty'));
    fs.writeFileSync(path.join(src, 'app.conf'), 'listen 8080;\n');
    fs.writeFileSync(path.join(src, 'conf.d', 'secret.key'), randomBytes(3000));
    fs.writeFileSync(path.join(src, 'conf.d', 'zero'), '');
    fs.chmodSync(path.join(src, 'conf.d', 'secret.key'), 0o600);
    fs.chmodSync(path.join(src, 'app.conf'), 0o644);
    fs.chmodSync(path.join(src, 'empty'), 0o1750);
    fs.symlinkSync('app.conf', path.join(src, 'current.conf'));
    if (isRoot) {
      fs.chownSync(path.join(src, 'conf.d', 'secret.key'), 65534, 65534);
      fs.lchownSync(path.join(src, 'current.conf'), 65534, 65534);
    }
    // Half a microsecond into the millisecond: utimes takes float seconds.
    const old = (Date.parse('2025-03-04T05:06:07.123Z') + 0.0005) / 1000;
    fs.utimesSync(path.join(src, 'app.conf'), old, old);
    fs.utimesSync(path.join(src, 'empty'), old, old);
    const scanned = await scanDirectory(src);
    manifest = { format: DIRECTORY_ARCHIVE_FORMAT, target: 'app-config', backupId: 'b1', source: src, host: 'test', createdAt: new Date().toISOString(), entries: scanned.entries, skipped: scanned.skipped };
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('lists every entry with type, mode, owner, mtime, size and SHA-256; a symlink as a link', () => {
    const by = new Map(manifest.entries.map((e) => [e.path, e]));
    assert.deepEqual([...by.keys()], ['.', 'app.conf', 'conf.d', 'conf.d/secret.key', 'conf.d/zero', 'current.conf', 'empty']);
    const conf = by.get('app.conf')!;
    assert.equal(conf.type, 'file');
    assert.equal(conf.mode, 0o644);
    assert.equal(conf.size, 13);
    assert.equal(conf.sha256, createHash('sha256').update('listen 8080;\n').digest('hex'));
    assert.equal(conf.mtimeMs, Date.parse('2025-03-04T05:06:07.123Z'));
    assert.equal(by.get('empty')!.mode, 0o1750);
    assert.equal(by.get('current.conf')!.type, 'symlink');
    assert.equal(by.get('current.conf')!.linkTarget, 'app.conf');
    assert.equal(by.get('conf.d/zero')!.size, 0);
    if (isRoot) {
      assert.equal(by.get('conf.d/secret.key')!.uid, 65534);
      assert.equal(by.get('conf.d/secret.key')!.user, 'nobody');
    }
  });

  it('round-trips through gzip and lifeboat-enc-v2 into a new directory, equal entry by entry', async () => {
    const key = { material: randomBytes(32), keyId: '' };
    const k = { ...key, keyId: keyIdOf(key.material) };
    const binding = { kind: 'directory', target: 'app-config', backupName: 'b1' };
    const stored = await collect(archiveStream(src, manifest).pipe(createGzip()).pipe(createEncryptStream(k, { binding })));
    const plain = Readable.from([stored]).pipe(createDecryptStream(k, { expect: binding })).pipe(createGunzip());
    const dest = path.join(root, 'restored');
    fs.mkdirSync(dest);
    const r = await extractArchive(plain, dest, { chown: isRoot });
    assert.deepEqual(r.mismatches, []);
    assert.equal(r.files, 3);
    assert.equal(manifestSha256(r.manifest), manifestSha256(manifest));
    assert.deepEqual(await compareTree(dest, manifest.entries, { owners: isRoot }), []);
    assert.equal(fs.readlinkSync(path.join(dest, 'current.conf')), 'app.conf');

    // The same bytes bound to another backup are refused before any plaintext.
    const other = Readable.from([stored]).pipe(createDecryptStream(k, { expect: { ...binding, backupName: 'b2' } }));
    await assert.rejects(collect(other), /bound to target app-config, backup b1, not to target app-config, backup b2/);
  });

  it('reads the manifest from the head alone, and checks every file against it', async () => {
    const bytes = await collect(archiveStream(src, manifest));
    const head = await readManifest(Readable.from([bytes.subarray(0, 2000)]));
    assert.equal(head.entries.length, manifest.entries.length);
    const checked = await checkArchive(Readable.from([bytes]));
    assert.deepEqual(checked.mismatches, []);
    assert.equal(checked.bytes, 3013);

    // One flipped content byte: that file, and only it, mismatches.
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1] ^= 1;
    assert.deepEqual((await checkArchive(Readable.from([flipped]))).mismatches, ['conf.d/secret.key']);
    await assert.rejects(checkArchive(Readable.from([bytes.subarray(0, bytes.length - 5)])), /damaged: it ends inside conf.d\/secret.key/);
    await assert.rejects(checkArchive(Readable.from([Buffer.concat([bytes, Buffer.from('x')])])), /bytes after its last file/);
  });

  it('refuses a file that changed between the manifest and the archive', async () => {
    const changing = path.join(root, 'changing');
    fs.mkdirSync(changing);
    fs.writeFileSync(path.join(changing, 'a'), 'one');
    const scanned = await scanDirectory(changing);
    fs.writeFileSync(path.join(changing, 'a'), 'two');
    const m = { ...manifest, entries: scanned.entries };
    await assert.rejects(pipeline(archiveStream(changing, m), async function* (src) { for await (const _ of src) yield _; }), /changed while it was being archived/);
  });

  it('refuses manifest paths that leave the directory', async () => {
    for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a//b', '']) assert.equal(isSafeRelative(bad), false, bad);
    for (const good of ['.', 'a', 'a/b.conf', '.hidden']) assert.equal(isSafeRelative(good), true, good);
    const evil = { ...manifest, entries: [{ path: '../evil', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 }] };
    const json = Buffer.from(JSON.stringify(evil));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    await assert.rejects(readManifest(Readable.from([Buffer.concat([Buffer.from('LBOATDIR1\n'), len, json])])), /leaves the directory/);
  });

  it('the CLI refuses what needs no server, in one sentence each', () => {
    const config = derivedConfig((doc) => {
      doc.targets.directories = [{ name: 'app-config', environment: 'staging', path: '/etc/app', encryptionKey: { secretRef: 'env:NO_SUCH_KEY' }, store: 'primary', bucket: 'lifeboat-backups-primary', dr: { store: 'dr', bucket: 'lifeboat-backups-dr' } }];
    });
    const base = { target: 'app-config', inPlace: false, reason: 'r', as: 'carol@example.com' };
    assert.throws(() => prepareDirectoryRestore(config, { ...base }), { message: 'restoring the directory target app-config needs --backup <id|latest>: pick one from `lifeboat backups list --target app-config`.' });
    assert.throws(() => prepareDirectoryRestore(config, { ...base, backup: 'latest', into: 'relative/dir' }), { message: "--into relative/dir is not an absolute path: give the new directory's full path on the host." });
    assert.throws(() => prepareDirectoryRestore(config, { ...base, backup: 'latest', into: '/tmp/x', inPlace: true }), { message: 'give --into <new dir> or --in-place, not both.' });
    assert.throws(() => prepareDirectoryRestore(config, { ...base, backup: 'latest', reason: ' ' }), { message: 'a restore needs --reason, for the record.' });
    assert.throws(() => prepareDirectoryRestore(config, { ...base, backup: 'latest', others: ['prefix'] }), /^Error: --prefix does not apply to a directory target; /);
    const ok = prepareDirectoryRestore(config, { ...base, backup: 'latest', into: '/srv/restored/app' });
    assert.deepEqual(ok.input.destination, { kind: 'new-dir', path: '/srv/restored/app' });
    assert.match(ok.workflowId, /^restore-directory-app-config-/);
  });
});
