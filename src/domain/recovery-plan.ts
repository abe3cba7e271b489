/**
 * The disaster-recovery plan: ordered steps with dependencies, declared in the config
 * (`failover.steps`), checked before anything runs, and shown with its sources, RPO and
 * predicted RTO (`lifeboat failover plan`). Pure: the config check, the CLI, the activities and
 * the drFailover workflow all use these same rules.
 */

/** What a step does, in the procedure's order: databases, then file storage, then names, then the application. */
export type PlanStepKind = 'restore-database' | 'switch-bucket' | 'move-name' | 'check-application';

export const PLAN_STEP_KINDS: readonly PlanStepKind[] = ['restore-database', 'switch-bucket', 'move-name', 'check-application'];

/** A step as the config declares it (durations in seconds). */
export interface PlanStepSpec {
  name: string;
  kind: PlanStepKind;
  /** restore-database and move-name: a database target; switch-bucket: a bucket target. */
  target?: string;
  /** Steps that must have succeeded before this one starts. */
  after: string[];
  /** check-application: the URL that must answer 2xx, through the names the plan moved. */
  url?: string;
  /** check-application: the database target whose DR instance must be the one the application reached. */
  servesFrom?: string;
  /** check-application: how long the application may take to answer correctly after its step starts. */
  timeoutSeconds?: number;
  /**
   * check-application in a drill: the application's own copy, started by the drill against the
   * drill names. argv with placeholders {port} (a free drill port), {dnsServer} (host:port of
   * the router's DNS server) and {name:<database target>} (that target's name in the drill zone).
   */
  drill?: { command: string[]; url: string };
}

/** Where a failover takes each thing from, and how old it is (its age is the RPO you would get now). */
export interface StepSource {
  /** One line a person reads: "pgBackRest repo2 (DR), full backup 20261130-031500F + WAL to 14:02:11". */
  description: string;
  /** The newest point the DR region can give back (ISO-8601), when known. */
  newestPoint?: string;
  /** Seconds between newestPoint and the assessment: what would be lost if the primary were gone now. */
  ageSeconds?: number;
  /** switch-bucket: what comparing the replica with its source found (counts within a bounded listing). */
  replication?: {
    replicaObjects: number;
    sourceObjects?: number;
    /** Keys in the source the replica lacks. */
    missingObjects?: number;
    /** Newest object in the source minus newest in the replica, in seconds. */
    lagSeconds?: number;
    /** False when a listing stopped at its limit, so some keys were not compared. */
    complete: boolean;
    /** False when the source (primary region) did not answer and only the replica was read. */
    sourceAnswered: boolean;
  };
}

/** Whether a step can run now, judged with no side effects. */
export interface StepReadiness {
  ready: boolean;
  /** Why (not): "DR copy verified 2 h ago", "no backup in repo2: run a backup first". */
  detail: string;
}

/** A step with what the assessment found out about it. */
export interface PlannedStep extends PlanStepSpec {
  source?: StepSource;
  readiness: StepReadiness;
  /** Predicted duration of this step alone, in seconds, and what the prediction rests on. */
  predictedSeconds?: number;
  predictionBasis?: string;
}

/** The plan as `lifeboat failover plan` prints it and the declare gate shows it. */
export interface AssessedPlan {
  mode: 'failover' | 'drill';
  assessedAt: string;
  steps: PlannedStep[];
  /** Steps grouped in waves: every step of a wave depends only on earlier waves (they can run in parallel). */
  waves: string[][];
  /** The longest chain of dependent steps by predicted duration: what the total RTO is made of. */
  criticalPath: { steps: string[]; seconds: number };
  /** The full-system objective (objectives.fullSystem.rto), in seconds. */
  objectiveSeconds: number;
  /** The worst data age over every source: the plan's RPO if the primary were lost now. */
  worstRpoSeconds?: number;
  /** Every step ready. */
  ready: boolean;
  /** Whether the primary region answered its short probes; when not, the plan was assessed from the DR side alone. */
  primary?: { reachable: boolean; detail: string };
}

/** Problems with the dependency graph itself (unknown or repeated names, self-dependency, cycles), as sentences. */
export function graphProblems(steps: ReadonlyArray<Pick<PlanStepSpec, 'name' | 'after'>>): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const s of steps) {
    if (names.has(s.name)) problems.push(`step ${s.name} is declared twice: give each step its own name`);
    names.add(s.name);
  }
  for (const s of steps) {
    for (const dep of s.after) {
      if (dep === s.name) problems.push(`step ${s.name} waits for itself: remove ${s.name} from its own after list`);
      else if (!names.has(dep)) problems.push(`step ${s.name} waits for ${dep}, which is not a step of the plan: declare it or remove it from after`);
    }
  }
  if (problems.length) return problems;
  const cycle = findCycle(steps);
  if (cycle) problems.push(`steps wait for each other in a circle (${[...cycle, cycle[0]].join(' -> ')}), so none of them could ever start: break the circle`);
  return problems;
}

/** One cycle of the graph as the step names along it, or undefined. Assumes every `after` names a step. */
export function findCycle(steps: ReadonlyArray<Pick<PlanStepSpec, 'name' | 'after'>>): string[] | undefined {
  const after = new Map(steps.map((s) => [s.name, s.after]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return stack.slice(stack.indexOf(name));
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of after.get(name) ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const s of steps) {
    const found = visit(s.name);
    if (found) return found;
  }
  return undefined;
}

/**
 * Waves of steps in declaration order within each wave: a step sits in the first wave after all
 * of its dependencies. Throws on a graph with problems (check graphProblems first).
 */
export function planWaves(steps: ReadonlyArray<Pick<PlanStepSpec, 'name' | 'after'>>): string[][] {
  const problems = graphProblems(steps);
  if (problems.length) throw new Error(problems[0]);
  const wave = new Map<string, number>();
  const byName = new Map(steps.map((s) => [s.name, s]));
  const depth = (name: string): number => {
    const known = wave.get(name);
    if (known !== undefined) return known;
    const d = Math.max(-1, ...byName.get(name)!.after.map(depth)) + 1;
    wave.set(name, d);
    return d;
  };
  const waves: string[][] = [];
  for (const s of steps) (waves[depth(s.name)] ??= []).push(s.name);
  return waves;
}

/**
 * The chain of dependent steps with the longest total duration (unknown durations count 0).
 * Ties go to the step declared first, so the answer is stable.
 */
export function criticalPath(steps: ReadonlyArray<Pick<PlanStepSpec, 'name' | 'after'>>, seconds: (name: string) => number | undefined): { steps: string[]; seconds: number } {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const best = new Map<string, { steps: string[]; seconds: number }>();
  const longest = (name: string): { steps: string[]; seconds: number } => {
    const known = best.get(name);
    if (known) return known;
    let before: { steps: string[]; seconds: number } = { steps: [], seconds: 0 };
    for (const dep of byName.get(name)!.after) {
      const candidate = longest(dep);
      if (candidate.seconds > before.seconds || (before.steps.length === 0 && candidate.steps.length > 0 && candidate.seconds === before.seconds)) before = candidate;
    }
    const own = { steps: [...before.steps, name], seconds: before.seconds + (seconds(name) ?? 0) };
    best.set(name, own);
    return own;
  };
  let answer: { steps: string[]; seconds: number } = { steps: [], seconds: 0 };
  for (const s of steps) {
    const candidate = longest(s.name);
    if (candidate.seconds > answer.seconds || answer.steps.length === 0) answer = candidate;
  }
  return answer;
}

/** Every step a step depends on, directly or not. */
export function dependenciesOf(steps: ReadonlyArray<Pick<PlanStepSpec, 'name' | 'after'>>, name: string): Set<string> {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const walk = (n: string) => {
    for (const dep of byName.get(n)?.after ?? []) {
      if (!seen.has(dep)) {
        seen.add(dep);
        walk(dep);
      }
    }
  };
  walk(name);
  return seen;
}

/**
 * The name a drill writes instead of a production name: the production zone's suffix swapped for
 * the drill zone (db.app.example.com. in zone example.com. -> db.app.drill.example.com.). Names
 * outside the zone are refused: a drill never writes a name it cannot place in its own zone.
 */
export function drillNameFor(name: string, zone: string, drillZone: string): string {
  const dot = (s: string) => (s.endsWith('.') ? s : `${s}.`);
  const n = dot(name.toLowerCase());
  const z = dot(zone.toLowerCase());
  if (n !== z && !n.endsWith(`.${z}`)) throw new Error(`${name} is outside zone ${zone}, so a drill cannot place it in ${drillZone}`);
  const relative = n === z ? '' : n.slice(0, n.length - z.length);
  return `${relative}${dot(drillZone.toLowerCase())}`;
}
