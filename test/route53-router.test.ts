import assert from 'node:assert/strict';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  InvalidChangeBatch,
  ListResourceRecordSetsCommand,
  NoSuchHostedZone,
  Route53Client,
  Route53ServiceException,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { mockClient } from 'aws-sdk-client-mock';
import { LifeboatError } from '../src/domain/errors';
import { Route53Router, type Route53RouterOptions } from '../src/engines/route53';

const ZONE = 'Z0482716BHKXJ3EXAMPLE';
const NAME = 'db.orders.example.com';
const CHANGE_ID = 'C0571637OZ8L5V7EXAMPLE';
const meta = { httpStatusCode: 400, requestId: '0e7c1a5d-3b8f-4a63-9d51-8b2e4f6a7c90', attempts: 1, totalRetryDelay: 0 };

function changeInfo(status: 'PENDING' | 'INSYNC') {
  return { ChangeInfo: { Id: `/change/${CHANGE_ID}`, Status: status, SubmittedAt: new Date('2024-05-20T12:41:07.153Z'), Comment: `lifeboat: point ${NAME} at 10.20.30.40` } };
}

function records(...sets: ResourceRecordSet[]) {
  return { ResourceRecordSets: sets, IsTruncated: false, MaxItems: 100 };
}

const soa: ResourceRecordSet = {
  Name: 'orders.example.com.',
  Type: 'SOA',
  TTL: 900,
  ResourceRecords: [{ Value: 'ns-1536.awsdns-00.co.uk. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400' }],
};
const aRecord: ResourceRecordSet = { Name: `${NAME}.`, Type: 'A', TTL: 60, ResourceRecords: [{ Value: '10.0.1.25' }] };
const txtRecord: ResourceRecordSet = { Name: `${NAME}.`, Type: 'TXT', TTL: 300, ResourceRecords: [{ Value: '"owner=payments"' }] };
const nextName: ResourceRecordSet = { Name: 'www.orders.example.com.', Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: 'orders-web.example.net' }] };

async function lifeboatFailure(promise: Promise<unknown>, code: string, nonRetryable: boolean): Promise<LifeboatError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof LifeboatError, `expected a LifeboatError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.nonRetryable, nonRetryable, caught.message);
  return caught;
}

describe('Route53Router (AWS SDK boundary)', () => {
  const client = new Route53Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } });
  const route53 = mockClient(client);
  let sleeps: number[];
  let clock: number;

  function router(options: Partial<Route53RouterOptions> = {}): Route53Router {
    return new Route53Router({
      hostedZoneId: `/hostedzone/${ZONE}`,
      client,
      pollIntervalMs: 2000,
      timeoutMs: 60_000,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      ...options,
    });
  }

  beforeEach(() => {
    route53.reset();
    sleeps = [];
    clock = 1_716_208_867_000;
  });

  after(() => route53.restore());

  describe('currentTarget', () => {
    it('reads the A record of the name', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(aRecord, txtRecord, nextName));
      assert.deepEqual(await router().currentTarget(NAME), { host: '10.0.1.25', ttl: 60 });
      const calls = route53.commandCalls(ListResourceRecordSetsCommand);
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args[0].input, { HostedZoneId: ZONE, StartRecordName: `${NAME}.` });
    });

    it('reads a CNAME without its trailing dot', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records({ Name: `${NAME}.`, Type: 'CNAME', TTL: 30, ResourceRecords: [{ Value: 'orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com.' }] }, nextName));
      assert.deepEqual(await router().currentTarget(`${NAME}.`), { host: 'orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com', ttl: 30 });
    });

    it('returns undefined when the name has no address record', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(nextName, soa));
      assert.equal(await router().currentTarget(NAME), undefined);
    });

    it('follows pagination while records of the name continue', async () => {
      route53
        .on(ListResourceRecordSetsCommand)
        .resolvesOnce({ ResourceRecordSets: [{ ...txtRecord, Type: 'CAA', ResourceRecords: [{ Value: '0 issue "amazon.com"' }] }], IsTruncated: true, NextRecordName: `${NAME}.`, NextRecordType: 'CNAME', MaxItems: 1 })
        .resolves(records({ Name: `${NAME}.`, Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: 'orders-dr.example.net' }] }));
      assert.deepEqual(await router().currentTarget(NAME), { host: 'orders-dr.example.net', ttl: 60 });
      assert.deepEqual(route53.commandCalls(ListResourceRecordSetsCommand)[1].args[0].input, { HostedZoneId: ZONE, StartRecordName: `${NAME}.`, StartRecordType: 'CNAME' });
    });
  });

  describe('pointAt', () => {
    it('UPSERTs an A record for an IP and waits PENDING -> INSYNC', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(aRecord, txtRecord, nextName));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('PENDING'));
      route53.on(GetChangeCommand).resolvesOnce(changeInfo('PENDING')).resolvesOnce(changeInfo('PENDING')).resolves(changeInfo('INSYNC'));
      const polls: string[] = [];
      const result = await router({ onPoll: (s) => polls.push(s.status) }).pointAt(NAME, { host: '10.20.30.40', port: 5432 }, 30);
      assert.deepEqual(result, { changeId: CHANGE_ID });

      const changes = route53.commandCalls(ChangeResourceRecordSetsCommand);
      assert.equal(changes.length, 1);
      assert.deepEqual(changes[0].args[0].input, {
        HostedZoneId: ZONE,
        ChangeBatch: {
          Comment: `lifeboat: point ${NAME} at 10.20.30.40`,
          Changes: [{ Action: 'UPSERT', ResourceRecordSet: { Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] } }],
        },
      });
      const gets = route53.commandCalls(GetChangeCommand);
      assert.equal(gets.length, 3);
      for (const get of gets) assert.deepEqual(get.args[0].input, { Id: CHANGE_ID });
      assert.deepEqual(polls, ['PENDING', 'PENDING', 'INSYNC']);
      assert.deepEqual(sleeps, [2000, 2000, 2000]);
    });

    it('replaces an A record with a CNAME for a host name in one atomic batch', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(aRecord, txtRecord, nextName));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('PENDING'));
      route53.on(GetChangeCommand).resolves(changeInfo('INSYNC'));
      const host = 'orders-pitr-7f3a9c.cx1y2z3abcde.us-west-2.rds.amazonaws.com';
      await router().pointAt(NAME, { host, port: 5432 });
      assert.deepEqual(route53.commandCalls(ChangeResourceRecordSetsCommand)[0].args[0].input.ChangeBatch?.Changes, [
        { Action: 'DELETE', ResourceRecordSet: aRecord },
        { Action: 'UPSERT', ResourceRecordSet: { Name: `${NAME}.`, Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: `${host}.` }] } },
      ]);
    });

    it('returns at once when Route53 already reports INSYNC', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records());
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('INSYNC'));
      assert.deepEqual(await router().pointAt(NAME, { host: '10.20.30.40' }), { changeId: CHANGE_ID });
      assert.equal(route53.commandCalls(GetChangeCommand).length, 0);
    });

    it('gives up waiting after the timeout with a retryable error', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(aRecord));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('PENDING'));
      route53.on(GetChangeCommand).resolves(changeInfo('PENDING'));
      const err = await lifeboatFailure(router({ timeoutMs: 10_000 }).pointAt(NAME, { host: '10.20.30.40' }), 'ROUTE53_CHANGE_TIMEOUT', false);
      assert.match(err.message, new RegExp(`aws route53 get-change --id ${CHANGE_ID}`));
      assert.equal(route53.commandCalls(GetChangeCommand).length, 5);
    });

    it('surfaces a refused change batch as non-retryable', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(aRecord));
      route53.on(ChangeResourceRecordSetsCommand).rejects(
        new InvalidChangeBatch({
          message: `[RRSet with DNS name ${NAME}., type A, SetIdentifier primary cannot be created because a non multivalue answer rrset exists with the same name and type.]`,
          $metadata: meta,
        }),
      );
      const err = await lifeboatFailure(router().pointAt(NAME, { host: '10.20.30.40' }), 'AWS_INVALID_CHANGE_BATCH', true);
      assert.match(err.message, /^Route53 ChangeResourceRecordSets failed with InvalidChangeBatch while pointing/);
      assert.equal(route53.commandCalls(GetChangeCommand).length, 0);
    });

    it('surfaces a missing hosted zone as non-retryable and throttling as retryable', async () => {
      route53
        .on(ListResourceRecordSetsCommand)
        .rejectsOnce(new NoSuchHostedZone({ message: `No hosted zone found with ID: ${ZONE}`, $metadata: { ...meta, httpStatusCode: 404 } }))
        .rejectsOnce(new Route53ServiceException({ name: 'Throttling', $fault: 'client', $metadata: meta, message: 'Rate exceeded' }));
      await lifeboatFailure(router().pointAt(NAME, { host: '10.20.30.40' }), 'AWS_HOSTED_ZONE_NOT_FOUND', true);
      await lifeboatFailure(router().pointAt(NAME, { host: '10.20.30.40' }), 'AWS_TRANSIENT', false);
    });
  });

  describe('rollback: snapshot, restoreSnapshot, repairCommand', () => {
    const cname: ResourceRecordSet = { Name: `${NAME}.`, Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: 'orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com' }] };
    const restored = 'orders-pitr-7f3a9c.cx1y2z3abcde.us-east-1.rds.amazonaws.com';

    it('records the CNAME with its TTL before the cutover, and puts it back after a cutover to a CNAME', async () => {
      route53.on(ListResourceRecordSetsCommand).resolvesOnce(records(cname, txtRecord, nextName));
      const before = await router().snapshot(NAME);
      assert.deepEqual(before, {
        name: `${NAME}.`,
        records: [{ name: `${NAME}.`, type: 'CNAME', ttl: 300, values: ['orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com'] }],
        endpoint: { host: 'orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com' },
        takenAt: new Date(clock).toISOString(),
      });
      // The snapshot survives history (JSON) unchanged.
      const fromHistory = JSON.parse(JSON.stringify(before)) as typeof before;

      // After the cutover the name is a CNAME to the restored instance; rollback UPSERTs the old one, TTL included.
      route53.on(ListResourceRecordSetsCommand).resolves(records({ Name: `${NAME}.`, Type: 'CNAME', TTL: 60, ResourceRecords: [{ Value: `${restored}.` }] }, txtRecord));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('PENDING'));
      route53.on(GetChangeCommand).resolvesOnce(changeInfo('PENDING')).resolves(changeInfo('INSYNC'));
      assert.deepEqual(await router().restoreSnapshot(fromHistory), { changeId: CHANGE_ID });
      const batch = route53.commandCalls(ChangeResourceRecordSetsCommand)[0].args[0].input;
      assert.equal(batch.HostedZoneId, ZONE);
      assert.equal(batch.ChangeBatch?.Comment, `lifeboat: roll back ${NAME} to its records of ${before.takenAt}`);
      assert.deepEqual(batch.ChangeBatch?.Changes, [{ Action: 'UPSERT', ResourceRecordSet: cname }]);
      assert.equal(route53.commandCalls(GetChangeCommand).length, 2);
    });

    it('deletes the A record the cutover wrote and restores the CNAME in one atomic batch', async () => {
      const snapshot = { name: `${NAME}.`, records: [{ name: `${NAME}.`, type: 'CNAME', ttl: 300, values: ['orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com'] }], takenAt: '2024-05-20T12:40:00.000Z' };
      const written: ResourceRecordSet = { Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] };
      route53.on(ListResourceRecordSetsCommand).resolves(records(written, txtRecord));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('INSYNC'));
      await router().restoreSnapshot(snapshot);
      assert.deepEqual(route53.commandCalls(ChangeResourceRecordSetsCommand)[0].args[0].input.ChangeBatch?.Changes, [
        { Action: 'DELETE', ResourceRecordSet: written },
        { Action: 'UPSERT', ResourceRecordSet: cname },
      ]);
    });

    it('puts back an alias record as an alias, and deletes the name when it did not exist before', async () => {
      const alias: ResourceRecordSet = { Name: `${NAME}.`, Type: 'A', AliasTarget: { HostedZoneId: 'Z35SXDOTRQ7X7K', DNSName: 'dualstack.orders-lb-1234.us-east-1.elb.amazonaws.com.', EvaluateTargetHealth: true } };
      route53.on(ListResourceRecordSetsCommand).resolvesOnce(records(alias));
      const before = await router().snapshot(NAME);
      assert.deepEqual(before.endpoint, { host: 'dualstack.orders-lb-1234.us-east-1.elb.amazonaws.com' });
      route53.on(ListResourceRecordSetsCommand).resolves(records({ Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] }));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('INSYNC'));
      await router().restoreSnapshot(before);
      assert.deepEqual(route53.commandCalls(ChangeResourceRecordSetsCommand)[0].args[0].input.ChangeBatch?.Changes, [{ Action: 'UPSERT', ResourceRecordSet: alias }]);

      route53.reset();
      const written: ResourceRecordSet = { Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] };
      route53.on(ListResourceRecordSetsCommand).resolves(records(written));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('INSYNC'));
      await router().restoreSnapshot({ name: `${NAME}.`, records: [], takenAt: '2024-05-20T12:40:00.000Z' });
      assert.deepEqual(route53.commandCalls(ChangeResourceRecordSetsCommand)[0].args[0].input.ChangeBatch?.Changes, [{ Action: 'DELETE', ResourceRecordSet: written }]);
    });

    it('changes nothing when the name had no records and has none now', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(nextName));
      assert.deepEqual(await router().restoreSnapshot({ name: `${NAME}.`, records: [], takenAt: '2024-05-20T12:40:00.000Z' }), { changeId: 'unchanged' });
      assert.equal(route53.commandCalls(ChangeResourceRecordSetsCommand).length, 0);
    });

    it('surfaces a refused rollback as non-retryable, so the workflow reports it instead of removing anything', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records({ Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] }));
      route53.on(ChangeResourceRecordSetsCommand).rejects(new InvalidChangeBatch({ message: 'Tried to delete resource record set but it was not found', $metadata: meta }));
      const err = await lifeboatFailure(router().restoreSnapshot({ name: `${NAME}.`, records: [{ name: `${NAME}.`, type: 'CNAME', ttl: 300, values: ['orders-prod.example.net'] }], takenAt: '2024-05-20T12:40:00.000Z' }), 'AWS_INVALID_CHANGE_BATCH', true);
      assert.match(err.message, /pointing db\.orders\.example\.com back at its records of 2024-05-20T12:40:00\.000Z/);
    });

    it('writes a repair command that an operator can paste: delete what the cutover wrote, put the old records back', () => {
      const snapshot = { name: `${NAME}.`, records: [{ name: `${NAME}.`, type: 'CNAME', ttl: 300, values: ["orders-prod's.example.net"] }], takenAt: '2024-05-20T12:40:00.000Z' };
      const command = router().repairCommand(snapshot, { host: '10.20.30.40', port: 5432, ttl: 30 });
      const prefix = `aws route53 change-resource-record-sets --hosted-zone-id ${ZONE} --change-batch '`;
      assert.ok(command.startsWith(prefix), command);
      // The single quote inside a value is escaped for the shell; unescaped, the batch is the JSON Route53 takes.
      const batch = JSON.parse(command.slice(prefix.length, -1).replace(/'\\''/g, "'")) as { Changes: unknown[] };
      assert.deepEqual(batch.Changes, [
        { Action: 'DELETE', ResourceRecordSet: { Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] } },
        { Action: 'UPSERT', ResourceRecordSet: { Name: `${NAME}.`, Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: "orders-prod's.example.net" }] } },
      ]);
    });
  });

  describe('a move that fails leaves the records as they were', () => {
    const cname: ResourceRecordSet = { Name: `${NAME}.`, Type: 'CNAME', TTL: 300, ResourceRecords: [{ Value: 'orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com.' }] };
    const drHost = 'failover-orders-prod-7f3a9c.cx1y2z3abcde.us-west-2.rds.amazonaws.com';
    const moved: ResourceRecordSet = { Name: `${NAME}.`, Type: 'A', TTL: 30, ResourceRecords: [{ Value: '10.20.30.40' }] };
    const undo = { ChangeInfo: { Id: '/change/C0918273UNDO5V7EXAMPLE', Status: 'PENDING' as const, SubmittedAt: new Date('2024-05-20T12:41:09.020Z') } };
    const getChangeDenied = () =>
      new Route53ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { ...meta, httpStatusCode: 403 }, message: `User: arn:aws:sts::123456789012:assumed-role/lifeboat-worker/i-0abc is not authorized to perform: route53:GetChange` });

    it('a refused batch is one atomic change that Route53 rejected whole: nothing is sent after it', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(cname, txtRecord));
      route53.on(ChangeResourceRecordSetsCommand).rejects(new InvalidChangeBatch({ message: `[Tried to delete resource record set [name='${NAME}.', type='CNAME'] but the values provided do not match the current values]`, $metadata: meta }));
      await lifeboatFailure(router().pointAt(NAME, { host: '10.20.30.40' }, 30), 'AWS_INVALID_CHANGE_BATCH', true);
      const changes = route53.commandCalls(ChangeResourceRecordSetsCommand);
      assert.equal(changes.length, 1);
      // The old CNAME's deletion and the new A record travel together: Route53 applies both or neither.
      assert.deepEqual(changes[0].args[0].input.ChangeBatch?.Changes, [
        { Action: 'DELETE', ResourceRecordSet: cname },
        { Action: 'UPSERT', ResourceRecordSet: moved },
      ]);
      assert.equal(route53.commandCalls(GetChangeCommand).length, 0);
    });

    it('an accepted move that cannot be confirmed (GetChange denied) is undone: the previous records go back in one batch', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(cname, txtRecord));
      route53.on(ChangeResourceRecordSetsCommand).resolvesOnce(changeInfo('PENDING')).resolvesOnce(undo);
      route53.on(GetChangeCommand).rejects(getChangeDenied());
      const err = await lifeboatFailure(router().pointAt(NAME, { host: '10.20.30.40' }, 30), 'AWS_ACCESS_DENIED', true);
      assert.match(err.message, /^Route53 GetChange failed with AccessDenied while waiting for change C0571637OZ8L5V7EXAMPLE \(db\.orders\.example\.com -> 10\.20\.30\.40\) to be served/);
      assert.match(err.message, /; the move could not be confirmed, so lifeboat submitted the previous records of db\.orders\.example\.com again \(change C0918273UNDO5V7EXAMPLE\)\.$/);
      const changes = route53.commandCalls(ChangeResourceRecordSetsCommand);
      assert.equal(changes.length, 2);
      assert.deepEqual(changes[1].args[0].input, {
        HostedZoneId: ZONE,
        ChangeBatch: {
          Comment: `lifeboat: undo the unconfirmed move of ${NAME}`,
          Changes: [
            { Action: 'DELETE', ResourceRecordSet: moved },
            { Action: 'UPSERT', ResourceRecordSet: cname },
          ],
        },
      });
    });

    it('when the undo is refused too, the error carries the command that puts the records back by hand', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(cname));
      route53
        .on(ChangeResourceRecordSetsCommand)
        .resolvesOnce({ ChangeInfo: { ...changeInfo('PENDING').ChangeInfo, Comment: `lifeboat: point ${NAME} at ${drHost}` } })
        .rejectsOnce(new Route53ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { ...meta, httpStatusCode: 403 }, message: 'not authorized to perform: route53:ChangeResourceRecordSets' }));
      route53.on(GetChangeCommand).rejects(getChangeDenied());
      const err = await lifeboatFailure(router().pointAt(NAME, { host: drHost }, 60), 'AWS_ACCESS_DENIED', true);
      const prefix = `put them back with aws route53 change-resource-record-sets --hosted-zone-id ${ZONE} --change-batch '`;
      const at = err.message.indexOf(prefix);
      assert.ok(at > 0, err.message);
      const batch = JSON.parse(err.message.slice(at + prefix.length, -1)) as { Changes: unknown[] };
      // Same type (CNAME to CNAME): putting back is one UPSERT of the old value over the new.
      assert.deepEqual(batch.Changes, [{ Action: 'UPSERT', ResourceRecordSet: cname }]);
    });

    it('a wait that may still succeed (GetChange throttled) is left to the activity retry, with no undo', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(cname));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('PENDING'));
      route53.on(GetChangeCommand).rejects(new Route53ServiceException({ name: 'Throttling', $fault: 'client', $metadata: meta, message: 'Rate exceeded' }));
      await lifeboatFailure(router().pointAt(NAME, { host: '10.20.30.40' }), 'AWS_TRANSIENT', false);
      assert.equal(route53.commandCalls(ChangeResourceRecordSetsCommand).length, 1);
    });

    it('putting saved records back waits PENDING -> INSYNC before it returns', async () => {
      route53.on(ListResourceRecordSetsCommand).resolves(records(moved));
      route53.on(ChangeResourceRecordSetsCommand).resolves(changeInfo('PENDING'));
      route53.on(GetChangeCommand).resolvesOnce(changeInfo('PENDING')).resolvesOnce(changeInfo('PENDING')).resolves(changeInfo('INSYNC'));
      const polls: string[] = [];
      const saved = { name: `${NAME}.`, records: [{ name: `${NAME}.`, type: 'CNAME', ttl: 300, values: ['orders-prod.c9akciq32xyz.us-east-1.rds.amazonaws.com.'] }], takenAt: '2024-05-20T12:40:00.000Z' };
      assert.deepEqual(await router({ onPoll: (p) => polls.push(p.status) }).restoreSnapshot(saved), { changeId: CHANGE_ID });
      assert.deepEqual(polls, ['PENDING', 'PENDING', 'INSYNC']);
      assert.deepEqual(sleeps, [2000, 2000, 2000]);
    });
  });
});
