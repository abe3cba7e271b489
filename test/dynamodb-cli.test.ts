/**
 * Bad input for DynamoDB targets, refused by the CLI with one sentence and exit 2 before it
 * connects to anything: `node bin/lifeboat.js` as a child process with Temporal unreachable (a
 * closed port), against a config file that adds a DynamoDB target to the example.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../src/client/args';
import { lifeboatCli } from '../src/client/program';
import { desiredSchedules } from '../src/client/schedule-plan';
import { parseConfig } from '../src/config';
import { CLI, CONFIG_FILE, Run, runNode } from './helpers/cli';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

describe('CLI input for DynamoDB targets: one sentence, exit 2, before connecting', function () {
  this.timeout(120000);
  let configFile: string;
  let env: Record<string, string>;

  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ddb-cli-'));
    configFile = path.join(dir, 'lifeboat.config.yaml');
    const target = [
      '  dynamodb:',
      '    - name: orders-table',
      '      environment: production',
      '      region: us-east-1',
      '      drRegion: us-west-2',
      '      tableName: orders',
      '      exports:',
      '        primary: { store: primary, bucket: orders-exports }',
      '        dr: { store: dr, bucket: orders-exports-dr }',
      '',
    ].join('\n');
    fs.writeFileSync(configFile, `${fs.readFileSync(CONFIG_FILE, 'utf8').replace(/\n*$/, '\n')}${target}`);
    env = { LIFEBOAT_TEMPORAL_PORT: String(await closedPort()) };
  });

  const restore = (...args: string[]) => ['restore', 'orders-table', '--config', '', ...args];
  const cases: Array<{ name: string; args: string[]; sentence: string }> = [
    { name: 'no --into-table', args: restore('--backup', 'latest', '--reason', 'r', '--as', 'alice@example.com'), sentence: 'restoring the DynamoDB target orders-table needs --into-table <new>: the name of a new table to restore into.' },
    { name: '--into-table is the source', args: restore('--to', 'latest', '--into-table', 'orders', '--reason', 'r', '--as', 'alice@example.com'), sentence: '--into-table orders is the source table of orders-table; lifeboat restores only into a new table, so give another name.' },
    { name: 'an impossible table name', args: restore('--to', 'latest', '--into-table', 'o/rders', '--reason', 'r', '--as', 'alice@example.com'), sentence: '--into-table "o/rders" is not a DynamoDB table name (3 to 255 letters, digits, underscores, hyphens and dots): give a new table name.' },
    { name: 'both --to and --backup', args: restore('--to', 'latest', '--backup', 'latest', '--into-table', 'orders-copy', '--reason', 'r', '--as', 'alice@example.com'), sentence: 'give --to (a point in time) or --backup (a backup), not both.' },
    { name: 'neither --to nor --backup', args: restore('--into-table', 'orders-copy', '--reason', 'r', '--as', 'alice@example.com'), sentence: 'restoring the DynamoDB target orders-table needs --to <time|latest> or --backup <id|latest>.' },
    { name: 'a time without a zone', args: restore('--to', '2026-11-30T10:00:00', '--into-table', 'orders-copy', '--reason', 'r', '--as', 'alice@example.com'), sentence: '--to "2026-11-30T10:00:00" is not a time with a zone: give an ISO-8601 time such as 2026-11-21T10:01:00Z, or latest.' },
    { name: 'a DR restore to a time', args: restore('--to', 'latest', '--from-region', 'dr', '--into-table', 'orders-copy', '--reason', 'r', '--as', 'alice@example.com'), sentence: "a restore in the DR region (us-west-2) comes from a backup's DR export: give --backup <id|latest> instead of --to." },
    { name: 'an option of another kind', args: restore('--to', 'latest', '--into-table', 'orders-copy', '--into-schema', 'x', '--reason', 'r', '--as', 'alice@example.com'), sentence: '--into-schema does not apply to orders-table, a DynamoDB target: restore it with --to <time|latest> or --backup <id|latest>, and --into-table <new>.' },
    { name: 'no reason', args: restore('--to', 'latest', '--into-table', 'orders-copy', '--as', 'alice@example.com'), sentence: 'a restore needs --reason, for the record.' },
    { name: '--into-table on a database target', args: ['restore', 'app', '--config', '', '--to', 'latest', '--into-table', 'x-y-z', '--reason', 'r', '--as', 'alice@example.com'], sentence: '--into-table applies to DynamoDB targets; app is not one.' },
    { name: '--kind on a DynamoDB backup', args: ['backup', 'orders-table', '--config', '', '--kind', 'incr'], sentence: 'orders-table is a DynamoDB target, whose backups are always an on-demand backup and a full export; leave out --kind.' },
  ];

  // Three through the real entry point (exit code, stderr, nothing on stdout); the others through the same program in-process.
  const throughChild = new Set(['no --into-table', 'an option of another kind', '--kind on a DynamoDB backup']);
  for (const c of cases.filter((x) => !throughChild.has(x.name))) {
    it(`refuses ${c.name}`, async () => {
      const args = c.args.map((a, i) => (a === '' && c.args[i - 1] === '--config' ? configFile : a));
      const err = await lifeboatCli()
        .run(args)
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof UsageError, `expected a usage error, got ${String(err)}`);
      assert.equal(err.message, c.sentence);
    });
  }
  for (const c of cases.filter((x) => throughChild.has(x.name))) {
    it(`refuses ${c.name} (bin/lifeboat.js)`, async () => {
      const args = c.args.map((a, i) => (a === '' && c.args[i - 1] === '--config' ? configFile : a));
      const r: Run = await runNode(CLI, args, env);
      assert.equal(r.code, 2, `exit ${r.code}, stderr ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trimEnd(), `lifeboat: ${c.sentence}`);
    });
  }

  describe('the config and the schedules', () => {
    const withTable = (lines: string[]) => `${fs.readFileSync(CONFIG_FILE, 'utf8').replace(/\n*$/, '\n')}${lines.join('\n')}\n`;
    const table = (overrides: { drRegion?: string; dr?: string } = {}) => [
      '  dynamodb:',
      '    - name: orders-table',
      '      environment: production',
      '      region: us-east-1',
      `      drRegion: ${overrides.drRegion ?? 'us-west-2'}`,
      '      tableName: orders',
      '      exports:',
      '        primary: { store: primary, bucket: orders-exports }',
      `        dr: ${overrides.dr ?? '{ store: dr, bucket: orders-exports-dr }'}`,
    ];

    it('refuses a DR region equal to the region and a DR export bucket equal to the primary one, each with its path', () => {
      const sameRegion = (() => { try { parseConfig(withTable(table({ drRegion: 'us-east-1' })), 'x.yaml'); return undefined; } catch (e) { return e as Error; } })();
      assert.match(String(sameRegion?.message), /targets\.dynamodb\[0\]\.drRegion.*must differ from region \(both are us-east-1\): a copy in the same region does not survive losing it/);
      const sameBucket = (() => { try { parseConfig(withTable(table({ dr: '{ store: primary, bucket: orders-exports }' })), 'x.yaml'); return undefined; } catch (e) { return e as Error; } })();
      assert.match(String(sameBucket?.message), /targets\.dynamodb\[0\]\.exports\.dr\.bucket.*must differ from the primary export bucket orders-exports/);
    });

    it('schedules each table\'s backup on its own schedule and its drill on the database drill cadence', () => {
      const config = parseConfig(withTable(table()), 'x.yaml');
      assert.equal(config.targets.dynamodb[0].exports.primary.prefix, 'dynamodb');
      const mine = desiredSchedules(config).filter((d) => d.target === 'orders-table');
      assert.deepEqual(mine.map((d) => [d.scheduleId, d.action.workflowType, d.action.args]), [
        ['lifeboat-dynamodb-backup-orders-table', 'dynamodbBackup', [{ target: 'orders-table', requestedBy: 'schedule' }]],
        ['lifeboat-dynamodb-drill-orders-table', 'dynamodbDrill', [{ target: 'orders-table', requestedBy: 'schedule' }]],
      ]);
      assert.deepEqual([mine[0].calendars[0].hour, mine[0].calendars[0].minute], [[3], [30]]);
    });
  });
});
