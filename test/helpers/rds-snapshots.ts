/**
 * RDS as the backup workflow sees it, answered at the SDK boundary (aws-sdk-client-mock): one
 * source instance, and snapshots that exist once created, report `creating` (or `pending` for a
 * cross-region copy) for a few describes and then `available`, with the fields RDS returns.
 * Its snapshots live in memory, or in a directory when several worker processes must see the
 * same RDS (one worker starts a snapshot, another waits for it). The scale benchmark
 * (bench/scale-worker.ts) and the central-workers stack test use it.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  CopyDBSnapshotCommand,
  CreateDBSnapshotCommand,
  DBSnapshotAlreadyExistsFault,
  DBSnapshotNotFoundFault,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  DBInstanceNotFoundFault,
  RDSClient,
  type DBInstance,
  type DBSnapshot,
  type Tag,
} from '@aws-sdk/client-rds';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { ACCOUNT, DBI, DR_KMS, DR_REGION, errorMeta, PRIMARY_KMS, REGION, SOURCE } from './aws-fixtures';

export interface RdsSnapshotWorld {
  /** Where the source's endpoint points (a real Postgres: the backup counts its critical tables there). */
  endpoint: { host: string; port: number };
  /** How many describes report a new snapshot as still creating (or copying) before it is available. */
  describesUntilAvailable?: number;
  /** A directory shared by every process answering for this RDS; default: this process's memory. */
  stateDir?: string;
}

interface Kept {
  snapshot: DBSnapshot;
  describes: number;
}

/** Where the snapshots are kept: a Map, or one JSON file per snapshot (dates revived on read). */
function snapshotStore(stateDir?: string): { get(key: string): Kept | undefined; set(key: string, kept: Kept): void } {
  if (!stateDir) return new Map<string, Kept>();
  const file = (key: string) => path.join(stateDir, `${key.replace(/[^A-Za-z0-9-]/g, '_')}.json`);
  return {
    get(key) {
      let text: string;
      try {
        text = fs.readFileSync(file(key), 'utf8');
      } catch {
        return undefined;
      }
      const kept = JSON.parse(text) as Kept;
      if (kept.snapshot.SnapshotCreateTime) kept.snapshot.SnapshotCreateTime = new Date(kept.snapshot.SnapshotCreateTime);
      return kept;
    },
    set(key, kept) {
      // Written whole, then renamed: a reader in another process never sees half a file.
      const tmp = `${file(key)}.${process.pid}`;
      fs.writeFileSync(tmp, JSON.stringify(kept));
      fs.renameSync(tmp, file(key));
    },
  };
}

/** The lines of an RDS database target for this world, to put under `targets.databases` of a config. */
export function rdsTargetYaml(name: string, database: string, criticalTables: string[]): string {
  return [
    `    - name: ${name}`,
    '      environment: production',
    '      engine: rds',
    `      instanceId: ${SOURCE}`,
    `      region: ${REGION}`,
    `      drRegion: ${DR_REGION}`,
    `      drKmsKeyId: ${DR_KMS}`,
    `      database: ${database}`,
    '      user: lifeboat',
    // The mocked endpoint is the stack's Postgres, which serves the local CA's certificate.
    '      sslRootCert: "{dataDir}/tls/ca.crt"',
    `      criticalTables: [${criticalTables.join(', ')}]`,
    '',
  ].join('\n');
}

/** The config text with `targetYaml` added as the first database target. */
export function withDatabaseTarget(configText: string, targetYaml: string): string {
  const at = configText.search(/\n {2}databases:\n/);
  if (at < 0) throw new Error('the config has no targets.databases list to add the RDS target to');
  const end = at + '\n  databases:\n'.length;
  return configText.slice(0, end) + targetYaml + configText.slice(end);
}

const notFound = (what: string) => ({ message: `${what} not found.`, $metadata: { ...errorMeta, httpStatusCode: 404 } });
const alreadyExists = (message: string) => ({ message, $metadata: errorMeta });

/** Installs the answers on `rds` (a stub of every RDSClient in this process). */
export function answerSnapshotsLikeRds(rds: AwsClientStub<RDSClient>, world: RdsSnapshotWorld): void {
  const untilAvailable = world.describesUntilAvailable ?? 1;
  const snapshots = snapshotStore(world.stateDir);
  const key = (region: string, id: string) => `${region}/${id}`;
  const regionOf = async (getClient: () => RDSClient) => getClient().config.region();

  const source = (): DBInstance => ({
    DBInstanceIdentifier: SOURCE,
    DBInstanceClass: 'db.r6g.large',
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceStatus: 'available',
    MasterUsername: 'postgres',
    Endpoint: { Address: world.endpoint.host, Port: world.endpoint.port, HostedZoneId: 'Z2R2ITUGPM61AM' },
    AllocatedStorage: 100,
    InstanceCreateTime: new Date('2024-01-10T08:00:00.000Z'),
    BackupRetentionPeriod: 7,
    // RDS ships transaction logs every few minutes: the latest restorable time trails now.
    LatestRestorableTime: new Date(Math.floor((Date.now() - 150_000) / 1000) * 1000),
    StorageEncrypted: true,
    KmsKeyId: PRIMARY_KMS,
    DbiResourceId: DBI,
    DBInstanceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${SOURCE}`,
    DeletionProtection: true,
  });

  const newSnapshot = (id: string, region: string, status: string, tags: Tag[], extra: Partial<DBSnapshot> = {}): DBSnapshot => ({
    DBSnapshotIdentifier: id,
    DBSnapshotArn: `arn:aws:rds:${region}:${ACCOUNT}:snapshot:${id}`,
    DBInstanceIdentifier: SOURCE,
    SnapshotCreateTime: new Date(),
    Engine: 'postgres',
    EngineVersion: '16.3',
    AllocatedStorage: 100,
    Status: status,
    Port: 5432,
    MasterUsername: 'postgres',
    SnapshotType: 'manual',
    PercentProgress: 0,
    StorageType: 'gp3',
    Encrypted: true,
    KmsKeyId: region === DR_REGION ? DR_KMS : PRIMARY_KMS,
    DbiResourceId: DBI,
    TagList: tags,
    ...extra,
  });

  rds.on(DescribeDBInstancesCommand).callsFake((input: { DBInstanceIdentifier?: string }) => {
    if (input.DBInstanceIdentifier?.toLowerCase() === SOURCE) return { DBInstances: [source()] };
    throw new DBInstanceNotFoundFault(notFound(`DBInstance ${input.DBInstanceIdentifier}`));
  });
  rds.on(CreateDBSnapshotCommand).callsFake(async (input: { DBSnapshotIdentifier: string; Tags?: Tag[] }, getClient: () => RDSClient) => {
    const region = await regionOf(getClient);
    if (snapshots.get(key(region, input.DBSnapshotIdentifier))) throw new DBSnapshotAlreadyExistsFault(alreadyExists(`Cannot create the snapshot because a snapshot with the identifier ${input.DBSnapshotIdentifier} already exists.`));
    const snapshot = newSnapshot(input.DBSnapshotIdentifier, region, 'creating', input.Tags ?? []);
    snapshots.set(key(region, snapshot.DBSnapshotIdentifier!), { snapshot, describes: 0 });
    return { DBSnapshot: snapshot };
  });
  rds.on(CopyDBSnapshotCommand).callsFake(async (input: { SourceDBSnapshotIdentifier: string; TargetDBSnapshotIdentifier: string; KmsKeyId?: string }, getClient: () => RDSClient) => {
    const region = await regionOf(getClient);
    const sourceId = input.SourceDBSnapshotIdentifier.split(':').pop()!;
    const original = snapshots.get(key(REGION, sourceId));
    if (!original) throw new DBSnapshotNotFoundFault(notFound(`DBSnapshot ${input.SourceDBSnapshotIdentifier}`));
    if (snapshots.get(key(region, input.TargetDBSnapshotIdentifier))) throw new DBSnapshotAlreadyExistsFault(alreadyExists(`Cannot copy the snapshot because a snapshot with the identifier ${input.TargetDBSnapshotIdentifier} already exists.`));
    const snapshot = newSnapshot(input.TargetDBSnapshotIdentifier, region, 'pending', original.snapshot.TagList ?? [], {
      SourceDBSnapshotIdentifier: input.SourceDBSnapshotIdentifier,
      SourceRegion: REGION,
      KmsKeyId: input.KmsKeyId,
      SnapshotCreateTime: original.snapshot.SnapshotCreateTime,
    });
    snapshots.set(key(region, snapshot.DBSnapshotIdentifier!), { snapshot, describes: 0 });
    return { DBSnapshot: snapshot };
  });
  rds.on(DescribeDBSnapshotsCommand).callsFake(async (input: { DBSnapshotIdentifier: string }, getClient: () => RDSClient) => {
    const region = await regionOf(getClient);
    const found = snapshots.get(key(region, input.DBSnapshotIdentifier));
    if (!found) throw new DBSnapshotNotFoundFault(notFound(`DBSnapshot ${input.DBSnapshotIdentifier}`));
    found.describes++;
    const available = found.describes > untilAvailable;
    const copying = found.snapshot.SourceDBSnapshotIdentifier !== undefined;
    found.snapshot = {
      ...found.snapshot,
      Status: available ? 'available' : copying ? 'copying' : 'creating',
      PercentProgress: available ? 100 : Math.min(99, Math.round((100 * found.describes) / (untilAvailable + 1))),
      ...(available ? { FullSnapshotSizeInBytes: 5 * 1024 ** 3 } : {}),
    };
    snapshots.set(key(region, input.DBSnapshotIdentifier), found);
    return { DBSnapshots: [found.snapshot] };
  });
}
