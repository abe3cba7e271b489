/**
 * What the CLI says about itself, through the real `node bin/lifeboat.js`: the overview, each
 * command's --help with its own options, the bash completion script; and the CLI's tables,
 * whose columns follow their content so a 60-character target name does not break them.
 * Nothing here needs a server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { backupRows } from '../src/client/backup-commands';
import { workflowRows } from '../src/client/recovery-commands';
import { formatTable } from '../src/client/output';

const ROOT = path.resolve(__dirname, '../..');
const CLI = path.join(ROOT, 'bin/lifeboat.js');

async function lifeboat(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, LIFEBOAT_CONFIG: path.join(ROOT, 'lifeboat.config.yaml') } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The option names a command's help lists, in order. */
function listedOptions(help: string): string[] {
  const section = help.split(/^options:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return [...section.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
}

describe('CLI help, completion and tables', () => {
  it('lifeboat --help, lifeboat help and lifeboat alone print the overview on stdout with exit 0', async () => {
    for (const args of [['--help'], ['help'], []]) {
      const r = await lifeboat(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /^usage: lifeboat <command> \[options\]\n/);
      for (const command of ['stack up\\|down\\|status\\|region', 'restore <target>', 'approve <workflow-id>', 'backups list\\|delete', 'schedules apply\\|list', 'completion <shell>']) {
        assert.match(r.stdout, new RegExp(`^ {2}${command} +\\S`, 'm'), `${args.join(' ')} lists ${command}`);
      }
    }
  });

  const expected: Record<string, string[]> = {
    'stack up': ['--json', '--with-prometheus', '--help'],
    'worker status': ['--json', '--agent', '--help'],
    preflight: ['--config', '--target', '--id', '--json', '--help'],
    restore: ['--config', '--to', '--reason', '--as', '--destination', '--from-region', '--incident', '--id', '--json', '--emergency', '--cutover', '--keep', '--logical', '--tables', '--into-database', '--into-schema', '--backup', '--prefix', '--keys-from', '--into-bucket', '--into', '--in-place', '--mirror', '--into-table', '--help'],
    approve: ['--config', '--gate', '--reason', '--as', '--key', '--expires-in', '--json', '--help'],
    reject: ['--config', '--gate', '--reason', '--as', '--key', '--expires-in', '--json', '--help'],
    status: ['--config', '--json', '--help'],
    decrypt: ['--key', '--in', '--out', '--decompress', '--target', '--backup', '--key-id', '--help'],
    watch: ['--config', '--json', '--help'],
    list: ['--config', '--json', '--awaiting-approval', '--running', '--help'],
    backup: ['--config', '--kind', '--id', '--as', '--json', '--logical', '--wait', '--help'],
    'backups list': ['--config', '--target', '--json', '--help'],
    'backups delete': ['--config', '--reason', '--incident', '--as', '--bypass-governance', '--id', '--json', '--help'],
    retention: ['--config', '--target', '--json', '--dry-run', '--help'],
    'schedules apply': ['--config', '--prefix', '--json', '--dry-run', '--prune', '--help'],
    'schedules list': ['--config', '--prefix', '--json', '--help'],
  };
  for (const [command, options] of Object.entries(expected)) {
    it(`lifeboat ${command} --help lists its own options, each with a description`, async () => {
      const r = await lifeboat([...command.split(' '), '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^usage: lifeboat ${command} \\[options\\]`));
      assert.deepEqual(listedOptions(r.stdout), options);
      for (const option of options) assert.match(r.stdout, new RegExp(`^ {2}${option}( <[^>]+>)? +\\S`, 'm'), `${option} has a description`);
    });
  }

  it('--help wins anywhere on the line, help <command> says the same, and a parent lists its subcommands', async () => {
    const direct = await lifeboat(['restore', '--help']);
    assert.equal((await lifeboat(['restore', 'app', '--to', 'latest', '--help'])).stdout, direct.stdout);
    assert.equal((await lifeboat(['help', 'restore'])).stdout, direct.stdout);
    const parent = await lifeboat(['schedules', '--help']);
    assert.equal(parent.code, 0);
    assert.match(parent.stdout, /^ {2}apply \[options\] +create or update/m);
    assert.match(parent.stdout, /^ {2}list \[options\] +lifeboat's schedules/m);
  });

  it('lifeboat completion bash prints a script that completes commands, subcommands and per-command options', async () => {
    const r = await lifeboat(['completion', 'bash']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^complete -F _lifeboat lifeboat$/m);
    assert.match(r.stdout, /^ {4}"schedules apply"\) words="--config --prefix --json --dry-run --prune --help" ;;$/m);
    assert.match(r.stdout, /^ {4}"stack"\) words="up down status region --help" ;;$/m);
    const refused = await lifeboat(['completion', 'fish']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^lifeboat: `lifeboat completion` takes bash, not "fish"/);
  });

  describe('tables', () => {
    const longName = 'orders-' + 'x'.repeat(53);
    before(() => assert.equal(longName.length, 60));

    /** Where each column starts on a line, found by the text it must hold. */
    const starts = (row: string, cells: string[]) => {
      let from = 0;
      return cells.map((cell) => {
        const at = row.indexOf(cell, from);
        from = at + cell.length;
        return at;
      });
    };

    it('formatTable sizes each column to its widest cell and leaves no trailing space', () => {
      assert.deepEqual(formatTable([['a', 'bb', 'c'], ['ccc', '', 'd']]), ['a    bb  c', 'ccc      d']);
    });

    it('lifeboat list keeps its columns aligned with a 60-character target name', () => {
      const lines = workflowRows([
        { workflowId: 'restore-app-1', kind: 'restore', target: 'app', phase: 'awaiting-approval', awaitingApproval: true, state: 'RUNNING', started: '' },
        { workflowId: 'backup-long-1', kind: 'database-backup', target: longName, phase: 'backing-up', state: 'RUNNING', started: '' },
      ]);
      const short = starts(lines[0], ['RUNNING', 'restore', 'app', 'awaiting-approval', 'AWAITING APPROVAL', 'restore-app-1']);
      const long = starts(lines[1], ['RUNNING', 'database-backup', longName, 'backing-up', 'backup-long-1']);
      assert.deepEqual(long.slice(0, 4), short.slice(0, 4), lines.join('\n'));
      assert.equal(long[4], short[5], 'the workflow ids line up');
      assert.ok(short[3] > long[2] + longName.length, 'the long name has its column to itself');
    });

    it('lifeboat backups list keeps its columns aligned with a 60-character target name', () => {
      const lines = backupRows([
        { id: '1', target: 'app', environment: 'local', kind: 'full', engine: 'pgbackrest', name: 'b1', status: 'verified', sizeBytes: 1048576, completedAt: '2026-11-21T10:01:00.000Z', primary: 'p1', dr: 'd1', drLagSeconds: 42, drCopyMode: 'repository-copy', workflowId: 'w1', drill: { outcome: 'proven', at: '2026-11-30T05:12:00.000Z' } },
        { id: '2', target: longName, environment: 'local', kind: 'incr', engine: 'pgbackrest', name: 'b2', status: 'failed', workflowId: 'w2', failure: 'disk full' },
        { id: '3', target: 'app', environment: 'local', kind: 'diff', engine: 'pgbackrest', name: 'b3', status: 'verified', primary: 'p3', dr: 'd3', workflowId: 'w3', drill: { outcome: 'restore failed', at: '2026-12-01T05:03:00.000Z' } },
      ]);
      assert.equal(lines.length, 4);
      const columns = ['status', 'target', 'kind', 'size', 'completed', 'dr lag', 'primary / dr', 'drill'];
      const header = starts(lines[0], columns);
      assert.deepEqual(starts(lines[1], ['verified', 'app', 'full', '1.0 MiB', '2026-11-21 10:01:00Z', '42 s', 'p1 / d1', 'proven 2026-11-30']), header, lines.join('\n'));
      assert.deepEqual(starts(lines[2], ['failed', longName, 'incr', '-', '-', '-', '- / -  (disk full)', '-']), header, lines.join('\n'));
      assert.deepEqual(starts(lines[3], ['verified', 'app', 'diff', '-', '-', '-', 'p3 / d3', 'restore failed 2026-12-01']), header, lines.join('\n'));
    });
  });
});
