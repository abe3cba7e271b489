/**
 * `npm run bench:crash-cost`: what a worker crash costs a step in flight, per step kind (issue 13:
 * under 20 s). Figures, never assertions. Needs the local stack running (`lifeboat stack up`).
 *
 * Two real worker processes (lib/src/worker.js) share a scratch task queue. For each step kind a
 * directory restore (of a scratch directory target backed up first) runs until that step is
 * running; the worker holding it (the pending activity's worker identity, pid@host) is killed
 * with SIGKILL and a fresh one started in its place; the time from the kill to the start of the
 * step's next attempt is read from the workflow's history (ActivityTaskStarted of attempt 2).
 * Step kinds: a long heartbeating step (restore into the staging directory), a quick host step
 * (inspect the destination, in place over many files), and notify (a quick central step whose
 * webhook, a local server here, answers after LIFEBOAT_BENCH_WEBHOOK_MS, default 18000).
 *
 * Environment: LIFEBOAT_BENCH_CRASH_FILES (files in the in-place tree, default 20000),
 * LIFEBOAT_BENCH_WEBHOOK_MS, and the stack's LIFEBOAT_* ports as for the tests.
 */
import '../src/quiet-sdk-notice';
import { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import YAML from 'yaml';
import { connectClient } from '../src/client/temporal';
import { interpolateConfigText, loadConfig } from '../src/config';
import { EXAMPLE_CONFIG } from '../test/helpers/scratch';
import { startWorkerProcess } from '../test/helpers/worker-process';

const STARTED = 2;
const say = (text: string) => process.stdout.write(`${text}\n`);
const files = Number(process.env.LIFEBOAT_BENCH_CRASH_FILES || 20000);
const webhookMs = Number(process.env.LIFEBOAT_BENCH_WEBHOOK_MS || 18000);
const run = randomBytes(3).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `lifeboat-crash-${run}-`));
  const tree = path.join(root, 'tree');
  for (let d = 0; d < 100; d++) {
    fs.mkdirSync(path.join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < files / 100; f++) fs.writeFileSync(path.join(tree, `d${d}`, `f${f}`), `${d}.${f}\n`);
  }
  fs.writeFileSync(path.join(root, 'key'), randomBytes(32).toString('hex'), { mode: 0o600 });
  // The webhook: answers late, like a slow chat service.
  const server = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => res.end('ok'), webhookMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const doc = YAML.parse(interpolateConfigText(fs.readFileSync(EXAMPLE_CONFIG, 'utf8')).text) as Record<string, unknown> & { targets: Record<string, unknown> };
  const target = `bench-crash-${run}`;
  doc.targets.directories = [{ name: target, environment: 'staging', path: tree, encryptionKey: { secretRef: `file:${path.join(root, 'key')}` }, store: 'primary', bucket: 'lifeboat-backups-primary', prefix: `bench-crash-${run}/`, dr: { store: 'dr', bucket: 'lifeboat-backups-dr' } }];
  // The webhook's URL is a secret (it often carries a token): read from a file, as in production.
  fs.writeFileSync(path.join(root, 'webhook-url'), `http://127.0.0.1:${port}/hook`, { mode: 0o600 });
  doc.notifications = { webhook: { url: { secretRef: `file:${path.join(root, 'webhook-url')}` }, allowInsecure: true } };
  const configFile = path.join(root, 'lifeboat.yaml');
  fs.writeFileSync(configFile, YAML.stringify(doc));
  const config = loadConfig(configFile);
  const client = await connectClient(config);
  const taskQueue = `bench-crash-${run}`;
  const workers = new Map<number, ChildProcess>();
  const addWorker = async () => {
    const w = await startWorkerProcess(taskQueue, configFile);
    workers.set(w.pid!, w);
  };
  await addWorker();
  await addWorker();
  const rows: Array<{ kind: string; step: string; costS: string; note: string }> = [];
  try {
    await client.workflow.execute('directoryBackup', { taskQueue, workflowId: `bench-crash-backup-${run}`, args: [{ target }] });
    // After the backup every file differs: the in-place inspect compares (hashes) each one.
    for (let d = 0; d < 100; d++) for (let f = 0; f < files / 100; f++) fs.writeFileSync(path.join(tree, `d${d}`, `f${f}`), `changed ${d}.${f}\n`);

    const kinds: Array<{ kind: string; step: string; inPlace: boolean }> = [
      { kind: 'quick host step (inspect in place)', step: 'inspectDirectoryRestore', inPlace: true },
      { kind: 'long heartbeating step (restore to staging)', step: 'restoreDirectoryToStaging', inPlace: false },
      { kind: 'notify (webhook waiting)', step: 'notify', inPlace: false },
    ];
    for (const k of kinds) {
      const workflowId = `bench-crash-${k.step}-${run}`;
      const into = path.join(root, `restored-${k.step}`);
      const h: WorkflowHandle = await client.workflow.start('directoryRestore', {
        taskQueue,
        workflowId,
        args: [{ target, backup: 'latest', destination: k.inPlace ? { kind: 'in-place' } : { kind: 'new-dir', path: into }, requestedBy: 'alice@example.com', reason: 'crash-cost bench', timings: { remindAfterMs: 600000, abortAfterMs: 1200000 } }],
      });
      let holder: string | undefined;
      const deadline = Date.now() + 10 * 60 * 1000;
      while (!holder && Date.now() < deadline) {
        const p = ((await h.describe()).raw.pendingActivities ?? []).find((a) => a.activityType?.name === k.step && Number(a.state) === STARTED);
        holder = p?.lastWorkerIdentity ?? undefined;
        if (!holder) await sleep(20);
      }
      if (!holder) {
        rows.push({ kind: k.kind, step: k.step, costS: '-', note: 'never seen running' });
        await h.terminate('bench');
        continue;
      }
      const pid = Number(holder.split('@')[0]);
      const victim = workers.get(pid);
      if (!victim) throw new Error(`no worker of this bench holds ${k.step} (${holder})`);
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      workers.delete(pid);
      await addWorker();
      if (k.inPlace) {
        // The gate comes after the inspection: once the retried inspection is done, the run is ended at its gate, before anything is written.
        const gated = Date.now() + 5 * 60 * 1000;
        while (Date.now() < gated && !((await h.describe()).raw.pendingActivities ?? []).every((a) => a.activityType?.name !== k.step)) await sleep(200);
        await h.terminate('bench: the inspection was what was measured');
      } else {
        await h.result().catch(() => undefined);
      }
      const events = (await h.fetchHistory()).events ?? [];
      const scheduled = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === k.step).map((e) => String(e.eventId)));
      const retry = events.find((e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)) && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1);
      let startedMs: number | undefined;
      if (retry?.eventTime) startedMs = Number(retry.eventTime.seconds) * 1000 + Math.floor((retry.eventTime.nanos ?? 0) / 1e6);
      if (!startedMs) {
        rows.push({ kind: k.kind, step: k.step, costS: '-', note: 'no second attempt in the history' });
        continue;
      }
      rows.push({ kind: k.kind, step: k.step, costS: ((startedMs - killedAt) / 1000).toFixed(1), note: `attempt ${retry!.activityTaskStartedEventAttributes!.attempt}` });
      fs.rmSync(into, { recursive: true, force: true });
    }
  } finally {
    for (const w of workers.values()) w.kill('SIGTERM');
    server.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  say('\nCrash cost per step kind (kill -9 of the worker holding the step -> its next attempt started):');
  say(`${'step kind'.padEnd(46)} ${'activity'.padEnd(28)} ${'kill -> retry'.padStart(13)}  note`);
  for (const r of rows) say(`${r.kind.padEnd(46)} ${r.step.padEnd(28)} ${`${r.costS} s`.padStart(13)}  ${r.note}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
