/**
 * Where the repository copy finds each pgBackRest repository: read from pgBackRest's own config
 * (the stack writes a real one; these are the same lines), with the stanza section and the
 * PGBACKREST_* environment overriding [global] as pgBackRest does, and a clear refusal for what
 * lifeboat cannot copy byte for byte.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LifeboatError } from '../src/domain/errors';
import { repoStorageFrom } from '../src/engines/pgbackrest/repo-storage';
import { repositoryCopyReadiness } from '../src/engines/pgbackrest/repository-copy';

const CONFIG = `# Written by \`lifeboat stack up\`
[global]
repo1-type=s3
repo1-path=/pgbackrest
repo1-s3-bucket=lifeboat-backups-primary
repo1-s3-endpoint=localhost
repo1-storage-port=9100
repo1-s3-region=primary
repo1-s3-key=minio
repo1-s3-key-secret=minio-secret
repo1-s3-uri-style=path
repo1-storage-ca-file=/data/tls/ca.crt
repo2-type=s3
repo2-path=/pgbackrest
repo2-s3-bucket=lifeboat-backups-dr
repo2-s3-endpoint=localhost
repo2-storage-port=9200
repo2-s3-region=dr
repo2-s3-key=minio
repo2-s3-key-secret=minio-secret
repo2-s3-uri-style=path
repo3-type=posix
repo3-path=/var/lib/pgbackrest

[app]
pg1-path=/data/postgres/primary
repo2-s3-bucket=app-backups-dr
`;

describe('pgBackRest repository storage for the repository copy', () => {
  it('reads bucket, endpoint, key prefix and keys, the stanza section overriding [global]', () => {
    const one = repoStorageFrom(CONFIG, 'app', 1, {});
    assert.deepEqual(one, {
      repo: 1,
      type: 's3',
      bucket: 'lifeboat-backups-primary',
      prefix: 'pgbackrest/',
      cipherType: 'none',
      s3: { region: 'primary', endpoint: 'https://localhost:9100', accessKeyId: 'minio', secretAccessKey: 'minio-secret', caFile: '/data/tls/ca.crt' },
      insecureTls: false,
    });
    assert.equal(repoStorageFrom(CONFIG, 'app', 2, {}).bucket, 'app-backups-dr');
    assert.equal(repoStorageFrom(CONFIG, 'other', 2, {}).bucket, 'lifeboat-backups-dr');
  });

  it('takes PGBACKREST_* environment options over the file, as pgBackRest does', () => {
    const two = repoStorageFrom(CONFIG, 'app', 2, { PGBACKREST_REPO2_S3_KEY_SECRET: 'rotated', PGBACKREST_REPO2_CIPHER_TYPE: 'aes-256-cbc' });
    assert.equal(two.s3.secretAccessKey, 'rotated');
    assert.equal(two.cipherType, 'aes-256-cbc');
  });

  it('refuses a repository that is not S3, saying to use a second backup instead', () => {
    assert.throws(
      () => repoStorageFrom(CONFIG, 'app', 3, {}),
      (err: unknown) => err instanceof LifeboatError && err.code === 'DR_COPY_UNSUPPORTED' && /repo3 is of type posix.*drCopy: second-backup/.test(err.message),
    );
    assert.throws(() => repoStorageFrom(CONFIG, 'app', 4, {}), /repo4 is of type posix/);
  });

  describe('readiness, at preflight and at each backup\'s start', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-repo-ready-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const readiness = (text: string, from: number, to: number) => {
      const configPath = path.join(dir, `pgbackrest-${from}-${to}-${text.length}.conf`);
      fs.writeFileSync(configPath, text);
      return repositoryCopyReadiness({ options: { configPath, stanza: 'app' } as never }, undefined, from, to);
    };

    it('passes two unencrypted S3 repositories over verified TLS, naming both buckets', async () => {
      const r = await readiness(CONFIG, 1, 2);
      assert.equal(r.ok, true, r.detail);
      assert.match(r.detail, /repo1 \(s3 lifeboat-backups-primary\/pgbackrest\/\) can be copied into repo2 \(s3 app-backups-dr\/pgbackrest\/\)/);
    });

    it('refuses an encrypted repository in one sentence that says what to do, before any copy', async () => {
      const r = await readiness(`${CONFIG}repo2-cipher-type=aes-256-cbc\nrepo2-cipher-pass=secret\n`, 1, 2);
      assert.equal(r.ok, false);
      assert.match(r.detail, /^drCopy is repository-copy, but pgBackRest repo2 is encrypted \(aes-256-cbc\).*set `drCopy: second-backup`.*\.$/);
      assert.doesNotMatch(r.detail, /secret/);
      assert.equal(r.detail.split('. ').length, 1, r.detail);
    });

    it('refuses a non-S3 repository and one without certificate checks, each named', async () => {
      const posix = await readiness(CONFIG, 1, 3);
      assert.equal(posix.ok, false);
      assert.match(posix.detail, /repo3 is of type posix.*drCopy: second-backup/);
      const insecure = await readiness(`${CONFIG}repo1-storage-verify-tls=n\n`, 1, 2);
      assert.equal(insecure.ok, false);
      assert.match(insecure.detail, /repo1 does not verify its endpoint's certificate/);
    });

    it('says so when pgBackRest\'s config cannot be read', async () => {
      const r = await repositoryCopyReadiness({ options: { configPath: path.join(dir, 'missing.conf'), stanza: 'app' } as never }, undefined, 1, 2);
      assert.equal(r.ok, false);
      assert.match(r.detail, /missing\.conf cannot be read/);
    });
  });
});
