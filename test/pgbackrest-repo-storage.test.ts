/**
 * Where the repository copy finds each pgBackRest repository: read from pgBackRest's own config
 * (the stack writes a real one; these are the same lines), with the stanza section and the
 * PGBACKREST_* environment overriding [global] as pgBackRest does, and a clear refusal for what
 * lifeboat cannot copy byte for byte.
 */
import assert from 'node:assert/strict';
import { LifeboatError } from '../src/domain/errors';
import { repoStorageFrom } from '../src/engines/pgbackrest/repo-storage';

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
});
