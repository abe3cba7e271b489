/**
 * DynamoDB as AWS answers, for the SDK-boundary tests: the source table, its continuous
 * backups, on-demand backups and exports in the shapes DescribeTable, DescribeBackup and
 * DescribeExport return, and the objects an export writes to S3 (manifest-summary.json,
 * manifest-files.json, gzipped DYNAMODB_JSON data files with their MD5), made from real items.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { BackupDescription, ExportDescription, TableDescription } from '@aws-sdk/client-dynamodb';
import { ACCOUNT, REGION } from './aws-fixtures';

export const TABLE = 'orders';
export const TABLE_ARN = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`;
export const TABLE_ID = '6f2b1c9e-4a7d-4e3b-9c1a-2d5e8f0a7b3c';

/** A table as DescribeTable returns it. */
export function tableDescription(name: string, status: string, overrides: Partial<TableDescription> = {}, region = REGION): TableDescription {
  return {
    TableName: name,
    TableArn: `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${name}`,
    TableId: name === TABLE ? TABLE_ID : '0c8e7a52-1b3d-4f6a-8e9c-7d2b5a1f3e40',
    TableStatus: status as TableDescription['TableStatus'],
    CreationDateTime: new Date('2024-02-01T09:30:00.000Z'),
    KeySchema: [
      { AttributeName: 'customerId', KeyType: 'HASH' },
      { AttributeName: 'orderId', KeyType: 'RANGE' },
    ],
    AttributeDefinitions: [
      { AttributeName: 'customerId', AttributeType: 'S' },
      { AttributeName: 'orderId', AttributeType: 'S' },
      { AttributeName: 'status', AttributeType: 'S' },
    ],
    BillingModeSummary: { BillingMode: 'PAY_PER_REQUEST', LastUpdateToPayPerRequestDateTime: new Date('2024-02-01T09:30:00.000Z') },
    ProvisionedThroughput: { NumberOfDecreasesToday: 0, ReadCapacityUnits: 0, WriteCapacityUnits: 0 },
    TableSizeBytes: 48213,
    ItemCount: 0, // DynamoDB refreshes it about every 6 hours: a new table says 0
    DeletionProtectionEnabled: false,
    TableClassSummary: { TableClass: 'STANDARD' },
    ...overrides,
  };
}

export function continuousBackups(enabled: boolean, latest = new Date(Date.now() - 5 * 60_000)) {
  return {
    ContinuousBackupsDescription: {
      ContinuousBackupsStatus: 'ENABLED' as const,
      PointInTimeRecoveryDescription: enabled
        ? { PointInTimeRecoveryStatus: 'ENABLED' as const, RecoveryPeriodInDays: 35, EarliestRestorableDateTime: new Date(latest.getTime() - 35 * 86400_000), LatestRestorableDateTime: latest }
        : { PointInTimeRecoveryStatus: 'DISABLED' as const },
    },
  };
}

export function backupArn(name: string): string {
  return `${TABLE_ARN}/backup/0${Math.abs(hashNumber(name)).toString().padStart(16, '0').slice(0, 16)}-${createHash('sha1').update(name).digest('hex').slice(0, 8)}`;
}

function hashNumber(s: string): number {
  let h = 7;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}

export function backupDescription(name: string, status: string, createdAt: Date, itemCount: number): BackupDescription {
  return {
    BackupDetails: { BackupArn: backupArn(name), BackupName: name, BackupSizeBytes: status === 'AVAILABLE' ? 48213 : 0, BackupStatus: status as 'AVAILABLE', BackupType: 'USER', BackupCreationDateTime: createdAt },
    SourceTableDetails: {
      TableName: TABLE,
      TableId: TABLE_ID,
      TableArn: TABLE_ARN,
      TableSizeBytes: 48213,
      KeySchema: tableDescription(TABLE, 'ACTIVE').KeySchema!,
      TableCreationDateTime: new Date('2024-02-01T09:30:00.000Z'),
      ProvisionedThroughput: { ReadCapacityUnits: 0, WriteCapacityUnits: 0 },
      ItemCount: itemCount,
      BillingMode: 'PAY_PER_REQUEST',
    },
    SourceTableFeatureDetails: {},
  };
}

export interface FakeExport {
  exportId: string;
  folder: string;
  objects: Map<string, Buffer>;
  itemCount: number;
  bytes: number;
}

/** The objects an export of `items` writes under `prefix`, split into `files` data files. */
export function makeExport(o: { exportArn: string; bucket: string; prefix: string; exportTime: Date; items: Array<Record<string, unknown>>; files: number }): FakeExport {
  const exportId = o.exportArn.split('/').pop()!;
  const folder = `${o.prefix}/AWSDynamoDB/${exportId}`;
  const objects = new Map<string, Buffer>();
  const lines: string[] = [];
  let bytes = 0;
  for (let f = 0; f < o.files; f++) {
    const part = o.items.filter((_, i) => i % o.files === f);
    const body = gzipSync(Buffer.from(part.map((item) => `${JSON.stringify({ Item: item })}\n`).join('')));
    const key = `${folder}/data/${createHash('sha1').update(`${exportId}${f}`).digest('hex').slice(0, 26)}.json.gz`;
    objects.set(key, body);
    bytes += body.length;
    lines.push(JSON.stringify({ itemCount: part.length, md5Checksum: createHash('md5').update(body).digest('base64'), etag: createHash('md5').update(body).digest('hex'), dataFileS3Key: key }));
  }
  objects.set(`${folder}/manifest-files.json`, Buffer.from(`${lines.join('\n')}\n`));
  objects.set(
    `${folder}/manifest-summary.json`,
    Buffer.from(
      JSON.stringify({
        version: '2020-06-30',
        exportArn: o.exportArn,
        startTime: o.exportTime.toISOString(),
        endTime: new Date(o.exportTime.getTime() + 300_000).toISOString(),
        tableArn: TABLE_ARN,
        tableId: TABLE_ID,
        exportTime: o.exportTime.toISOString(),
        s3Bucket: o.bucket,
        s3Prefix: o.prefix,
        s3SseAlgorithm: 'AES256',
        s3SseKmsKeyId: null,
        manifestFilesS3Key: `${folder}/manifest-files.json`,
        billedSizeBytes: bytes,
        itemCount: o.items.length,
        outputFormat: 'DYNAMODB_JSON',
      }),
    ),
  );
  return { exportId, folder, objects, itemCount: o.items.length, bytes };
}

export function exportDescription(o: { exportArn: string; status: string; bucket: string; prefix: string; exportTime: Date; folder: string; itemCount: number; bytes: number; clientToken?: string }): ExportDescription {
  const done = o.status === 'COMPLETED';
  return {
    ExportArn: o.exportArn,
    ExportStatus: o.status as 'COMPLETED',
    StartTime: o.exportTime,
    ...(done ? { EndTime: new Date(o.exportTime.getTime() + 300_000), ExportManifest: `${o.folder}/manifest-summary.json`, ItemCount: o.itemCount, BilledSizeBytes: o.bytes } : {}),
    TableArn: TABLE_ARN,
    TableId: TABLE_ID,
    ExportTime: o.exportTime,
    ...(o.clientToken ? { ClientToken: o.clientToken } : {}),
    S3Bucket: o.bucket,
    S3Prefix: o.prefix,
    S3SseAlgorithm: 'AES256',
    ExportFormat: 'DYNAMODB_JSON',
    ExportType: 'FULL_EXPORT',
  };
}

/** Orders as DynamoDB JSON items. */
export function orderItems(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => ({
    customerId: { S: `c-${String(i % 17).padStart(3, '0')}` },
    orderId: { S: `o-${String(i).padStart(6, '0')}` },
    status: { S: i % 5 === 0 ? 'SHIPPED' : 'OPEN' },
    total: { N: String((i * 7.25).toFixed(2)) },
  }));
}
