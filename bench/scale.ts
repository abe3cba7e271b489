/**
 * `npm run bench:scale`: figures, never assertions. Needs the local stack running (`lifeboat stack up`).
 *
 * Two central workers, each its own process (bench/scale-worker.ts), share one task queue on the
 * stack's Temporal dev server. Against them, twice, side by side:
 *   - baseline: workflows of no-op activities on a plain SDK worker (Temporal's floor here);
 *   - lifeboat: the real `databaseBackup` workflow on `createLifeboatWorker`, against an RDS target
 *     answered at the SDK boundary inside each worker (test/helpers/rds-snapshots.ts), so the engine
 *     does no work; the catalog writes and the row counts on the stack's Postgres are real.
 * Each side runs (1) LIFEBOAT_BENCH_STEP_RUNS workflows one at a time, for the cost of a step
 * when nothing else runs (issue 13), then (2) LIFEBOAT_BENCH_WORKFLOWS workflows started at
 * once, for schedule-to-start, throughput and the split between the workers (issue 11). Every
 * figure comes from the workflow histories (see bench/scale-figures.ts). Both workers and the
 * client connect through lifeboat's connection factory with its data converter (payload codec).
 *
 * Environment (see bench/README.md): LIFEBOAT_BENCH_WORKFLOWS (500), LIFEBOAT_BENCH_STEP_RUNS (20),
 * LIFEBOAT_BENCH_POLL_MS (100), LIFEBOAT_BENCH_SNAPSHOT_DESCRIBES (1), LIFEBOAT_BENCH_NOOP_STEPS (16),
 * LIFEBOAT_BENCH_ACTIVITY_SLOTS (8, as deployed), LIFEBOAT_BENCH_SKIP_BASELINE (1 skips it), LIFEBOAT_BENCH_KEEP (1 keeps catalog rows and the database).
 */
import '../src/quiet-sdk-notice';
import { ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client as TemporalClient, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Client } from 'pg';
import { createPorts } from '../src/activities/ports';
import { connectClient, FAILURE_CONVERTER_PATH } from '../src/client/temporal';
import { parseConfig } from '../src/config';
import { locateConfig } from '../src/config/locate';
import type { DatabaseBackupInput } from '../src/domain/backup';
import { livePid } from '../src/platform/processes';
import type { StackPaths } from '../src/stack/settings';
import { createStack, stackStatus } from '../src/stack/stack';
import { CENTRAL_WORKER_ACTIVITY_SLOTS } from '../src/worker';
import { rdsTargetYaml, withDatabaseTarget } from '../test/helpers/rds-snapshots';
import { distribution, Distribution, historyFigures, HistoryFigures, OwnRunTimes, RunFigures, runFigures } from './scale-figures';
import type { WorkerReport, WorkerStart } from './scale-worker';

const say = (text: string) => process.stdout.write(`${text}\n`);

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    process.stderr.write(`${name}=${JSON.stringify(raw)} is not a whole number of at least ${min}: set it to one, or unset it for the default ${fallback}.\n`);
    process.exit(2);
  }
  return value;
}

const WORKFLOWS = intFromEnv('LIFEBOAT_BENCH_WORKFLOWS', 500, 1);
const STEP_RUNS = intFromEnv('LIFEBOAT_BENCH_STEP_RUNS', 20, 0);
const POLL_MS = intFromEnv('LIFEBOAT_BENCH_POLL_MS', 100, 1);
const DESCRIBES = intFromEnv('LIFEBOAT_BENCH_SNAPSHOT_DESCRIBES', 1, 0);
const NOOP_STEPS = intFromEnv('LIFEBOAT_BENCH_NOOP_STEPS', 16, 1);
const ACTIVITY_SLOTS = intFromEnv('LIFEBOAT_BENCH_ACTIVITY_SLOTS', CENTRAL_WORKER_ACTIVITY_SLOTS, 1);
const SKIP_BASELINE = process.env.LIFEBOAT_BENCH_SKIP_BASELINE === '1';
const KEEP = process.env.LIFEBOAT_BENCH_KEEP === '1';
const WORKER_COUNT = 2;
const TARGET = 'bench-orders';
const runId = randomBytes(3).toString('hex');
const DATABASE = `lifeboat_bench_scale_${runId}`;

// ------------------------------------------------------------------ CPU time, from /proc

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds used so far by a process and its descendants (children it reaped included). */
function cpuSecondsOfTree(root: number | undefined): number {
  if (!root) return NaN;
  const procs = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(entry), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      // gone meanwhile
    }
  }
  let ticks = 0;
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === root) return true;
      p = procs.get(p)?.ppid ?? 0;
    }
    return false;
  };
  for (const [pid, p] of procs) if (inTree(pid)) ticks += p.ticks;
  return ticks / TICKS_PER_SECOND;
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}

interface RunningWorker {
  child: ChildProcess;
  identity: string;
  stopped: Promise<Array<[string, number]>>;
}

/** Forks one worker process and waits until it polls; `stopped` resolves with its activities' own run times. */
async function startWorker(start: WorkerStart): Promise<RunningWorker> {
  const child = fork(path.join(__dirname, 'scale-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let onReady!: () => void;
  let onFail!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => ((onReady = resolve), (onFail = reject)));
  const stopped = new Promise<Array<[string, number]>>((resolve, reject) => {
    child.on('message', (report: WorkerReport) => {
      if (report.kind === 'ready') onReady();
      else if (report.kind === 'stopped') resolve(report.runTimes);
      else {
        const err = new Error(`worker ${start.identity} failed: ${report.message}`);
        onFail(err);
        reject(err);
      }
    });
    child.on('exit', (code) => {
      const err = new Error(`worker ${start.identity} exited with ${code} before reporting`);
      onFail(err);
      reject(err);
    });
  });
  stopped.catch(() => undefined);
  child.send(start);
  await ready;
  return { child, identity: start.identity, stopped };
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

interface Side {
  name: string;
  mode: WorkerStart['mode'];
  workflowType: string;
  /** Arguments of the warm-up and the one-at-a-time runs, and of the load's workflows. */
  stepArgs: unknown[];
  loadArgs: unknown[];
  bundlePath: string;
}

interface SideFigures {
  steps?: RunFigures;
  load: RunFigures;
  wallMs: number;
  loadAverage: { before: number[]; max: number; after: number[] };
  /** CPU seconds each process used while the workflows started at once ran. */
  cpu: Array<{ what: string; seconds: number }>;
  activitiesPerWorkflow: number;
  /** The activity functions' own run times while the workflows started at once ran. */
  activityRunTime: Distribution;
  /** Their sum over the activity slots' time: the least share of the slots the activities kept busy. */
  slotsBusyByRunTime: number;
}

async function runSide(client: TemporalClient, side: Side, configText: string, endpoint: { host: string; port: number }, tmp: string, paths: StackPaths): Promise<SideFigures> {
  const rdsStateDir = fs.mkdtempSync(path.join(tmp, `rds-${side.mode}-`));
  const taskQueue = `bench-scale-${side.mode}-${runId}`;
  const idPrefix = `bench-scale-${runId}-${side.mode}`;
  const started: WorkflowHandle[] = [];
  const workers: RunningWorker[] = [];
  const start = (workflowId: string, args = side.stepArgs) =>
    client.workflow.start(side.workflowType, { taskQueue, workflowId, args, workflowExecutionTimeout: '30 minutes' }).then((h) => (started.push(h), h));
  try {
    for (let i = 1; i <= WORKER_COUNT; i++) {
      workers.push(await startWorker({ kind: 'start', mode: side.mode, taskQueue, identity: `central-${i}@${side.mode}-${runId}`, configText, bundlePath: side.bundlePath, endpoint, describesUntilAvailable: DESCRIBES, rdsStateDir, activitySlots: ACTIVITY_SLOTS }));
    }
    say(`  ${side.name}: ${WORKER_COUNT} worker processes poll ${taskQueue}`);
    // Warm-up, not measured: each worker loads the workflow bundle into its first isolate.
    await Promise.all([0, 1, 2, 3].map(async (i) => (await start(`${idPrefix}-warmup-${i}`)).result()));

    const stepIds: string[] = [];
    for (let i = 0; i < STEP_RUNS; i++) {
      const id = `${idPrefix}-step-${i}`;
      await (await start(id)).result();
      stepIds.push(id);
    }
    if (STEP_RUNS) say(`  ${side.name}: ${STEP_RUNS} workflows one at a time: done`);

    const processes: Array<{ what: string; pid: number | undefined }> = [
      { what: 'Temporal dev server', pid: livePid(path.join(paths.run, 'temporal.pid'), paths.temporalDb) },
      ...workers.map((w) => ({ what: `worker ${w.identity.split('@')[0]}`, pid: w.child.pid })),
      { what: 'catalog Postgres', pid: postmasterPid(paths.pgData('catalog')) },
      { what: 'primary Postgres (row counts)', pid: postmasterPid(paths.pgData('primary')) },
    ];
    const cpuBefore = processes.map((p) => cpuSecondsOfTree(p.pid));
    const clientBefore = process.cpuUsage();
    const before = os.loadavg();
    let maxLoad = before[0];
    const sampler = setInterval(() => (maxLoad = Math.max(maxLoad, os.loadavg()[0])), 2000);
    const loadIds = Array.from({ length: WORKFLOWS }, (_, i) => `${idPrefix}-load-${i}`);
    const began = Date.now();
    const handles = await Promise.all(loadIds.map((id) => start(id, side.loadArgs)));
    const outcomes = await Promise.allSettled(handles.map((h) => h.result()));
    const wallMs = Date.now() - began;
    clearInterval(sampler);
    const after = os.loadavg();
    const clientUsed = process.cpuUsage(clientBefore);
    const cpu = [
      ...processes.map((p, i) => ({ what: p.what, seconds: cpuSecondsOfTree(p.pid) - cpuBefore[i] })),
      { what: 'bench client', seconds: (clientUsed.user + clientUsed.system) / 1e6 },
    ];
    const failed = outcomes.filter((o) => o.status === 'rejected');
    say(`  ${side.name}: ${WORKFLOWS} workflows at once: ${WORKFLOWS - failed.length} completed, ${failed.length} failed, ${(wallMs / 1000).toFixed(1)} s`);
    if (failed.length) say(`    first failure: ${String((failed[0] as PromiseRejectedResult).reason?.cause?.message ?? (failed[0] as PromiseRejectedResult).reason)}`);

    for (const w of workers) w.child.send({ kind: 'stop' });
    const ownRunTimes: OwnRunTimes = new Map((await Promise.all(workers.map((w) => w.stopped))).flat());

    const histories = async (ids: string[]) =>
      inBatches(ids, 16, async (id): Promise<HistoryFigures> => historyFigures(id, (await client.workflow.getHandle(id).fetchHistory()).events ?? [], ownRunTimes));
    const load = await histories(loadIds);
    const loadRunTimes = [...ownRunTimes].filter(([key]) => key.includes('-load-')).map(([, v]) => v);
    const steps = STEP_RUNS ? runFigures(await histories(stepIds)) : undefined;
    const loadFigures = runFigures(load);
    return {
      ...(steps ? { steps } : {}),
      load: loadFigures,
      wallMs,
      loadAverage: { before, max: maxLoad, after },
      cpu,
      activitiesPerWorkflow: loadFigures.activityScheduleToStart.count / Math.max(1, loadFigures.workflows),
      activityRunTime: distribution(loadRunTimes),
      slotsBusyByRunTime: loadRunTimes.reduce((n, v) => n + v, 0) / (WORKER_COUNT * ACTIVITY_SLOTS * wallMs),
    };
  } finally {
    for (const w of workers) w.child.kill('SIGTERM');
    // An aborted run leaves nothing running on a queue no one polls any more.
    await inBatches(started, 16, async (h) => {
      const { status } = await h.describe();
      if (status.name === 'RUNNING') await h.terminate('the scale benchmark stopped before this workflow finished');
    }).catch(() => undefined);
  }
}

// ------------------------------------------------------------------ printing

const ms = (v: number) => (Number.isNaN(v) ? '–' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
const dist = (d: Distribution | undefined) => (d && d.count ? `${ms(d.p50)} / ${ms(d.p95)} / ${ms(d.max)}` : '–');
const splitText = (s: Array<{ identity: string; count: number }>) => {
  const total = s.reduce((n, e) => n + e.count, 0);
  return s.map((e) => `${e.identity.split('@')[0]} ${e.count} (${Math.round((100 * e.count) / Math.max(1, total))} %)`).join(', ');
};

function table(headers: string[], rows: string[][]): void {
  say(`| ${headers.join(' | ')} |`);
  say(`|${headers.map(() => '---').join('|')}|`);
  for (const row of rows) say(`| ${row.join(' | ')} |`);
}

function print(baseline: SideFigures | undefined, lifeboat: SideFigures): void {
  const sides = [...(baseline ? [{ name: `baseline: ${NOOP_STEPS} no-op steps (steps) / 1 no-op activity (load)`, f: baseline }] : []), { name: 'lifeboat: databaseBackup, RDS at the SDK boundary', f: lifeboat }];
  say('');
  say(`Issue 11, ${WORKFLOWS} workflows started at once on ${WORKER_COUNT} central workers (p50 / p95 / max):`);
  say('');
  table(
    ['', ...sides.map((s) => s.name)],
    [
      ['workflows completed', ...sides.map((s) => `${s.f.load.completed} of ${s.f.load.workflows}`)],
      ['activities per workflow', ...sides.map((s) => s.f.activitiesPerWorkflow.toFixed(1))],
      ['workflow task schedule-to-start', ...sides.map((s) => dist(s.f.load.workflowTaskScheduleToStart))],
      ['activity schedule-to-start', ...sides.map((s) => dist(s.f.load.activityScheduleToStart))],
      ['activity run time (the function alone)', ...sides.map((s) => dist(s.f.activityRunTime))],
      [`share of the ${WORKER_COUNT} × ${ACTIVITY_SLOTS} activity slots' time spent running activities`, ...sides.map((s) => `${(100 * s.f.slotsBusyByRunTime).toFixed(1)} %`)],
      ['throughput (first start to last close)', ...sides.map((s) => `${s.f.load.throughputPerSecond.toFixed(1)} workflows/s over ${ms(s.f.load.spanMs)}`)],
      ['wall time seen by the client', ...sides.map((s) => ms(s.f.wallMs))],
      ['activities taken by', ...sides.map((s) => splitText(s.f.load.activitySplit))],
      ['workflow tasks taken by', ...sides.map((s) => splitText(s.f.load.workflowTaskSplit))],
      ['step cost under this load', ...sides.map((s) => dist(s.f.load.stepCost))],
      ['activities retried', ...sides.map((s) => String(s.f.load.retried))],
      ...sides[sides.length - 1].f.cpu.map((c, i) => [`CPU s: ${c.what}`, ...sides.map((s) => `${s.f.cpu[i]?.seconds.toFixed(1) ?? '–'} s`)]),
      ['CPU s, all of the above / wall time (cores kept busy)', ...sides.map((s) => `${(s.f.cpu.reduce((n, c) => n + c.seconds, 0) / (s.f.wallMs / 1000)).toFixed(2)}`)],
      ['load average (1 min) before / max / after', ...sides.map((s) => `${s.f.loadAverage.before[0].toFixed(1)} / ${s.f.loadAverage.max.toFixed(1)} / ${s.f.loadAverage.after[0].toFixed(1)}`)],
    ],
  );
  if (!STEP_RUNS) return;
  say('');
  say(`Issue 13, Temporal's cost per activity step, ${STEP_RUNS} workflows one at a time (p50 / p95 / max):`);
  say('');
  table(
    ['', ...sides.map((s) => s.name)],
    [
      ['steps measured', ...sides.map((s) => String(s.f.steps?.stepCost.count ?? 0))],
      ['cost per step (previous completion → completion − run time)', ...sides.map((s) => dist(s.f.steps?.stepCost))],
      ['  of which: previous completion → scheduled (workflow task)', ...sides.map((s) => dist(s.f.steps?.stepGap))],
      ['  of which: scheduled → completed − run time (dispatch, codec, report)', ...sides.map((s) => dist(s.f.steps?.stepDispatch))],
      ['activity schedule-to-start', ...sides.map((s) => dist(s.f.steps?.activityScheduleToStart))],
      ['workflow task schedule-to-start', ...sides.map((s) => dist(s.f.steps?.workflowTaskScheduleToStart))],
    ],
  );
}

// ------------------------------------------------------------------ main

async function withSuperuser<T>(settings: ReturnType<typeof createStack>['ctx']['settings'], database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: settings.host, port: settings.postgres.primaryPort, user: settings.postgres.superuser, database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const stack = createStack();
  const down = (await stackStatus(stack)).filter((s) => !s.healthy);
  if (down.length) {
    process.stderr.write(`the local stack is not running (${down.map((s) => s.name).join(', ')} down): start it with \`lifeboat stack up\`, then run the benchmark again.\n`);
    process.exit(2);
  }
  const { settings } = stack.ctx;
  const configFile = locateConfig(process.env.LIFEBOAT_CONFIG);
  const configText = withDatabaseTarget(fs.readFileSync(configFile, 'utf8'), rdsTargetYaml(TARGET, DATABASE, ['ledger']));
  const config = parseConfig(configText, `${configFile} + the bench's RDS target`);
  const endpoint = { host: settings.host, port: settings.postgres.primaryPort };
  say(`scale benchmark ${runId}: ${WORKFLOWS} workflows at once, ${STEP_RUNS} one at a time, ${WORKER_COUNT} central worker processes with ${ACTIVITY_SLOTS} activity slots each, Temporal ${config.temporal.address}, payload codec ${config.temporal.encryption ? 'on' : 'off'}`);
  say(`  load average now: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} cores`);

  // The RDS source's data: a small table on the stack's primary, counted once per backup.
  await withSuperuser(settings, 'postgres', (c) => c.query(`CREATE DATABASE ${DATABASE}`));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-scale-'));
  const client = await connectClient(config);
  try {
    await withSuperuser(settings, DATABASE, async (c) => {
      await c.query('CREATE TABLE ledger (id serial PRIMARY KEY, amount numeric NOT NULL, booked_at timestamptz NOT NULL DEFAULT now())');
      await c.query('INSERT INTO ledger (amount) SELECT g * 1.5 FROM generate_series(1, 200) g');
    });
    const bundle = async (name: string, workflowsPath: string) => {
      const file = path.join(tmp, `${name}.js`);
      const { code } = await bundleWorkflowCode({ workflowsPath, failureConverterPath: FAILURE_CONVERTER_PATH, logger: quietBundler });
      fs.writeFileSync(file, code);
      return file;
    };
    const lifeboatBundle = await bundle('lifeboat', require.resolve('../src/workflows'));
    const noopBundle = SKIP_BASELINE ? '' : await bundle('noop', require.resolve('./scale-workflows'));

    let baseline: SideFigures | undefined;
    if (!SKIP_BASELINE) {
      // One at a time: NOOP_STEPS in a row, like a backup's chain; at once: one no-op activity per workflow.
      baseline = await runSide(client, { name: 'baseline', mode: 'noop', workflowType: 'noopSteps', stepArgs: [NOOP_STEPS], loadArgs: [1], bundlePath: noopBundle }, configText, endpoint, tmp, stack.ctx.paths);
    }
    const input: DatabaseBackupInput = { target: TARGET, pollIntervalMs: POLL_MS, requestedBy: 'scale-benchmark' };
    const lifeboat = await runSide(client, { name: 'lifeboat', mode: 'lifeboat', workflowType: 'databaseBackup', stepArgs: [input], loadArgs: [input], bundlePath: lifeboatBundle }, configText, endpoint, tmp, stack.ctx.paths);
    print(baseline, lifeboat);
    say('');
    say(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await client.connection.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!KEEP) {
      const ports = createPorts(config);
      try {
        const like = `bench-scale-${runId}-%`;
        await ports.catalog.query('DELETE FROM verifications WHERE workflow_id LIKE $1', [like]);
        await ports.catalog.query('DELETE FROM backups WHERE workflow_id LIKE $1', [like]);
      } finally {
        await ports.close();
      }
      await withSuperuser(settings, 'postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${DATABASE}`));
    }
  }
}

const quietBundler = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`bundle warning: ${message}\n`),
  error: (message: string) => process.stderr.write(`bundle error: ${message}\n`),
};

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`scale benchmark: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
