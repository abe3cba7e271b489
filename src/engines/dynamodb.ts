/**
 * Amazon DynamoDB tables: on-demand backups, exports to S3 and the copy of an export in the DR
 * region, restores into NEW tables (point in time, from a backup, or ImportTable from an export),
 * and the deletion of tables lifeboat made. One client per region; every failure goes through
 * the AWS classifier (aws-errors.ts), so throttling and 5xx come back retryable and quota,
 * permission and parameter failures come back as a sentence an operator can act on.
 *
 * Waiting (a backup CREATING, an export IN_PROGRESS, a table CREATING) polls at `pollIntervalMs`
 * through an injectable sleep and calls `onPoll` each time, which the activities use to
 * heartbeat; a wait gives up after `waitTimeoutMs` with a sentence that names the state it saw.
 */
import { createHash } from 'node:crypto';
import {
  CreateBackupCommand,
  DeleteBackupCommand,
  DeleteTableCommand,
  DescribeBackupCommand,
  DescribeContinuousBackupsCommand,
  DescribeExportCommand,
  DescribeImportCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ExportTableToPointInTimeCommand,
  ImportTableCommand,
  ListImportsCommand,
  ListBackupsCommand,
  ListTablesCommand,
  ListTagsOfResourceCommand,
  RestoreTableFromBackupCommand,
  RestoreTableToPointInTimeCommand,
  ScanCommand,
  TagResourceCommand,
  type BackupDescription,
  type ContinuousBackupsDescription,
  type ExportDescription,
  type TableDescription,
  type Tag,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LifeboatError } from '../domain/errors';
import {
  DYNAMODB_BACKUP_PREFIX,
  DYNAMODB_TAGS,
  DynamoDbBackupDetails,
  DynamoDbExportDetails,
  DynamoDbExportVerification,
  DynamoDbTableCheck,
  DynamoDbTableOwner,
  importClientToken,
  isDrillTableName,
  TableShape,
} from '../domain/dynamodb';
import { classifyAwsError, isAwsError, s3Error } from './aws-errors';
import { forEachLimit, streamObject } from './file-backup';

type Region = 'primary' | 'dr';

export interface DynamoDbEngineOptions {
  tableName: string;
  region: string;
  drRegion: string;
  /** Inject clients (tests, custom credentials); default one DynamoDBClient per region. */
  clients?: { primary: DynamoDBClient; dr: DynamoDBClient };
  /** KMS key for exports (S3 SSE-KMS) and restored tables in the primary region. */
  kmsKeyId?: string;
  drKmsKeyId?: string;
  pollIntervalMs?: number;
  waitTimeoutMs?: number;
  onPoll?: (status: { waitingFor: string; status: string; polls: number }) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** An export bucket as lifeboat reaches it: through an object store's client. */
export interface ExportBucket {
  s3: S3Client;
  store: string;
  bucket: string;
}

/** One line of an export's manifest-files.json. */
interface ManifestFile {
  itemCount: number;
  md5Checksum: string;
  etag: string;
  dataFileS3Key: string;
}

export interface PitrStatus {
  enabled: boolean;
  earliest?: string;
  latest?: string;
}

function iso(d: Date | undefined): string | undefined {
  return d ? d.toISOString() : undefined;
}

function tagOf(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** DynamoDB tag values: letters, digits, spaces and `_.:/=+-@`, up to 256 characters. */
function tagValue(value: string): string {
  return value.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, 256);
}

export class DynamoDbEngine {
  readonly tableName: string;
  readonly region: string;
  readonly drRegion: string;
  private readonly primary: DynamoDBClient;
  private readonly dr: DynamoDBClient;
  private readonly kmsKeyId?: string;
  private readonly drKmsKeyId?: string;
  private readonly pollIntervalMs: number;
  private readonly waitTimeoutMs: number;
  private readonly onPoll?: DynamoDbEngineOptions['onPoll'];
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(o: DynamoDbEngineOptions) {
    if (o.region === o.drRegion) {
      throw new LifeboatError(`The DynamoDB target ${o.tableName} has drRegion equal to its region (${o.region}); a copy must live in another region, so set a different drRegion in the lifeboat config.`, 'INVALID_CONFIG');
    }
    this.tableName = o.tableName;
    this.region = o.region;
    this.drRegion = o.drRegion;
    this.primary = o.clients?.primary ?? new DynamoDBClient({ region: o.region });
    this.dr = o.clients?.dr ?? new DynamoDBClient({ region: o.drRegion });
    if (o.kmsKeyId) this.kmsKeyId = o.kmsKeyId;
    if (o.drKmsKeyId) this.drKmsKeyId = o.drKmsKeyId;
    this.pollIntervalMs = o.pollIntervalMs ?? 20_000;
    this.waitTimeoutMs = o.waitTimeoutMs ?? 6 * 3600 * 1000;
    this.onPoll = o.onPoll;
    this.now = o.now ?? (() => Date.now());
    this.sleep = o.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  private client(region: Region): DynamoDBClient {
    return region === 'dr' ? this.dr : this.primary;
  }

  private regionName(region: Region): string {
    return region === 'dr' ? this.drRegion : this.region;
  }

  private async call<T>(region: Region, action: string, doing: string, send: (c: DynamoDBClient) => Promise<T>): Promise<T> {
    try {
      return await send(this.client(region));
    } catch (err) {
      throw classifyAwsError(err, { service: 'DynamoDB', action, doing, region: this.regionName(region) });
    }
  }

  // ---------------------------------------------------------------- the source table

  /** The table's description, or undefined when it does not exist in that region. */
  async findTable(name: string, region: Region = 'primary'): Promise<TableDescription | undefined> {
    try {
      const out = await this.client(region).send(new DescribeTableCommand({ TableName: name }));
      return out.Table;
    } catch (err) {
      if (isAwsError(err, 'ResourceNotFoundException', 'TableNotFoundException')) return undefined;
      throw classifyAwsError(err, { service: 'DynamoDB', action: 'DescribeTable', doing: `describing table ${name}`, region: this.regionName(region) });
    }
  }

  /** The source table; a missing one is a sentence that says where lifeboat looked. */
  async sourceTable(): Promise<TableDescription> {
    const table = await this.findTable(this.tableName);
    if (!table) {
      throw new LifeboatError(`The DynamoDB table ${this.tableName} does not exist in ${this.region}: check tableName and region of this target in the lifeboat config.`, 'TABLE_NOT_FOUND');
    }
    return table;
  }

  /** What a table needs to be made again elsewhere (the DR import). */
  static shapeOf(table: TableDescription): TableShape {
    return {
      keySchema: (table.KeySchema ?? []).map((k) => ({ AttributeName: k.AttributeName!, KeyType: k.KeyType! })),
      attributeDefinitions: (table.AttributeDefinitions ?? [])
        .filter((a) => (table.KeySchema ?? []).some((k) => k.AttributeName === a.AttributeName))
        .map((a) => ({ AttributeName: a.AttributeName!, AttributeType: a.AttributeType! })),
      billingMode: table.BillingModeSummary?.BillingMode ?? (table.ProvisionedThroughput?.ReadCapacityUnits ? 'PROVISIONED' : 'PAY_PER_REQUEST'),
    };
  }

  /** Point-in-time recovery of the source: on or off, and its window. */
  async pitrStatus(): Promise<PitrStatus> {
    const out = await this.call('primary', 'DescribeContinuousBackups', `reading point-in-time recovery of ${this.tableName}`, (c) => c.send(new DescribeContinuousBackupsCommand({ TableName: this.tableName })));
    const d: ContinuousBackupsDescription | undefined = out.ContinuousBackupsDescription;
    const p = d?.PointInTimeRecoveryDescription;
    const enabled = p?.PointInTimeRecoveryStatus === 'ENABLED';
    return { enabled, ...(p?.EarliestRestorableDateTime ? { earliest: iso(p.EarliestRestorableDateTime) } : {}), ...(p?.LatestRestorableDateTime ? { latest: iso(p.LatestRestorableDateTime) } : {}) };
  }

  /** The sentence when point-in-time recovery is off: exports and time restores need it. */
  pitrDisabledSentence(): string {
    return `Point-in-time recovery is not enabled on the DynamoDB table ${this.tableName} in ${this.region}, and lifeboat needs it for exports to S3 and restores to a time: enable it (aws dynamodb update-continuous-backups --table-name ${this.tableName} --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true) and run again.`;
  }

  // ---------------------------------------------------------------- on-demand backups

  /** lifeboat's backup of the source with this exact name, if one exists (not deleted). */
  async findBackup(backupName: string): Promise<{ BackupArn: string; BackupName: string; BackupStatus?: string } | undefined> {
    let start: string | undefined;
    do {
      const page = await this.call('primary', 'ListBackups', `looking up backup ${backupName} of ${this.tableName}`, (c) =>
        c.send(new ListBackupsCommand({ TableName: this.tableName, BackupType: 'USER', ...(start ? { ExclusiveStartBackupArn: start } : {}) })),
      );
      const found = page.BackupSummaries?.find((b) => b.BackupName === backupName && b.BackupStatus !== 'DELETED');
      if (found?.BackupArn) return { BackupArn: found.BackupArn, BackupName: backupName, BackupStatus: found.BackupStatus };
      start = page.LastEvaluatedBackupArn;
    } while (start);
    return undefined;
  }

  /** Takes the on-demand backup, or adopts the one an earlier attempt took under the same name. */
  async startBackup(backupName: string): Promise<{ backupArn: string; adopted: boolean }> {
    if (!backupName.startsWith(DYNAMODB_BACKUP_PREFIX)) throw new LifeboatError(`Backup names lifeboat makes start with ${DYNAMODB_BACKUP_PREFIX}; "${backupName}" does not.`, 'INVALID_BACKUP_NAME');
    const existing = await this.findBackup(backupName);
    if (existing) return { backupArn: existing.BackupArn, adopted: true };
    const out = await this.call('primary', 'CreateBackup', `taking backup ${backupName} of table ${this.tableName}`, (c) => c.send(new CreateBackupCommand({ TableName: this.tableName, BackupName: backupName })));
    const arn = out.BackupDetails?.BackupArn;
    if (!arn) throw new LifeboatError(`DynamoDB accepted backup ${backupName} of ${this.tableName} but returned no ARN; lifeboat will retry and look it up by name.`, 'BACKUP_VANISHED', false);
    return { backupArn: arn, adopted: false };
  }

  async describeBackup(backupArn: string): Promise<BackupDescription | undefined> {
    try {
      return (await this.primary.send(new DescribeBackupCommand({ BackupArn: backupArn }))).BackupDescription;
    } catch (err) {
      if (isAwsError(err, 'BackupNotFoundException')) return undefined;
      throw classifyAwsError(err, { service: 'DynamoDB', action: 'DescribeBackup', doing: `describing backup ${backupArn}`, region: this.region });
    }
  }

  /** Polls until the backup is AVAILABLE; a DELETED one, or one still CREATING at the timeout, is a sentence. */
  async waitForBackup(backupArn: string, adopted = false): Promise<DynamoDbBackupDetails> {
    const d = await this.poll(`backup ${backupArn}`, async () => {
      const b = await this.describeBackup(backupArn);
      const status = b?.BackupDetails?.BackupStatus ?? 'MISSING';
      if (status === 'AVAILABLE') return { done: b!, status };
      if (status === 'DELETED' || status === 'MISSING') {
        throw new LifeboatError(`Backup ${backupArn} of ${this.tableName} is ${status === 'MISSING' ? 'gone' : 'DELETED'} in ${this.region} before it became AVAILABLE; take a new backup.`, 'BACKUP_FAILED');
      }
      return { status };
    }, (status, waitedMs) =>
      new LifeboatError(
        `Backup ${backupArn} of ${this.tableName} is still ${status} in ${this.region} after ${Math.round(waitedMs / 60000)} minutes (DynamoDB usually finishes on-demand backups within minutes); check the table and the backup in the AWS console. lifeboat left the backup alone; the next run takes a new one and retention removes this one once it is no longer CREATING.`,
        'BACKUP_STUCK',
      ),
    );
    const details = d.BackupDetails!;
    return {
      backupArn,
      backupName: details.BackupName ?? '',
      status: details.BackupStatus ?? 'AVAILABLE',
      sizeBytes: details.BackupSizeBytes ?? 0,
      ...(typeof d.SourceTableDetails?.ItemCount === 'number' ? { itemCount: d.SourceTableDetails.ItemCount } : {}),
      createdAt: iso(details.BackupCreationDateTime) ?? new Date(this.now()).toISOString(),
      adopted,
    };
  }

  /** Deletes one of lifeboat's backups (named with its prefix); any other is refused. Gone already is done. */
  async deleteBackup(backupArn: string, backupName: string): Promise<'deleted' | 'gone'> {
    if (!backupName.startsWith(DYNAMODB_BACKUP_PREFIX)) {
      throw new LifeboatError(`Backup ${backupName} is not named ${DYNAMODB_BACKUP_PREFIX}..., so lifeboat did not make it and will not delete it; remove it from the catalog or delete it by hand if it is really unwanted.`, 'NOT_MANAGED_BY_LIFEBOAT');
    }
    const b = await this.describeBackup(backupArn);
    if (!b || b.BackupDetails?.BackupStatus === 'DELETED') return 'gone';
    if (b.BackupDetails?.BackupName !== backupName) {
      throw new LifeboatError(`Backup ${backupArn} is named ${b.BackupDetails?.BackupName ?? 'nothing'}, not ${backupName} as the catalog says; lifeboat will not delete it.`, 'NOT_MANAGED_BY_LIFEBOAT');
    }
    try {
      await this.primary.send(new DeleteBackupCommand({ BackupArn: backupArn }));
      return 'deleted';
    } catch (err) {
      if (isAwsError(err, 'BackupNotFoundException')) return 'gone';
      throw classifyAwsError(err, { service: 'DynamoDB', action: 'DeleteBackup', doing: `deleting backup ${backupName}`, region: this.region });
    }
  }

  // ---------------------------------------------------------------- exports

  /** Exports the table as it was at `exportTime` (the backup's time) to the bucket; the client token makes a retry the same export. */
  async startExport(o: { tableArn: string; exportTime: string; bucket: string; prefix: string; clientToken: string }): Promise<string> {
    const out = await this.call('primary', 'ExportTableToPointInTime', `exporting ${this.tableName} as at ${o.exportTime} to s3://${o.bucket}/${o.prefix}`, (c) =>
      c.send(
        new ExportTableToPointInTimeCommand({
          TableArn: o.tableArn,
          ExportTime: new Date(o.exportTime),
          ClientToken: o.clientToken,
          S3Bucket: o.bucket,
          S3Prefix: o.prefix,
          ExportFormat: 'DYNAMODB_JSON',
          ...(this.kmsKeyId ? { S3SseAlgorithm: 'KMS' as const, S3SseKmsKeyId: this.kmsKeyId } : { S3SseAlgorithm: 'AES256' as const }),
        }),
      ),
    );
    const arn = out.ExportDescription?.ExportArn;
    if (!arn) throw new LifeboatError(`DynamoDB accepted the export of ${this.tableName} but returned no ARN; lifeboat will retry with the same client token.`, 'EXPORT_VANISHED', false);
    return arn;
  }

  /** Polls until the export is COMPLETED; FAILED is a sentence with DynamoDB's reason. */
  async waitForExport(exportArn: string): Promise<DynamoDbExportDetails> {
    const e: ExportDescription = await this.poll(`export ${exportArn}`, async () => {
      const out = await this.call('primary', 'DescribeExport', `describing export ${exportArn}`, (c) => c.send(new DescribeExportCommand({ ExportArn: exportArn })));
      const d = out.ExportDescription;
      const status = d?.ExportStatus ?? 'UNKNOWN';
      if (status === 'COMPLETED') return { done: d!, status };
      if (status === 'FAILED') {
        throw new LifeboatError(`The export ${exportArn} of ${this.tableName} FAILED (${d?.FailureCode ?? 'no code'}: ${d?.FailureMessage ?? 'no message'}); fix what it says (often the bucket policy or the KMS key) and take a new backup.`, 'EXPORT_FAILED');
      }
      return { status };
    });
    const manifestKey = e.ExportManifest ?? '';
    return {
      exportArn,
      status: e.ExportStatus ?? 'COMPLETED',
      exportTime: iso(e.ExportTime) ?? '',
      manifestKey,
      exportFolder: manifestKey.replace(/\/manifest-summary\.json$/, ''),
      itemCount: e.ItemCount ?? 0,
      billedSizeBytes: e.BilledSizeBytes ?? 0,
    };
  }

  // ---------------------------------------------------------------- restores into NEW tables

  /** The owner tags of a table, read from DynamoDB. */
  async tableTags(tableArn: string, region: Region): Promise<Tag[]> {
    const tags: Tag[] = [];
    let next: string | undefined;
    do {
      const out = await this.call(region, 'ListTagsOfResource', `reading the tags of ${tableArn}`, (c) => c.send(new ListTagsOfResourceCommand({ ResourceArn: tableArn, ...(next ? { NextToken: next } : {}) })));
      tags.push(...(out.Tags ?? []));
      next = out.NextToken;
    } while (next);
    return tags;
  }

  /**
   * The tables in a region named as drill tables of this target's table (`<table>-drill-<hex>`),
   * with the run their tags name, if any: what the drill sweeper judges. Nothing else is listed.
   */
  async listDrillTables(region: Region): Promise<Array<{ name: string; status: string; owner?: DynamoDbTableOwner; purpose?: string; tagged: boolean }>> {
    const names: string[] = [];
    let start: string | undefined;
    do {
      const page = await this.call(region, 'ListTables', `listing the tables in ${this.regionName(region)}`, (c) => c.send(new ListTablesCommand({ ...(start ? { ExclusiveStartTableName: start } : {}) })));
      names.push(...(page.TableNames ?? []).filter((n) => isDrillTableName(n, this.tableName)));
      start = page.LastEvaluatedTableName;
    } while (start);
    const out: Array<{ name: string; status: string; owner?: DynamoDbTableOwner; purpose?: string; tagged: boolean }> = [];
    for (const name of names) {
      const t = await this.findTable(name, region);
      if (!t?.TableArn) continue;
      const tags = await this.tableTags(t.TableArn, region);
      const workflowId = tagOf(tags, DYNAMODB_TAGS.workflowId);
      const runId = tagOf(tags, DYNAMODB_TAGS.runId);
      const purpose = tagOf(tags, DYNAMODB_TAGS.purpose);
      out.push({ name, status: t.TableStatus ?? 'unknown', tagged: !!(workflowId && runId), ...(workflowId && runId ? { owner: { workflowId, runId } } : {}), ...(purpose ? { purpose } : {}) });
    }
    return out;
  }

  /** Marks a table as this run's (restore and import calls take no tags; this follows them at once). */
  async tagTable(tableArn: string, region: Region, owner: DynamoDbTableOwner, purpose: 'restore' | 'drill'): Promise<void> {
    await this.call(region, 'TagResource', `tagging ${tableArn} as made by ${owner.workflowId}`, (c) =>
      c.send(
        new TagResourceCommand({
          ResourceArn: tableArn,
          Tags: [
            { Key: DYNAMODB_TAGS.managed, Value: 'true' },
            { Key: DYNAMODB_TAGS.workflowId, Value: tagValue(owner.workflowId) },
            { Key: DYNAMODB_TAGS.runId, Value: tagValue(owner.runId) },
            { Key: DYNAMODB_TAGS.restoredFrom, Value: tagValue(this.tableName) },
            { Key: DYNAMODB_TAGS.purpose, Value: purpose },
          ],
        }),
      ),
    );
  }

  /**
   * Starts the restore into `intoTable`, which must not exist. When it does exist, it is adopted
   * only if it is this run's: tagged with this run, or (an attempt that died between the restore
   * and the tag) untagged, made after `validatedAt` (when validation saw no table there) from the
   * same source. Anything else is refused and left alone.
   */
  async startRestore(o: {
    intoTable: string;
    region: Region;
    method: 'point-in-time' | 'from-backup' | 'import';
    restoreTime?: string;
    backupArn?: string;
    importFrom?: { bucket: string; keyPrefix: string; shape: TableShape; clientToken: string };
    owner: DynamoDbTableOwner;
    purpose: 'restore' | 'drill';
    validatedAt: string;
  }): Promise<{ tableArn?: string; importArn?: string; adopted: boolean }> {
    if (o.intoTable === this.tableName) {
      throw new LifeboatError(`Refusing to restore into ${o.intoTable}: that is the protected source table, and lifeboat restores only into a new table; choose another --into-table.`, 'RESTORE_REFUSED');
    }
    const existing = await this.findTable(o.intoTable, o.region);
    if (existing) return { tableArn: existing.TableArn, adopted: await this.adoptOrRefuse(existing, o) };
    const where = this.regionName(o.region);
    let arn: string | undefined;
    let importArn: string | undefined;
    try {
      if (o.method === 'import') {
        const f = o.importFrom!;
        const out = await this.client(o.region).send(
          new ImportTableCommand({
            ClientToken: f.clientToken,
            S3BucketSource: { S3Bucket: f.bucket, S3KeyPrefix: f.keyPrefix },
            InputFormat: 'DYNAMODB_JSON',
            InputCompressionType: 'GZIP',
            TableCreationParameters: {
              TableName: o.intoTable,
              KeySchema: f.shape.keySchema.map((k) => ({ AttributeName: k.AttributeName, KeyType: k.KeyType as 'HASH' | 'RANGE' })),
              AttributeDefinitions: f.shape.attributeDefinitions.map((a) => ({ AttributeName: a.AttributeName, AttributeType: a.AttributeType as 'S' | 'N' | 'B' })),
              BillingMode: 'PAY_PER_REQUEST',
              ...(this.drKmsKeyId ? { SSESpecification: { Enabled: true, SSEType: 'KMS' as const, KMSMasterKeyId: this.drKmsKeyId } } : {}),
            },
          }),
        );
        arn = out.ImportTableDescription?.TableArn;
        importArn = out.ImportTableDescription?.ImportArn;
      } else if (o.method === 'from-backup') {
        const out = await this.client(o.region).send(
          new RestoreTableFromBackupCommand({
            TargetTableName: o.intoTable,
            BackupArn: o.backupArn,
            ...(this.kmsKeyId ? { SSESpecificationOverride: { Enabled: true, SSEType: 'KMS' as const, KMSMasterKeyId: this.kmsKeyId } } : {}),
          }),
        );
        arn = out.TableDescription?.TableArn;
      } else {
        const out = await this.client(o.region).send(
          new RestoreTableToPointInTimeCommand({
            SourceTableName: this.tableName,
            TargetTableName: o.intoTable,
            ...(o.restoreTime ? { RestoreDateTime: new Date(o.restoreTime) } : { UseLatestRestorableTime: true }),
            ...(this.kmsKeyId ? { SSESpecificationOverride: { Enabled: true, SSEType: 'KMS' as const, KMSMasterKeyId: this.kmsKeyId } } : {}),
          }),
        );
        arn = out.TableDescription?.TableArn;
      }
    } catch (err) {
      if (isAwsError(err, 'TableAlreadyExistsException', 'ResourceInUseException')) {
        const now = await this.findTable(o.intoTable, o.region);
        if (now) return { tableArn: now.TableArn, adopted: await this.adoptOrRefuse(now, o) };
      }
      const action = o.method === 'import' ? 'ImportTable' : o.method === 'from-backup' ? 'RestoreTableFromBackup' : 'RestoreTableToPointInTime';
      throw classifyAwsError(err, { service: 'DynamoDB', action, doing: `restoring ${this.tableName} into the new table ${o.intoTable}`, region: where });
    }
    // A table still CREATING may refuse tags (ResourceInUse): claimTable tags it once it is ACTIVE.
    if (arn) await this.tagTable(arn, o.region, o.owner, o.purpose).catch((err: unknown) => {
      if (!isAwsError((err as { cause?: unknown }).cause, 'ResourceInUseException')) throw err;
    });
    return { ...(arn ? { tableArn: arn } : {}), ...(importArn ? { importArn } : {}), adopted: false };
  }

  /** Makes sure the table this run made carries its tags (after an attempt that could not tag it); a refusal when it is not this run's. */
  async claimTable(name: string, region: Region, o: { owner: DynamoDbTableOwner; purpose: 'restore' | 'drill'; validatedAt: string; backupArn?: string }): Promise<TableDescription> {
    const t = await this.findTable(name, region);
    if (!t) throw new LifeboatError(`Table ${name} vanished from ${this.regionName(region)}; lifeboat will retry.`, 'TABLE_VANISHED', false);
    await this.adoptOrRefuse(t, { intoTable: name, region, ...o });
    return t;
  }

  /** True (adopted, tagged now if it was not) when the existing table is this run's; a refusal otherwise. */
  private async adoptOrRefuse(table: TableDescription, o: { intoTable: string; region: Region; owner: DynamoDbTableOwner; purpose: 'restore' | 'drill'; validatedAt: string; backupArn?: string }): Promise<boolean> {
    const tags = table.TableArn ? await this.tableTags(table.TableArn, o.region) : [];
    if (tagOf(tags, DYNAMODB_TAGS.runId) === tagValue(o.owner.runId) && tagOf(tags, DYNAMODB_TAGS.workflowId) === tagValue(o.owner.workflowId)) return true;
    if (await this.madeByThisRunUntagged(table, tags, o.region, o)) {
      await this.tagTable(table.TableArn!, o.region, o.owner, o.purpose);
      return true;
    }
    throw new LifeboatError(
      `The table ${o.intoTable} already exists in ${this.regionName(o.region)} and was not made by this restore; lifeboat restores only into a new table and never writes over one: choose another --into-table.`,
      'RESTORE_REFUSED',
    );
  }

  /**
   * An untagged table this run made (a worker died before tagging it): created after validation
   * saw none there, and either restored from this run's source or made by an import carrying this
   * run's client token. Anything else with the name is someone else's and is never adopted or deleted.
   */
  private async madeByThisRunUntagged(table: TableDescription, tags: Tag[], region: Region, o: { validatedAt: string; backupArn?: string; owner: DynamoDbTableOwner }): Promise<boolean> {
    if (tags.some((t) => t.Key?.startsWith('lifeboat:'))) return false;
    const created = table.CreationDateTime?.getTime();
    if (created === undefined || created < Date.parse(o.validatedAt)) return false;
    const r = table.RestoreSummary;
    if (!r) return this.importedByRun(table, region, importClientToken(o.owner.workflowId, table.TableName ?? ''));
    return r.SourceBackupArn === o.backupArn || (r.SourceTableArn ?? '').endsWith(`:table/${this.tableName}`);
  }

  /** Whether an import into this table carries `clientToken` (an import leaves no restore summary on its table). */
  private async importedByRun(table: TableDescription, region: Region, clientToken: string): Promise<boolean> {
    if (!table.TableArn) return false;
    let next: string | undefined;
    do {
      const page = await this.call(region, 'ListImports', `listing the imports into ${table.TableName}`, (c) => c.send(new ListImportsCommand({ TableArn: table.TableArn, NextToken: next })));
      for (const s of page?.ImportSummaryList ?? []) {
        if (!s.ImportArn) continue;
        const d = await this.call(region, 'DescribeImport', `describing import ${s.ImportArn}`, (c) => c.send(new DescribeImportCommand({ ImportArn: s.ImportArn })));
        if (d?.ImportTableDescription?.ClientToken === clientToken) return true;
      }
      next = page?.NextToken;
    } while (next);
    return false;
  }

  /** Polls until the table is ACTIVE (an import: until the import COMPLETED and the table is ACTIVE). */
  async waitForTable(name: string, region: Region, importArn?: string): Promise<TableDescription> {
    return this.poll(`table ${name}`, async () => {
      const t = await this.findTable(name, region);
      const status = t?.TableStatus ?? 'MISSING';
      if (status === 'ACTIVE') return { done: t!, status };
      const failed = importArn ? await this.importFailure(importArn, region) : undefined;
      if (failed) throw new LifeboatError(`The import into ${name} in ${this.regionName(region)} ended ${failed}; check the DR copy of the export and try again.`, 'IMPORT_FAILED');
      if (status === 'MISSING' && !importArn) throw new LifeboatError(`Table ${name} vanished from ${this.regionName(region)} while lifeboat waited for it; lifeboat will retry.`, 'TABLE_VANISHED', false);
      return { status };
    });
  }

  /** The state of an import (DR restores), with its failure reason. */
  async importFailure(importArn: string, region: Region): Promise<string | undefined> {
    const out = await this.call(region, 'DescribeImport', `describing import ${importArn}`, (c) => c.send(new DescribeImportCommand({ ImportArn: importArn })));
    const d = out.ImportTableDescription;
    return d?.ImportStatus === 'FAILED' || d?.ImportStatus === 'CANCELLED' ? `${d.ImportStatus}: ${d.FailureCode ?? ''} ${d.FailureMessage ?? ''}`.trim() : undefined;
  }

  /** Counts the table's items exactly (Scan with Select COUNT, every page) and checks its keys against `expected`. */
  async checkTable(name: string, region: Region, expected: { items?: number; keySchema?: TableShape['keySchema'] }, onPage?: (counted: number) => void): Promise<DynamoDbTableCheck> {
    const t = await this.findTable(name, region);
    const checks: DynamoDbTableCheck['checks'] = [];
    if (!t) return { ok: false, itemCount: 0, checks: [{ name: 'exists', ok: false, detail: `Table ${name} does not exist in ${this.regionName(region)}.` }] };
    checks.push({ name: 'active', ok: t.TableStatus === 'ACTIVE', detail: `Table ${name} is ${t.TableStatus ?? 'unknown'}${t.TableStatus === 'ACTIVE' ? '' : ', expected ACTIVE'}.` });
    if (expected.keySchema) {
      const key = (s: Array<{ AttributeName?: string; KeyType?: string }>) => s.map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
      const same = key(t.KeySchema ?? []) === key(expected.keySchema);
      checks.push({ name: 'key-schema', ok: same, detail: same ? `Key schema ${key(expected.keySchema)} as the source's.` : `Key schema ${key(t.KeySchema ?? [])}, the source has ${key(expected.keySchema)}.` });
    }
    let count = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.call(region, 'Scan', `counting the items of ${name}`, (c) =>
        c.send(new ScanCommand({ TableName: name, Select: 'COUNT', ConsistentRead: true, ...(start ? { ExclusiveStartKey: start as never } : {}) })),
      );
      count += page.Count ?? 0;
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
      onPage?.(count);
    } while (start);
    if (expected.items !== undefined) {
      checks.push({ name: 'item-count', ok: count === expected.items, detail: count === expected.items ? `${count} items, as the backup's export holds.` : `${count} items, the backup's export holds ${expected.items}.` });
    } else {
      checks.push({ name: 'item-count', ok: true, detail: `${count} items (a restore to a time has no backup count to compare with).` });
    }
    return { ok: checks.every((c) => c.ok), checks, itemCount: count };
  }

  /**
   * Deletes a table this run made: its tags must name this run (workflow and run id). An
   * untagged table, or one tagged by another run, is refused with a sentence and left alone.
   */
  async deleteOwnTable(name: string, region: Region, owner: DynamoDbTableOwner, evidence?: { validatedAt: string; backupArn?: string }): Promise<string> {
    if (name === this.tableName) throw new LifeboatError(`Refusing to delete ${name}: it is the protected source table.`, 'NOT_MANAGED_BY_LIFEBOAT');
    const t = await this.findTable(name, region);
    if (!t) return `table ${name} does not exist in ${this.regionName(region)}: nothing to remove`;
    const tags = t.TableArn ? await this.tableTags(t.TableArn, region) : [];
    const ours = tagOf(tags, DYNAMODB_TAGS.runId) === tagValue(owner.runId) && tagOf(tags, DYNAMODB_TAGS.workflowId) === tagValue(owner.workflowId);
    if (!ours && !(evidence && (await this.madeByThisRunUntagged(t, tags, region, { ...evidence, owner })))) {
      const by = tagOf(tags, DYNAMODB_TAGS.workflowId);
      throw new LifeboatError(
        `Table ${name} in ${this.regionName(region)} is ${by ? `tagged as made by ${by}, not by this run (${owner.workflowId})` : 'not tagged as made by lifeboat'}, so lifeboat will not delete it; check who made it and delete it by hand if it is really unwanted.`,
        'NOT_MANAGED_BY_LIFEBOAT',
      );
    }
    if (t.TableStatus === 'DELETING') return `table ${name} is already being deleted`;
    if (t.TableStatus !== 'ACTIVE') await this.waitForTable(name, region);
    try {
      await this.client(region).send(new DeleteTableCommand({ TableName: name }));
    } catch (err) {
      if (isAwsError(err, 'ResourceNotFoundException')) return `table ${name} was already gone`;
      throw classifyAwsError(err, { service: 'DynamoDB', action: 'DeleteTable', doing: `deleting table ${name}, which this run made`, region: this.regionName(region) });
    }
    return `deleted table ${name} in ${this.regionName(region)}, which this run made`;
  }

  // ---------------------------------------------------------------- waiting

  private async poll<T>(what: string, check: () => Promise<{ done?: T; status: string }>, timeout?: (status: string, waitedMs: number) => LifeboatError): Promise<T> {
    const started = this.now();
    for (let polls = 1; ; polls++) {
      const r = await check();
      this.onPoll?.({ waitingFor: what, status: r.status, polls });
      if (r.done !== undefined) return r.done;
      const waited = this.now() - started;
      if (waited >= this.waitTimeoutMs) {
        throw timeout?.(r.status, waited) ?? new LifeboatError(`${what} is still ${r.status} after ${Math.round(waited / 60000)} minutes; lifeboat will retry the wait.`, 'WAIT_TIMEOUT', false);
      }
      await this.sleep(this.pollIntervalMs);
    }
  }
}

// ---------------------------------------------------------------- the export's objects

async function readText(b: ExportBucket, key: string, doing: string): Promise<string> {
  try {
    const out = await b.s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
    return await out.Body!.transformToString();
  } catch (err) {
    if (isAwsError(err, 'NoSuchKey')) throw new LifeboatError(`${key} is missing from ${b.store}/${b.bucket} (${doing}): the export is incomplete; take a new backup.`, 'EXPORT_INCOMPLETE');
    throw s3Error(err, 'GetObject', doing, b.bucket);
  }
}

/** Every data file the export's manifest-files.json lists (one JSON object a line). */
async function manifestFiles(b: ExportBucket, folder: string): Promise<ManifestFile[]> {
  const text = await readText(b, `${folder}/manifest-files.json`, 'reading the export manifest');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as ManifestFile);
}

/** The key of one of the export's objects in another bucket whose prefix replaces `fromPrefix`. */
export function moveKey(key: string, fromPrefix: string, toPrefix: string): string {
  if (!key.startsWith(fromPrefix)) throw new LifeboatError(`${key} is not under ${fromPrefix}; lifeboat copies only the export's own objects.`, 'EXPORT_INCOMPLETE');
  return `${toPrefix}${key.slice(fromPrefix.length)}`;
}

/**
 * Checks an export in one bucket against its manifests: the summary's item count against the
 * data files' (and DescribeExport's), every data file present with the manifest's MD5 (hashed
 * as it is read). `keyOf` maps the manifest's (primary) keys to this bucket.
 */
export async function verifyExport(
  b: ExportBucket,
  o: { folder: string; expectedItems: number; keyOf?: (key: string) => string; region: 'primary' | 'dr'; onFile?: (done: number, total: number) => void },
): Promise<DynamoDbExportVerification> {
  const checks: DynamoDbExportVerification['checks'] = [];
  const keyOf = o.keyOf ?? ((k: string) => k);
  const summary = JSON.parse(await readText(b, `${o.folder}/manifest-summary.json`, 'reading the export summary')) as { itemCount?: number; outputFormat?: string; exportArn?: string };
  const files = await manifestFiles(b, o.folder);
  const listed = files.reduce((n, f) => n + (f.itemCount ?? 0), 0);
  checks.push({
    name: 'item-count',
    ok: summary.itemCount === o.expectedItems && listed === o.expectedItems,
    detail: `The summary says ${summary.itemCount ?? 'nothing'} items, the data files ${listed}, DynamoDB ${o.expectedItems}.`,
  });
  checks.push({ name: 'format', ok: summary.outputFormat === 'DYNAMODB_JSON', detail: `Output format ${summary.outputFormat ?? 'unknown'}${summary.outputFormat === 'DYNAMODB_JSON' ? '' : ', expected DYNAMODB_JSON'}.` });
  let bytes = 0;
  let done = 0;
  const bad: string[] = [];
  await forEachLimit(files, 4, async (f) => {
    const key = keyOf(f.dataFileS3Key);
    try {
      const out = await b.s3.send(new GetObjectCommand({ Bucket: b.bucket, Key: key }));
      const hash = createHash('md5');
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
      const md5 = hash.digest('base64');
      if (md5 !== f.md5Checksum) bad.push(`${key} has MD5 ${md5}, the manifest says ${f.md5Checksum}`);
    } catch (err) {
      if (isAwsError(err, 'NoSuchKey')) bad.push(`${key} is missing`);
      else throw s3Error(err, 'GetObject', `reading ${key}`, b.bucket);
    }
    o.onFile?.(++done, files.length);
  });
  checks.push({ name: 'data-files', ok: bad.length === 0, detail: bad.length ? bad.slice(0, 5).join('; ') : `${files.length} data files, every one present with the manifest's MD5.` });
  return { ok: checks.every((c) => c.ok), checks, region: o.region, store: b.store, bucket: b.bucket, itemCount: listed, files: files.length, bytes };
}

/**
 * Copies the export's objects (data files first, manifests last: a copy with its summary is a
 * whole copy) to the DR bucket through the S3 engine's streaming copy. An object already there
 * with the same size is skipped, so a retried copy resumes.
 */
export async function copyExport(
  from: ExportBucket,
  to: ExportBucket,
  o: { folder: string; fromPrefix: string; toPrefix: string; onProgress?: (done: number, total: number, bytes: number) => void },
): Promise<{ copied: number; skipped: number; bytes: number }> {
  const files = await manifestFiles(from, o.folder);
  const keys = [...files.map((f) => f.dataFileS3Key), `${o.folder}/manifest-files.json`, `${o.folder}/manifest-summary.json`];
  let copied = 0;
  let skipped = 0;
  let bytes = 0;
  const copyOne = async (key: string) => {
    const dest = moveKey(key, o.fromPrefix, o.toPrefix);
    const [source, there] = await Promise.all([headSize(from, key), headSize(to, dest)]);
    if (source === undefined) throw new LifeboatError(`${key} is missing from ${from.store}/${from.bucket}: the export is incomplete; take a new backup.`, 'EXPORT_INCOMPLETE');
    if (there === source) {
      skipped++;
      return;
    }
    const r = await streamObject({ from: { s3: from.s3, bucket: from.bucket, key }, to: { s3: to.s3, bucket: to.bucket, key: dest }, params: (s) => ({ contentType: s.ContentType }), partSize: 16 * 1024 * 1024, queueSize: 2 });
    if (!r) throw new LifeboatError(`${key} vanished from ${from.store}/${from.bucket} while it was copied; take a new backup.`, 'EXPORT_INCOMPLETE');
    copied++;
    bytes += r.bytes;
    o.onProgress?.(copied + skipped, keys.length, bytes);
  };
  await forEachLimit(keys.slice(0, files.length), 4, copyOne);
  for (const key of keys.slice(files.length)) await copyOne(key);
  return { copied, skipped, bytes };
}

async function headSize(b: ExportBucket, key: string): Promise<number | undefined> {
  try {
    return (await b.s3.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key }))).ContentLength ?? 0;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (isAwsError(err, 'NotFound', 'NoSuchKey') || status === 404) return undefined;
    throw s3Error(err, 'HeadObject', `checking ${key}`, b.bucket);
  }
}
