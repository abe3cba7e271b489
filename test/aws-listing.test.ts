/**
 * AWS listings read every page, and AWS failures are sorted by the SDK's own classification.
 * Mocked at the SDK boundary (aws-sdk-client-mock) with pages shaped like the services' replies;
 * the classification cases also go through the SDK's real deserializers, from raw HTTP replies.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import {
  DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  type DBInstanceAutomatedBackup,
  type DescribeDBInstanceAutomatedBackupsCommandInput,
} from '@aws-sdk/client-rds';
import { Route53Client } from '@aws-sdk/client-route-53';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  S3Client,
  type ListMultipartUploadsCommandInput,
  type ListObjectVersionsCommandInput,
  type ListObjectsV2CommandInput,
} from '@aws-sdk/client-s3';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { abortIncompleteUploads, deleteAllVersions } from '../src/activities/retention';
import { LifeboatError } from '../src/domain/errors';
import { classifyAwsError, isTransientAwsError } from '../src/engines/aws-errors';
import { FileBackupEngine } from '../src/engines/file-backup';
import { RdsEngine } from '../src/engines/rds';
import { Route53Router } from '../src/engines/route53';

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };
const OWNER = { ID: '75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a', DisplayName: 'lifeboat' };
const LAST_MODIFIED = new Date('2024-05-20T11:58:02.000Z');

describe('AWS listings follow every page', () => {
  describe('S3', () => {
    // This client only: other suites talk to real S3 stores (MinIO) meanwhile.
    const client = new S3Client({ region: 'eu-west-1', credentials });
    let s3: AwsClientStub<S3Client>;

    before(() => (s3 = mockClient(client)));
    beforeEach(() => s3.reset());
    after(() => s3.restore());

    it('lists backup sets across ListObjectsV2 pages (continuation tokens)', async () => {
      // The paginator reuses one input object, so record each request's token when it is sent.
      const tokens: Array<string | undefined> = [];
      const pages: Record<string, { prefixes: string[]; next?: string }> = {
        first: { prefixes: ['20240518T000000Z', '20240519T000000Z'], next: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=' },
        '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=': { prefixes: ['20240520T000000Z'], next: '1vSg2x6mfeUvhVlVcEJ/AlZ5+S0WTBTo0bRsX0cYwb3Q=' },
        '1vSg2x6mfeUvhVlVcEJ/AlZ5+S0WTBTo0bRsX0cYwb3Q=': { prefixes: ['20240521T000000Z'] },
      };
      s3.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => {
        tokens.push(input.ContinuationToken);
        const page = pages[input.ContinuationToken ?? 'first'];
        return {
          IsTruncated: page.next !== undefined,
          Name: 'file-backups',
          Prefix: 'files/orders/',
          Delimiter: '/',
          MaxKeys: 2,
          KeyCount: page.prefixes.length,
          CommonPrefixes: page.prefixes.map((ts) => ({ Prefix: `files/orders/${ts}/` })),
          ...(input.ContinuationToken ? { ContinuationToken: input.ContinuationToken } : {}),
          ...(page.next ? { NextContinuationToken: page.next } : {}),
          $metadata: { httpStatusCode: 200 },
        };
      });
      s3.on(HeadObjectCommand).resolves({ ContentLength: 2048, ContentType: 'application/json', ETag: '"9b2cf535f27731c974343645a3985328"', LastModified: LAST_MODIFIED });
      const engine = new FileBackupEngine({ source: { bucket: 'orders' }, backup: { s3: client, bucket: 'file-backups', root: 'files/orders' } });
      assert.deepEqual(await engine.listBackups(), ['20240518T000000Z', '20240519T000000Z', '20240520T000000Z', '20240521T000000Z']);
      assert.deepEqual(tokens, [undefined, '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=', '1vSg2x6mfeUvhVlVcEJ/AlZ5+S0WTBTo0bRsX0cYwb3Q=']);
      assert.equal(s3.commandCalls(HeadObjectCommand).length, 4);
    });

    it('deletes every version and delete marker across ListObjectVersions pages (key and version-id markers)', async () => {
      const requests: Array<{ KeyMarker?: string; VersionIdMarker?: string }> = [];
      const version = (Key: string, VersionId: string, IsLatest = false) => ({ Key, VersionId, IsLatest, ETag: '"d41d8cd98f00b204e9800998ecf8427e"', Size: 1024, StorageClass: 'STANDARD' as const, LastModified: LAST_MODIFIED, Owner: OWNER });
      let deleted = false;
      s3.on(ListObjectVersionsCommand).callsFake(async (input: ListObjectVersionsCommandInput) => {
        requests.push({ ...(input.KeyMarker ? { KeyMarker: input.KeyMarker } : {}), ...(input.VersionIdMarker ? { VersionIdMarker: input.VersionIdMarker } : {}) });
        const common = { Name: 'file-backups', Prefix: 'files/orders/20240520T000000Z/', MaxKeys: 2, $metadata: { httpStatusCode: 200 } };
        // Once everything is deleted, the listing that deleteAllVersions repeats comes back empty.
        if (deleted) return { ...common, IsTruncated: false };
        if (!input.KeyMarker) {
          return { ...common, IsTruncated: true, Versions: [version('files/orders/20240520T000000Z/a.csv', '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY', true)], DeleteMarkers: [{ Key: 'files/orders/20240520T000000Z/b.csv', VersionId: 'null', IsLatest: true, LastModified: LAST_MODIFIED, Owner: OWNER }], NextKeyMarker: 'files/orders/20240520T000000Z/b.csv', NextVersionIdMarker: 'null' };
        }
        if (input.VersionIdMarker === 'null') {
          return { ...common, IsTruncated: true, KeyMarker: input.KeyMarker, VersionIdMarker: input.VersionIdMarker, Versions: [version('files/orders/20240520T000000Z/b.csv', 'QUpfdndhfd8438MNFDN93jdnJFkdmqnh893')], NextKeyMarker: 'files/orders/20240520T000000Z/c.csv', NextVersionIdMarker: 'wxyz.8438MNFDN93jdnJFkdm' };
        }
        deleted = true;
        return { ...common, IsTruncated: false, KeyMarker: input.KeyMarker, VersionIdMarker: input.VersionIdMarker, Versions: [version('files/orders/20240520T000000Z/c.csv', 'PHtexPGjH2y.zBgT8LmB7wwLI2mpbz.k', true)] };
      });
      s3.on(DeleteObjectCommand).resolves({ $metadata: { httpStatusCode: 204 } });
      assert.equal(await deleteAllVersions(client, 'file-backups', { prefix: 'files/orders/20240520T000000Z/' }), 4);
      assert.deepEqual(requests, [
        {},
        { KeyMarker: 'files/orders/20240520T000000Z/b.csv', VersionIdMarker: 'null' },
        { KeyMarker: 'files/orders/20240520T000000Z/c.csv', VersionIdMarker: 'wxyz.8438MNFDN93jdnJFkdm' },
        {},
      ]);
      assert.deepEqual(
        s3.commandCalls(DeleteObjectCommand).map((c) => [c.args[0].input.Key, c.args[0].input.VersionId]),
        [
          ['files/orders/20240520T000000Z/a.csv', '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY'],
          ['files/orders/20240520T000000Z/b.csv', 'null'],
          ['files/orders/20240520T000000Z/b.csv', 'QUpfdndhfd8438MNFDN93jdnJFkdmqnh893'],
          ['files/orders/20240520T000000Z/c.csv', 'PHtexPGjH2y.zBgT8LmB7wwLI2mpbz.k'],
        ],
      );
    });

    it('aborts every incomplete upload across ListMultipartUploads pages (key and upload-id markers)', async () => {
      const requests: Array<[string | undefined, string | undefined]> = [];
      const upload = (Key: string, UploadId: string) => ({ Key, UploadId, Initiated: LAST_MODIFIED, StorageClass: 'STANDARD' as const, Owner: OWNER, Initiator: OWNER });
      s3.on(ListMultipartUploadsCommand).callsFake(async (input: ListMultipartUploadsCommandInput) => {
        requests.push([input.KeyMarker, input.UploadIdMarker]);
        const common = { Bucket: 'dumps', Prefix: 'logical/orders/', MaxUploads: 1, $metadata: { httpStatusCode: 200 } };
        if (!input.KeyMarker) return { ...common, IsTruncated: true, Uploads: [upload('logical/orders/2024-05-19.dump', 'VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA')], NextKeyMarker: 'logical/orders/2024-05-19.dump', NextUploadIdMarker: 'VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA' };
        return { ...common, IsTruncated: false, KeyMarker: input.KeyMarker, UploadIdMarker: input.UploadIdMarker, Uploads: [upload('logical/orders/2024-05-20.dump', 'b0SBVqAhbWd3mJ2bZl0LE7fKm7pQ2s.vHnV5d1W7j9Y')] };
      });
      s3.on(AbortMultipartUploadCommand).resolves({ $metadata: { httpStatusCode: 204 } });
      assert.equal(await abortIncompleteUploads(client, 'dumps', { prefix: 'logical/orders/' }), 2);
      assert.deepEqual(requests, [
        [undefined, undefined],
        ['logical/orders/2024-05-19.dump', 'VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA'],
      ]);
      assert.deepEqual(s3.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input.Key), ['logical/orders/2024-05-19.dump', 'logical/orders/2024-05-20.dump']);
    });
  });

  describe('RDS', () => {
    const ACCOUNT = '123456789012';
    const SOURCE = 'orders-prod';
    const primaryClient = new RDSClient({ region: 'us-east-1', credentials });
    const drClient = new RDSClient({ region: 'us-west-2', credentials });
    let dr: AwsClientStub<RDSClient>;

    before(() => (dr = mockClient(drClient)));
    after(() => dr.restore());

    it('reads the DR restore window from the last of several DescribeDBInstanceAutomatedBackups pages (markers)', async () => {
      const markers: Array<string | undefined> = [];
      const backup = (suffix: string, latest: string, overrides: Partial<DBInstanceAutomatedBackup> = {}): DBInstanceAutomatedBackup => ({
        DBInstanceArn: `arn:aws:rds:us-east-1:${ACCOUNT}:db:${SOURCE}`,
        DbiResourceId: 'db-7XKQ3M5ZUJHVW2NPT4Y6GLARCE',
        Region: 'us-east-1',
        DBInstanceIdentifier: SOURCE,
        RestoreWindow: { EarliestTime: new Date('2024-05-14T03:12:00.000Z'), LatestTime: new Date(latest) },
        Status: 'replicating',
        Engine: 'postgres',
        BackupRetentionPeriod: 7,
        DBInstanceAutomatedBackupsArn: `arn:aws:rds:us-west-2:${ACCOUNT}:auto-backup:ab-${suffix}`,
        ...overrides,
      });
      const pages: Record<string, { backups: DBInstanceAutomatedBackup[]; next?: string }> = {
        first: { backups: [backup('old1', '2023-12-01T00:00:00.000Z', { Status: 'retained' })], next: 'eyJNYXJrZXIiOiAicGFnZS0yIn0=' },
        'eyJNYXJrZXIiOiAicGFnZS0yIn0=': { backups: [backup('old2', '2024-01-01T00:00:00.000Z', { Status: 'retained' })], next: 'eyJNYXJrZXIiOiAicGFnZS0zIn0=' },
        'eyJNYXJrZXIiOiAicGFnZS0zIn0=': { backups: [backup('7xkq3m5zujhvw2npt4y6glarce', '2024-05-20T11:40:00.000Z')] },
      };
      dr.on(DescribeDBInstanceAutomatedBackupsCommand).callsFake(async (input: DescribeDBInstanceAutomatedBackupsCommandInput) => {
        markers.push(input.Marker);
        const page = pages[input.Marker ?? 'first'];
        return { DBInstanceAutomatedBackups: page.backups, ...(page.next ? { Marker: page.next } : {}), $metadata: { httpStatusCode: 200 } };
      });
      const engine = new RdsEngine({ instanceId: SOURCE, region: 'us-east-1', drRegion: 'us-west-2', drKmsKeyId: 'alias/lifeboat-dr', clients: { primary: primaryClient, dr: drClient } });
      assert.deepEqual(await engine.restoreWindow('dr'), { earliest: '2024-05-14T03:12:00.000Z', latest: '2024-05-20T11:40:00.000Z' });
      assert.deepEqual(markers, [undefined, 'eyJNYXJrZXIiOiAicGFnZS0yIn0=', 'eyJNYXJrZXIiOiAicGFnZS0zIn0=']);
    });
  });
});

/** An RDSClient/Route53Client request handler that answers every request with this raw HTTP reply. */
function replyWith(statusCode: number, body: string, headers: Record<string, string> = {}) {
  return {
    handle: async () => ({
      response: { statusCode, reason: '', headers: { 'content-type': 'text/xml', 'x-amzn-requestid': '5b7f2f1e-4c61-4d0b-9d0e-2f1f6f7c9a10', ...headers }, body: Readable.from([Buffer.from(body)]) },
    }),
  };
}

/** The error the SDK itself raises for this raw RDS reply (query protocol), after one attempt. */
async function rdsErrorFor(statusCode: number, code: string, message: string): Promise<unknown> {
  const client = new RDSClient({ region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: replyWith(statusCode, `<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>${statusCode >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>5b7f2f1e-4c61-4d0b-9d0e-2f1f6f7c9a10</RequestId></ErrorResponse>`) });
  return client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'orders-prod' })).then(
    () => assert.fail('the request should have failed'),
    (err: unknown) => err,
  );
}

function classified(err: unknown): LifeboatError {
  return classifyAwsError(err, { service: 'RDS', action: 'DescribeDBInstances', doing: 'describing the source instance', region: 'us-east-1' });
}

describe('AWS failures are classified by the SDK', () => {
  it('treats throttling replies as transient: Throttling, ThrottlingException, TooManyRequestsException', async () => {
    for (const code of ['Throttling', 'ThrottlingException', 'TooManyRequestsException']) {
      const err = await rdsErrorFor(400, code, 'Rate exceeded');
      assert.equal((err as Error).name, code);
      assert.equal(isTransientAwsError(err), true, code);
      const failure = classified(err);
      assert.equal(failure.code, 'AWS_TRANSIENT', code);
      assert.equal(failure.nonRetryable, false, code);
      assert.match(failure.message, /usually temporary and lifeboat will retry/);
    }
  });

  it('treats a 429 and a 503 as transient whatever their error name', async () => {
    for (const status of [429, 503]) {
      const err = await rdsErrorFor(status, 'SomethingNew', 'Slow down');
      assert.equal(isTransientAwsError(err), true, String(status));
      assert.equal(classified(err).code, 'AWS_TRANSIENT');
    }
  });

  it('treats an error the service marks $retryable (throttling) as transient, whatever its name', () => {
    const err = Object.assign(new Error('Request rate is too high'), { name: 'ProvisionedCapacityBusy', $fault: 'client', $retryable: { throttling: true }, $metadata: { httpStatusCode: 400 } });
    assert.equal(isTransientAwsError(err), true);
    assert.equal(classified(err).code, 'AWS_TRANSIENT');
  });

  it('treats a Route53 503 ServiceUnavailable (rest-xml) as transient', async () => {
    const client = new Route53Client({
      region: 'us-east-1',
      credentials,
      maxAttempts: 1,
      requestHandler: replyWith(503, '<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code><Message>Service Unavailable</Message></Error><RequestId>0e7c1a5d-3b8f-4a63-9d51-8b2e4f6a7c90</RequestId></ErrorResponse>'),
    });
    const router = new Route53Router({ hostedZoneId: 'Z0123456789ABCDEFGHIJ', client, sleep: async () => undefined });
    const failure = await router.currentTarget('db.example.com').then(
      () => assert.fail('the request should have failed'),
      (err: unknown) => err as LifeboatError,
    );
    assert.ok(failure instanceof LifeboatError);
    assert.equal(failure.code, 'AWS_TRANSIENT');
    assert.equal(failure.nonRetryable, false);
    assert.match(failure.message, /^Route53 ListResourceRecordSets failed with ServiceUnavailable/);
  });

  it('keeps the operator advice for failures no retry fixes', async () => {
    const err = await rdsErrorFor(400, 'InvalidParameterValue', 'Invalid DB instance identifier');
    assert.equal(isTransientAwsError(err), false);
    const failure = classified(err);
    assert.equal(failure.code, 'AWS_INVALID_PARAMETER');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /check this target in the lifeboat config/);
  });

  it('leaves unknown client errors retryable but not called temporary', async () => {
    const err = await rdsErrorFor(400, 'SomethingNew', 'Something new went wrong');
    assert.equal(isTransientAwsError(err), false);
    const failure = classified(err);
    assert.equal(failure.code, 'AWS_ERROR');
    assert.equal(failure.nonRetryable, false);
  });
});
