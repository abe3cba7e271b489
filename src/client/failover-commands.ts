/**
 * `lifeboat failover ...`: the disaster-recovery plan of the config. `failover plan [--drill]`
 * assesses it now in this process (read-only, like `drills list` and `compliance`: no workflow
 * for a view) and prints its steps in waves with each step's source and data age (the RPO a
 * failover would give now), readiness and predicted duration, the critical path against the
 * full-system objective, and a verdict. Exit 0 ready, 1 not ready, 2 no plan in the config.
 */
import { createPorts } from '../activities/ports';
import { failoverPlanActivities, NO_FAILOVER_PLAN } from '../activities/failover-plan';
import type { LifeboatConfig } from '../config';
import { formatAge, formatDuration } from '../domain/format';
import type { AssessedPlan, PlannedStep } from '../domain/recovery-plan';
import { UsageError } from './args';
import { line, printJson } from './output';

/** The sentence a config without a plan gets, before anything is connected to. */
export function checkFailoverPlan(config: LifeboatConfig): void {
  if (!config.failover) throw new UsageError(NO_FAILOVER_PLAN);
}

const what = (s: PlannedStep) => (s.target ? `${s.kind} ${s.target}` : s.kind);

/** The last line, in words: ready or not (and why), the predicted RTO against the objective, the RPO now. */
export function failoverVerdict(plan: AssessedPlan): string {
  const total = formatDuration(plan.criticalPath.seconds);
  const objective = formatDuration(plan.objectiveSeconds);
  const rto = plan.criticalPath.seconds <= plan.objectiveSeconds ? `predicted RTO ${total}, within the ${objective} objective` : `predicted RTO ${total}, OVER the ${objective} objective`;
  const rpo = plan.worstRpoSeconds !== undefined ? `; RPO now ${formatAge(plan.worstRpoSeconds)}` : '';
  const region = plan.primary && !plan.primary.reachable ? '; primary region unreachable, assessed from the DR side' : '';
  if (plan.ready) return `READY: every step of the ${plan.mode === 'drill' ? 'failover drill' : 'failover'} can run; ${rto}${rpo}${region}.`;
  const blocked = plan.steps.filter((s) => !s.readiness.ready);
  return `NOT READY: ${blocked.length} step${blocked.length === 1 ? '' : 's'} cannot run (${blocked.map((s) => `${s.name}: ${s.readiness.detail}`).join('; ')}); ${rto}${rpo}${region}.`;
}

export function printFailoverPlan(plan: AssessedPlan): void {
  line(`Recovery plan${plan.mode === 'drill' ? ' (failover drill: drill instances and drill zones only)' : ' (failover)'}, assessed ${plan.assessedAt}`);
  if (plan.primary && !plan.primary.reachable) line(plan.primary.detail);
  const byName = new Map(plan.steps.map((s) => [s.name, s]));
  plan.waves.forEach((wave, i) => {
    line();
    line(`wave ${i + 1}${wave.length > 1 ? ' (in parallel)' : ''}:`);
    for (const name of wave) {
      const s = byName.get(name)!;
      const predicted = s.predictedSeconds !== undefined ? `predicted ${formatDuration(s.predictedSeconds)}` : 'no prediction';
      line(`  ${s.name} (${what(s)})${s.after.length ? ` after ${s.after.join(', ')}` : ''}: ${s.readiness.ready ? 'ready' : 'NOT READY'}, ${predicted}`);
      if (s.source) line(`    source: ${s.source.description}${s.source.ageSeconds !== undefined ? `; data age ${formatAge(s.source.ageSeconds)} (RPO now)` : ''}`);
      if (s.url) line(`    checks: ${s.url}${s.servesFrom ? `, served from ${s.servesFrom}'s DR instance` : ''}`);
      line(`    ${s.readiness.ready ? 'ready' : 'not ready'}: ${s.readiness.detail}`);
      if (s.predictionBasis) line(`    prediction: ${s.predictionBasis}`);
    }
  });
  line();
  const within = plan.criticalPath.seconds <= plan.objectiveSeconds ? 'within' : 'OVER';
  line(`critical path: ${plan.criticalPath.steps.join(' -> ')} = ${formatDuration(plan.criticalPath.seconds)} (${within} the full-system objective of ${formatDuration(plan.objectiveSeconds)})`);
  if (plan.worstRpoSeconds !== undefined) {
    const worst = plan.steps.find((s) => s.source?.ageSeconds === plan.worstRpoSeconds);
    line(`worst RPO now: ${formatAge(plan.worstRpoSeconds)}${worst ? ` (${worst.name})` : ''}`);
  }
  line(failoverVerdict(plan));
}

export async function failoverPlanCommand(config: LifeboatConfig, o: { drill: boolean; json: boolean }): Promise<number> {
  checkFailoverPlan(config);
  const ports = createPorts(config, { log: () => undefined });
  let plan: AssessedPlan;
  try {
    plan = await failoverPlanActivities(ports).assessFailoverPlan(o.drill ? 'drill' : 'failover');
  } finally {
    await ports.close();
  }
  if (o.json) printJson(plan);
  else printFailoverPlan(plan);
  return plan.ready ? 0 : 1;
}
