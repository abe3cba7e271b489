/**
 * The fault-injection harness: N trials against the real embedded stack and a real worker
 * process. Each trial starts one workflow (a databaseBackup, a pitrRestore approved through the
 * real update, or a pitrRestore with cutover approved at both gates), injects one fault at a
 * random moment, waits a bounded time for the workflow to settle, checks the invariants, and
 * cleans up by lifeboat's own means (DNS back to the primary, restored instances deleted by the
 * engine). The seed decides every choice, so a failing trial can be run again.
 */
import path from 'node:path';
import { Client, WorkflowHandle } from '@temporalio/client';
import { createPorts, Ports } from '../../src/activities/ports';
import { destinationFor } from '../../src/activities/restore';
import type { PgBackRestEngine } from '../../src/engines/pgbackrest';
import { connectClient } from '../../src/client/temporal';
import { LifeboatConfig } from '../../src/config';
import { WorkflowStatus } from '../../src/domain/approval';
import { statusQuery } from '../../src/workflows/messages';
import { DatabaseBackupInput } from '../../src/domain/backup';
import { PitrRestoreInput } from '../../src/domain/restore';
import { localPgBackRest } from '../../src/stack/pgbackrest';
import { localDnsRouter } from '../../src/stack/powerdns';
import { delay, tailFile } from '../../src/platform/processes';
import { Stack, stackStatus, stackUp } from '../../src/stack/stack';
import { describeFailure } from '../../src/workflows/failure';
import { removeAsItsOwner, undoTestCutover } from '../helpers/pitr';
import { Check, checkInvariants, Flight, FlightKind, ownedInstances, restoresListing, SourceFacts, sourceFacts } from './invariants';
import { Random, trialRandom } from './random';
import { ChaosWorker } from './worker';
import { approveSigned } from '../helpers/signing';

export const SCENARIOS = ['kill-worker-backup', 'kill-worker-restore', 'kill-worker-cutover', 'restart-temporal', 'stop-dr-minio', 'restart-catalog'] as const;
export type Scenario = (typeof SCENARIOS)[number];

const REQUESTER = 'alice@example.com';
const APPROVER = 'bob@example.com';

/** The phases a fault may aim at, per kind of workflow (the status board's names). */
const PHASES: Record<FlightKind, string[]> = {
  backup: ['preflight', 'backing-up', 'verifying', 'copying-to-dr', 'verifying-dr-copy', 'recording'],
  restore: ['validating', 'awaiting-approval', 'restoring', 'replaying-wal', 'verifying'],
  cutover: ['validating', 'awaiting-approval', 'restoring', 'replaying-wal', 'verifying', 'cutting-over'],
};

/** Roughly how long each kind runs undisturbed on the local stack: a fault "by time" lands within it. */
const TYPICAL_MS: Record<FlightKind, number> = { backup: 25000, restore: 12000, cutover: 15000 };

export interface ChaosOptions {
  trials: number;
  seed: number;
  scenarios: Scenario[];
  /** How long a workflow may take to settle after the fault before it counts as stuck. */
  settleMs: number;
  log: (line: string) => void;
}

export interface TrialResult {
  index: number;
  scenario: Scenario;
  fault: string;
  flights: Flight[];
  checks: Check[];
  durationMs: number;
  ok: boolean;
}

interface Watched {
  flight: Flight;
  handle: WorkflowHandle;
  startedAt: number;
  /** The last status the workflow answered, and whether it is still answering. */
  last?: WorkflowStatus;
  closed: boolean;
  approved: Set<string>;
  stop: () => void;
  done: Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

const secs = (ms: number) => (ms / 1000).toFixed(1);

export class ChaosHarness {
  private client!: Client;
  private ports!: Ports;
  private worker!: ChaosWorker;
  private baseline!: SourceFacts;
  private preexisting = new Set<string>();
  private readonly nonce = Date.now().toString(36);
  private readonly taskQueue = `chaos-${Date.now().toString(36)}`;

  constructor(
    private readonly stack: Stack,
    private readonly config: LifeboatConfig,
    private readonly configFile: string,
    private readonly options: ChaosOptions,
  ) {
    this.config.temporal.taskQueue = this.taskQueue;
  }

  private log(line: string): void {
    this.options.log(line);
  }

  async setUp(): Promise<void> {
    const s = this.stack.ctx.settings;
    this.client = await connectClient(this.config);
    this.ports = createPorts(this.config);
    this.worker = new ChaosWorker(this.stack.ctx, this.taskQueue, this.configFile);
    await this.worker.stopLeftover();
    const served = await localDnsRouter(s).currentTarget(s.dns.appDbName);
    if (served?.host !== s.host || served.port !== s.postgres.primaryPort) {
      throw new Error(`${s.dns.appDbName} points at ${served ? `${served.host}:${served.port}` : 'nothing'}, not the primary ${s.host}:${s.postgres.primaryPort}: point it back at the primary before running the harness.`);
    }
    this.baseline = await sourceFacts(this.stack);
    for (const entry of restoresListing(this.stack)) this.preexisting.add(entry);
    if (this.preexisting.size) this.log(`left alone: ${this.preexisting.size} entries already under ${this.stack.ctx.paths.restoresDir} before this run`);
    await this.worker.start();
    this.log(`worker ${this.worker.log} on task queue ${this.taskQueue}`);
    // A restore needs a backup to restore from: take one, undisturbed, on a fresh stack.
    const info = await localPgBackRest(this.stack.ctx).info(1);
    if (!info?.backup?.length) {
      this.log('no backup in repo1 yet: taking one undisturbed first');
      const w = await this.startFlight('backup', `chaos-${this.nonce}-first-backup`);
      await this.settle(w, this.options.settleMs);
      if (w.flight.status !== 'COMPLETED') throw new Error(`the first backup did not complete (${w.flight.status}: ${w.flight.failure}): see ${this.worker.log}.`);
    }
  }

  async tearDown(): Promise<void> {
    await this.worker?.stop();
    await this.ports?.close();
    await this.client?.connection.close();
  }

  /** Set on Ctrl-C: the trial under way finishes (and cleans up), then the summary of those run so far. */
  stopRequested = false;

  async run(): Promise<TrialResult[]> {
    const results: TrialResult[] = [];
    for (let i = 0; i < this.options.trials && !this.stopRequested; i++) {
      const rng = trialRandom(this.options.seed, i);
      const scenario = rng.pick(this.options.scenarios);
      const result = await this.trial(i, scenario, rng);
      results.push(result);
    }
    return results;
  }

  /** Every component healthy (archiving caught up after a region outage) and our worker alive, before a trial. */
  private async prepare(): Promise<void> {
    const status = await stackStatus(this.stack);
    const unhealthy = status.filter((c) => !c.healthy);
    if (unhealthy.length) {
      this.log(`  repairing before the trial: ${unhealthy.map((c) => `${c.name} (${c.detail})`).join('; ')}`);
      await stackUp(this.stack);
    }
    if (!this.worker.running) {
      this.log(`  NOTE: the worker had exited on its own; see ${this.worker.log}. Starting another.`);
      await this.worker.start();
    }
  }

  private async trial(index: number, scenario: Scenario, rng: Random): Promise<TrialResult> {
    const t0 = Date.now();
    const label = `trial ${index + 1}/${this.options.trials} (seed ${this.options.seed})`;
    await this.prepare();
    const kind: FlightKind =
      scenario === 'kill-worker-backup' || scenario === 'stop-dr-minio'
        ? 'backup'
        : scenario === 'kill-worker-restore'
          ? 'restore'
          : scenario === 'kill-worker-cutover'
            ? 'cutover'
            : rng.pick(['backup', 'restore', 'cutover'] as const);
    const w = await this.startFlight(kind, `chaos-${this.nonce}-t${index + 1}-${scenario}`);
    let fault: string;
    try {
      fault = await this.inject(scenario, w, rng);
    } catch (err) {
      fault = `injecting the fault failed: ${(err as Error).message}`;
    }
    await this.settle(w, this.options.settleMs);
    const flights = [w.flight];
    const checks = await checkInvariants({ stack: this.stack, flights, baseline: this.baseline, preexisting: this.preexisting });
    const cleanup = await this.cleanUp(flights);
    if (cleanup) checks.push(cleanup);
    // Whatever is still left was reported by this trial; later trials judge only what they make.
    for (const entry of restoresListing(this.stack)) {
      if (!this.preexisting.has(entry)) {
        this.preexisting.add(entry);
        checks.push({ name: 'cleanup', ok: false, detail: `${entry} is still under the restores directory after the trial's clean-up` });
      }
    }
    const durationMs = Date.now() - t0;
    const ok = checks.every((c) => c.ok);
    const flightLine = `${w.flight.kind} ${w.flight.status.toLowerCase()}${w.flight.failure ? ` (${w.flight.failure.slice(0, 160)})` : ''}`;
    this.log(`${label} ${scenario}: ${fault}; ${flightLine}; ${secs(durationMs)} s`);
    for (const c of checks) this.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
    return { index, scenario, fault, flights, checks, durationMs, ok };
  }

  private async startFlight(kind: FlightKind, workflowId: string): Promise<Watched> {
    let handle: WorkflowHandle;
    if (kind === 'backup') {
      // A short heartbeat timeout: a killed worker's activity is retried within seconds, not a minute.
      const input: DatabaseBackupInput = { target: 'app', kind: 'full', pollIntervalMs: 1000, heartbeatTimeoutMs: 10000, requestedBy: 'chaos harness' };
      handle = await this.client.workflow.start('databaseBackup', { taskQueue: this.taskQueue, workflowId, args: [input] });
    } else {
      const input: PitrRestoreInput = {
        target: 'app',
        restorePoint: 'latest',
        reason: 'chaos trial: a fault injected at a random moment',
        requestedBy: REQUESTER,
        mode: 'standard',
        cutover: kind === 'cutover',
        timings: { pollIntervalMs: 500 },
      };
      handle = await this.client.workflow.start('pitrRestore', { taskQueue: this.taskQueue, workflowId, args: [input] });
    }
    let stopped = false;
    const w: Watched = {
      flight: { kind, workflowId, status: 'RUNNING' },
      handle,
      startedAt: Date.now(),
      closed: false,
      approved: new Set(),
      stop: () => (stopped = true),
      done: Promise.resolve(),
    };
    // One loop watches the phase (for aiming faults) and approves each gate as a second person would.
    w.done = (async () => {
      while (!stopped && !w.closed) {
        w.last = await withTimeout(handle.query(statusQuery), 3000).catch(() => w.last);
        const gate = w.last?.pendingGate?.gate;
        if (gate && !w.approved.has(gate)) {
          w.approved.add(gate);
          // Not awaited in this loop: an update waits for a worker, and the worker may be dead right now.
          void this.approve(w, gate);
        }
        await delay(100);
      }
    })();
    return w;
  }

  private async approve(w: Watched, gate: string): Promise<void> {
    for (let attempt = 0; attempt < 30 && !w.closed; attempt++) {
      try {
        await withTimeout(approveSigned(w.handle, { by: APPROVER, reason: 'chaos trial: approved', gate: gate as 'restore' | 'cutover' }), 20000);
        return;
      } catch (err) {
        const status = await withTimeout(w.handle.query(statusQuery), 3000).catch(() => undefined);
        // Decided meanwhile (an earlier attempt landed after its timeout): nothing more to do.
        if (status && status.pendingGate?.gate !== gate) return;
        if (attempt === 29) this.log(`  approving ${gate} of ${w.flight.workflowId} kept failing: ${(err as Error).message}`);
        await delay(1000);
      }
    }
  }

  /**
   * Waits until the workflow reaches `phase`: 'reached', or 'passed' when a later phase shows
   * first (short phases can fall between two status polls), or 'missed' when it ended before.
   */
  private async reachPhase(w: Watched, phase: string, timeoutMs: number): Promise<'reached' | 'passed' | 'missed'> {
    const order = PHASES[w.flight.kind];
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const now = w.last?.phase;
      if (now === phase) return 'reached';
      if (now && ['done', 'failed', 'cancelled', 'cleaning-up'].includes(now)) return 'missed';
      if (now && order.includes(now) && order.indexOf(now) > order.indexOf(phase)) return 'passed';
      await delay(50);
    }
    return 'missed';
  }

  /** A random moment: half the time a random phase plus up to 1.5 s, half the time a random time into the run. */
  private async randomMoment(w: Watched, rng: Random): Promise<string> {
    if (rng.next() < 0.5) {
      const phase = rng.pick(PHASES[w.flight.kind]);
      const extra = rng.int(0, 1500);
      const reached = await this.reachPhase(w, phase, 120000);
      if (reached === 'reached') await delay(extra);
      return reached === 'reached' ? `aimed at ${phase} +${secs(extra)} s` : `aimed at ${phase}, ${reached === 'passed' ? 'which went by between two polls' : 'never reached'}`;
    }
    const at = rng.int(0, TYPICAL_MS[w.flight.kind]);
    await delay(Math.max(0, at - (Date.now() - w.startedAt)));
    return `at ${secs(at)} s`;
  }

  private async inject(scenario: Scenario, w: Watched, rng: Random): Promise<string> {
    const s = this.stack;
    const phaseNow = () => w.last?.phase ?? '?';
    switch (scenario) {
      case 'kill-worker-backup':
      case 'kill-worker-restore':
      case 'kill-worker-cutover': {
        const moment = await this.randomMoment(w, rng);
        const phase = phaseNow();
        await this.worker.kill9();
        const pause = rng.int(0, 3000);
        await delay(pause);
        await this.worker.start();
        return `worker killed -9 ${moment} (phase ${phase}), a new one after ${secs(pause)} s`;
      }
      case 'restart-temporal': {
        const moment = await this.randomMoment(w, rng);
        const phase = phaseNow();
        await s.temporal.stop();
        const down = rng.int(1000, 8000);
        await delay(down);
        await s.temporal.start();
        return `Temporal restarted ${moment} (phase ${phase}), down ${secs(down)} s`;
      }
      case 'stop-dr-minio': {
        const reached = (await this.reachPhase(w, 'copying-to-dr', 180000)) === 'reached';
        const extra = rng.int(0, 3000);
        if (reached) await delay(extra);
        const phase = phaseNow();
        await s.minioDr.stop();
        const down = rng.int(2000, 15000);
        await delay(down);
        await s.minioDr.start();
        return `DR MinIO stopped ${reached ? `${secs(extra)} s into the DR copy` : 'although the DR copy was never seen'} (phase ${phase}), down ${secs(down)} s`;
      }
      case 'restart-catalog': {
        const moment = await this.randomMoment(w, rng);
        const phase = phaseNow();
        await s.catalog.stop();
        const down = rng.int(1000, 8000);
        await delay(down);
        await s.catalog.start();
        return `catalog restarted ${moment} (phase ${phase}), down ${secs(down)} s`;
      }
    }
  }

  /** Bounded wait for the workflow to close; a workflow still running then is stuck, recorded, and cancelled. */
  private async settle(w: Watched, settleMs: number): Promise<void> {
    const deadline = Date.now() + settleMs;
    let status = 'RUNNING';
    while (Date.now() < deadline) {
      status = await withTimeout(w.handle.describe(), 5000).then((d) => d.status.name, () => 'RUNNING');
      if (status !== 'RUNNING') break;
      await delay(500);
    }
    w.flight.status = status;
    if (status === 'COMPLETED') w.flight.result = await w.handle.result();
    else if (status !== 'RUNNING') w.flight.failure = describeFailure(await w.handle.result().catch((e: unknown) => e));
    w.closed = true;
    w.stop();
    await w.done;
    if (status === 'RUNNING') {
      w.flight.failure = `stuck in phase ${w.last?.phase ?? '?'}${await this.instanceClue(w)}`;
      // Stuck: let lifeboat compensate through cancellation so the next trial starts clean.
      await w.handle.cancel().catch(() => undefined);
      const cancelDeadline = Date.now() + 120000;
      while (Date.now() < cancelDeadline) {
        const now = await withTimeout(w.handle.describe(), 5000).then((d) => d.status.name, () => 'RUNNING');
        if (now !== 'RUNNING') return;
        await delay(1000);
      }
      await w.handle.terminate('chaos harness: stuck after the bounded wait and the cancel').catch(() => undefined);
    }
  }

  /** What the engine says of a stuck restore's instance, and the last lines of its log: the clue to why it never settled. */
  private async instanceClue(w: Watched): Promise<string> {
    if (w.flight.kind === 'backup') return '';
    const instance = destinationFor(w.flight.workflowId);
    const described = await this.ports.database('app').describeInstance(instance).catch((err: unknown) => ({ status: `not described: ${(err as Error).message}`, detail: '' }));
    const log = tailFile(path.join(this.stack.ctx.paths.restoresDir, `${instance}.log`), 4).replace(/\s*\n\s*/g, ' | ');
    return `; instance ${instance}: ${described?.status ?? 'absent'}${described?.detail ? ` (${described.detail})` : ''}${log ? `; log: ${log}` : ''}`;
  }

  /**
   * The stack as before the trial: a cut-over restore undone as the cutover suites undo theirs
   * (name back, source unfenced, the new primary's backup and timeline gone), every other restored
   * instance removed as its owner, DNS back at the primary.
   */
  private async cleanUp(flights: Flight[]): Promise<Check | undefined> {
    const s = this.stack.ctx.settings;
    const problems: string[] = [];
    const engine = this.ports.database('app') as PgBackRestEngine;
    const owned = ownedInstances(flights);
    for (const f of flights.filter((f) => f.kind === 'cutover')) {
      const instance = destinationFor(f.workflowId);
      try {
        await undoTestCutover(this.stack, this.ports, engine, f.workflowId, instance);
        owned.delete(instance);
      } catch (err) {
        problems.push(`undoing the cutover of ${f.workflowId}: ${(err as Error).message}`);
      }
    }
    try {
      const router = localDnsRouter(s);
      const served = await router.currentTarget(s.dns.appDbName);
      if (served?.host !== s.host || served.port !== s.postgres.primaryPort) await router.pointAt(s.dns.appDbName, { host: s.host, port: s.postgres.primaryPort }, 30);
    } catch (err) {
      problems.push(`pointing ${s.dns.appDbName} back at the primary: ${(err as Error).message}`);
    }
    for (const instance of owned.keys()) {
      try {
        await removeAsItsOwner(engine, instance);
      } catch (err) {
        problems.push(`deleting ${instance}: ${(err as Error).message}`);
      }
    }
    return problems.length ? { name: 'cleanup', ok: false, detail: problems.join('; ') } : undefined;
  }
}
