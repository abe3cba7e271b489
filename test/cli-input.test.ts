/**
 * Bad input the CLI refuses: `node bin/lifeboat.js ...` as a child process, its stderr sentence
 * and its exit code. The first part runs with Temporal unreachable (a closed port), which proves
 * every check happens before lifeboat connects to anything; the second part runs against the
 * real stack (identities in any case or spacing, restore points outside the window, unknown
 * workflow ids, --json=false).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPorts, Ports } from '../src/activities/ports';
import { loadConfig } from '../src/config';
import { WorkflowStatus } from '../src/domain/approval';
import { PgBackRestEngine } from '../src/engines/pgbackrest';
import { createLifeboatWorker } from '../src/worker';
import { uniqueId, waitForGate } from './helpers/pitr';
import { ensureFullBackup } from './helpers/backup-exists';
import { CONFIG_FILE, lifeboat as runLifeboat, Run } from './helpers/cli';
import { useStack } from './helpers/stack';
import { uniqueTaskQueue, useTemporal, workflowBundle } from './helpers/temporal';

const lifeboat = (args: string[], env: Record<string, string | undefined> = {}): Promise<Run> => runLifeboat(args, env);

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Exactly one line on stderr, the sentence, and exit 2; nothing on stdout. */
function assertRefused(r: Run, sentence: string | RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}, stderr ${r.stderr}`);
  assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one sentence, got ${r.stderr}`);
  if (typeof sentence === 'string') assert.equal(lines[0], `lifeboat: ${sentence}`, what);
  else assert.match(lines[0], sentence, what);
}

describe('CLI input: refused with one sentence and exit 2 before anything happens', function () {
  describe('while Temporal is unreachable (checked before connecting)', () => {
    let down: Record<string, string>;
    before(async () => {
      down = { LIFEBOAT_TEMPORAL_PORT: String(await closedPort()) };
    });

    const longReason = 'x'.repeat(100 * 1024);
    const cases: Array<{ name: string; args: string[]; env?: Record<string, string>; sentence: string | RegExp }> = [
      {
        name: 'an impossible calendar date',
        args: ['restore', 'app', '--to', '2026-02-30T10:00:00Z', '--reason', 'r', '--as', 'alice@example.com'],
        sentence: 'the restore time 2026-02-30T10:00:00Z does not exist (02/2026 has 28 days): check the date.',
      },
      {
        name: 'hour 24',
        args: ['restore', 'app', '--to', '2026-01-10T24:00:00+01:00', '--reason', 'r', '--as', 'alice@example.com'],
        sentence: 'the restore time 2026-01-10T24:00:00+01:00 does not exist (hour 24 is past 23): check the date.',
      },
      {
        name: 'a switch given another value than true or false',
        args: ['status', 'some-id', '--json=yes'],
        sentence: '--json is a switch: give it alone, or as --json=true or --json=false, not --json=yes.',
      },
      {
        name: 'a repeated option',
        args: ['restore', 'app', '--to', 'latest', '--reason', 'one', '--reason', 'two', '--as', 'alice@example.com'],
        sentence: '--reason was given twice: give it once.',
      },
      {
        name: 'a repeated switch',
        args: ['list', '--running', '--running=false'],
        sentence: '--running was given twice: give it once.',
      },
      {
        name: 'an option of another command',
        args: ['status', 'some-id', '--cutover'],
        sentence: '--cutover does not apply to `lifeboat status`: it takes --config, --json.',
      },
      {
        name: 'an unknown option',
        args: ['approve', 'some-id', '--reson', 'typo'],
        sentence: 'unknown option --reson: `lifeboat approve` takes --config, --gate, --reason, --as, --key, --expires-in, --json.',
      },
      {
        name: 'an extra argument',
        args: ['status', 'some-id', 'another-id'],
        sentence: '`lifeboat status` takes one argument ("some-id"), not also "another-id": quote a value that has spaces.',
      },
      {
        name: 'a single-dash option',
        args: ['list', '-r'],
        sentence: '"-r" is not an option lifeboat knows: options start with two dashes (--config, --json, --awaiting-approval, --running).',
      },
      {
        name: 'a missing --config file',
        args: ['status', 'some-id', '--config', '/nonexistent/lifeboat.yaml'],
        sentence: 'the config file /nonexistent/lifeboat.yaml does not exist: fix the path, or omit it to use ./lifeboat.config.yaml.',
      },
      {
        name: 'a reason of 100 KB',
        args: ['restore', 'app', '--to', 'latest', '--reason', longReason, '--as', 'alice@example.com'],
        sentence: `--reason is ${longReason.length} characters long, over the 2000 lifeboat keeps on record: say it in a paragraph and link the details.`,
      },
      {
        name: 'a decision reason over 2,000 characters',
        args: ['approve', 'some-id', '--reason', 'y'.repeat(2001), '--as', 'bob@example.com'],
        sentence: '--reason is 2001 characters long, over the 2000 lifeboat keeps on record: say it in a paragraph and link the details.',
      },
      {
        name: 'an incident id over 128 characters',
        args: ['restore', 'app', '--to', 'latest', '--reason', 'r', '--incident', 'I'.repeat(129), '--as', 'alice@example.com'],
        sentence: '--incident is 129 characters long, over the 128 lifeboat keeps on record: give the ticket id, not its text.',
      },
      {
        name: 'an unknown gate',
        args: ['approve', 'some-id', '--gate', 'restor', '--reason', 'ok', '--as', 'bob@example.com'],
        sentence: '--gate takes restore, emergencyRestore, cutover, failover, failback, retire, backupDeletion, instanceRemoval, not "restor".',
      },
      {
        name: 'a failback of something that is no workflow id',
        args: ['failback', 'start', 'not an id', '--reason', 'back', '--as', 'alice@example.com'],
        sentence: '"not an id" is not a failover workflow id: give the id `lifeboat failover status` shows.',
      },
      {
        name: 'a failback without a reason',
        args: ['failback', 'start', 'failover-1', '--as', 'alice@example.com'],
        sentence: 'a failback needs --reason, for the record (why now).',
      },
      {
        name: 'no identity',
        args: ['approve', 'some-id', '--reason', 'ok'],
        sentence: 'who are you? pass --as <identity> or set LIFEBOAT_USER, so the decision is on record.',
      },
      {
        name: 'a restore point name PostgreSQL cannot have made',
        args: ['restore', 'app', '--to', `name:${'n'.repeat(64)}`, '--reason', 'r', '--as', 'alice@example.com'],
        sentence: `"${'n'.repeat(64)}" is not a restore point name pg_create_restore_point could have made: letters, digits, spaces and _.:@+-, at most 63 characters.`,
      },
      {
        name: 'a backup kind that does not exist',
        args: ['backup', 'app', '--kind', 'incremental'],
        sentence: '--kind takes full, diff, incr, not "incremental".',
      },
      {
        name: 'a schedules apply option on list',
        args: ['schedules', 'list', '--prune'],
        sentence: '--prune applies to `lifeboat schedules apply`, not list.',
      },
      {
        name: 'an unknown target',
        args: ['restore', 'payroll', '--to', 'latest', '--reason', 'r', '--as', 'alice@example.com'],
        sentence: /^lifeboat: No database target is named "payroll"/,
      },
    ];
    for (const c of cases) {
      it(`${c.name}`, async () => {
        const r = await lifeboat(c.args, { ...down, ...c.env });
        assertRefused(r, c.sentence, c.name);
      });
    }

    it('valid input gets as far as connecting, and says Temporal is unreachable with exit 1', async () => {
      const r = await lifeboat(['restore', 'app', '--to', '2026-02-28T10:00:00Z', '--reason', 'r', '--as', 'alice@example.com', '--json=false'], down);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^lifeboat: cannot reach Temporal at 127\.0\.0\.1:\d+ \(.*\): start it with `lifeboat stack up` or fix temporal\.address in the config\.\n$/);
    });

    it('help refuses arguments it does not take, and a switch set to false is accepted', async () => {
      assertRefused(await lifeboat(['help', '--json']), '--json does not apply to `lifeboat help`: it takes no options.', 'help --json');
      const ok = await lifeboat(['help']);
      assert.equal(ok.code, 0);
      assert.match(ok.stdout, /^usage: lifeboat <command>/);
    });

    it('a config file that cannot be read exits 2 too', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-cli-'));
      try {
        const r = await lifeboat(['list'], { ...down, LIFEBOAT_CONFIG: path.join(dir, 'missing.yaml') });
        assertRefused(r, `the config file ${path.join(dir, 'missing.yaml')} does not exist: fix the path, or omit it to use ./lifeboat.config.yaml.`, 'LIFEBOAT_CONFIG');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('against the real stack', () => {
    let env: TestWorkflowEnvironment;
    let ports: Ports;
    let engine: PgBackRestEngine;
    const config = loadConfig(CONFIG_FILE);
    const taskQueue = uniqueTaskQueue('cli-input');

    before(async function () {
      this.timeout(600000);
      await ensureFullBackup(await useStack());
      env = await useTemporal();
      ports = createPorts(config);
      engine = ports.database('app') as PgBackRestEngine;
    });
    after(async () => ports?.close());

    const onQueue = (args: string[], extra: Record<string, string> = {}) => lifeboat(args, { LIFEBOAT_TASK_QUEUE: taskQueue, ...extra });

    it('unknown workflow ids get lifeboat sentence and exit 2 for status, watch, approve and reject', async () => {
      const id = uniqueId('no-such-workflow');
      for (const command of ['status', 'watch']) {
        assertRefused(await onQueue([command, id]), `no workflow has the id "${id}" in namespace default: check the id with \`lifeboat list\`.`, command);
      }
      for (const command of ['approve', 'reject']) {
        assertRefused(
          await onQueue([command, id, '--reason', 'ok', '--as', 'bob@example.com']),
          `no running workflow has the id "${id}" in namespace default: check the id with \`lifeboat list\` (a finished workflow takes no decisions).`,
          command,
        );
      }
    });

    it('treats identities that differ only in case or spaces as the same person, and records them normalized', async () => {
      const workflowId = uniqueId('test-cli-identity');
      const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
      await worker.runUntil(async () => {
        const started = await onQueue(['restore', 'app', '--to', 'latest', '--reason', 'identity test', '--id', workflowId, '--as', '  Alice@Example.COM ']);
        assert.equal(started.code, 0, started.stderr);
        assert.match(started.stdout, /, not alice@example\.com$/m);
        const handle = env.client.workflow.getHandle(workflowId);
        await waitForGate(handle, 'restore');
        // The requester in other clothes is still the requester.
        assertRefused(
          await onQueue(['approve', workflowId, '--reason', 'mine'], { LIFEBOAT_USER: 'ALICE@example.com ' }),
          'approve refused: alice@example.com requested this and cannot approve it in production: someone else must.',
          'self-approval in capitals',
        );
        const rejected = await onQueue(['reject', workflowId, '--reason', 'test over', '--as', ' Carol@EXAMPLE.com']);
        assert.equal(rejected.code, 0, rejected.stderr);
        assert.match(rejected.stdout, /^restore gate rejected by carol@example\.com at \S+: test over$/m);
        await handle.result();
        // --json=false is honoured: the human lines, not JSON.
        const status = await onQueue(['status', workflowId, '--json=false']);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, new RegExp(`^${workflowId}: completed, phase rejected$`, 'm'));
        const asJson = await onQueue(['status', workflowId, '--json=true']);
        assert.equal((JSON.parse(asJson.stdout) as { status: WorkflowStatus }).status.decisions[0].by, 'carol@example.com');
      });
      const rows = await ports.catalog.query<{ decided_by: string }>('SELECT decided_by FROM approvals WHERE workflow_id = $1', [workflowId]);
      assert.deepEqual(rows.map((r) => r.decided_by), ['carol@example.com']);
      const restores = await ports.catalog.query<{ requested_by: string }>('SELECT requested_by FROM restores WHERE workflow_id = $1', [workflowId]);
      assert.deepEqual(restores.map((r) => r.requested_by), ['alice@example.com']);
    });

    it('refuses lsn: targets outside the window before the approval gate', async () => {
      const window = await engine.restoreWindow('primary');
      assert.ok(window.earliestLsn && window.latestLsn, JSON.stringify(window));
      const worker = await createLifeboatWorker({ config, connection: env.nativeConnection, ports, taskQueue, workflowBundle: await workflowBundle() });
      await worker.runUntil(async () => {
        const before = await onQueue(['restore', 'app', '--to', 'lsn:0/1', '--reason', 'lsn test', '--as', 'alice@example.com', '--id', uniqueId('test-cli-lsn-before')]);
        assertRefused(before, /^lifeboat: restore refused: LSN 0\/1 is before the end of the oldest backup; the restore window is LSN [0-9A-F]+\/[0-9A-F]+ to [0-9A-F]+\/[0-9A-F]+: pick an LSN inside it\.$/, 'lsn before');
        const afterId = uniqueId('test-cli-lsn-after');
        const after = await onQueue(['restore', 'app', '--to', 'lsn:FFFFFFFF/0', '--reason', 'lsn test', '--as', 'alice@example.com', '--id', afterId]);
        assertRefused(after, /^lifeboat: restore refused: LSN FFFFFFFF\/0 is past the last archived WAL record; the restore window is LSN .*: pick an LSN inside it, or "latest"\.$/, 'lsn after');
        // Refused in validation: no gate was ever opened (the first step only asks where the target's host work runs).
        const events = (await env.client.workflow.getHandle(afterId).fetchHistory()).events ?? [];
        const activities = events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
        assert.deepEqual(activities, ['hostTaskQueueOf', 'validateRestore']);
      });
    });
  });
});
