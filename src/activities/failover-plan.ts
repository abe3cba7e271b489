/**
 * assessFailoverPlan: the recovery plan with each step's DR source, its age and readiness, read
 * from the DR region only, with no side effects. (h3's interim version, to be replaced by h1's
 * fuller assessment with predictions when that branch is merged.)
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { findBucketTarget, findDatabaseTarget } from '../config';
import { LifeboatError } from '../domain/errors';
import { AssessedPlan, criticalPath, PlannedStep, planWaves } from '../domain/recovery-plan';
import { Ports } from './ports';

export function failoverPlanActivities(ports: Ports) {
  const { config } = ports;
  return {
    async assessFailoverPlan(mode: 'failover' | 'drill'): Promise<AssessedPlan> {
      if (!config.failover) throw new LifeboatError('the config has no `failover` block, so there is no recovery plan: declare failover.steps (see docs/config.md).', 'NO_FAILOVER_PLAN', true);
      const assessedAt = new Date();
      const steps: PlannedStep[] = [];
      for (const s of config.failover.steps) {
        const spec = { ...s, after: [...s.after], ...(s.kind === 'check-application' ? { timeoutSeconds: s.timeout } : {}) } as PlannedStep;
        if (s.kind === 'restore-database') {
          const db = findDatabaseTarget(config, s.target);
          try {
            const window = await ports.database(db.name).restoreWindow('dr');
            const ageSeconds = Math.max(0, Math.round((assessedAt.getTime() - Date.parse(window.latest)) / 1000));
            steps.push({ ...spec, source: { description: `DR copies of ${db.name}, restorable ${window.earliest} to ${window.latest}`, newestPoint: window.latest, ageSeconds }, readiness: { ready: true, detail: `the DR region can restore ${db.name} to ${window.latest}` } });
          } catch (err) {
            steps.push({ ...spec, readiness: { ready: false, detail: `no restorable DR copy of ${db.name}: ${(err as Error).message}` } });
          }
        } else if (s.kind === 'switch-bucket') {
          const b = findBucketTarget(config, s.target);
          try {
            await ports.objectStore(b.replica.store).send(new ListObjectsV2Command({ Bucket: b.replica.bucket, MaxKeys: 1 }), { abortSignal: AbortSignal.timeout(5000) });
            steps.push({ ...spec, source: { description: `replica ${b.replica.bucket} in store ${b.replica.store}` }, readiness: { ready: true, detail: `replica ${b.replica.bucket} answers` } });
          } catch (err) {
            steps.push({ ...spec, readiness: { ready: false, detail: `replica ${b.replica.bucket} does not answer: ${(err as Error).message}` } });
          }
        } else if (s.kind === 'move-name') {
          const db = findDatabaseTarget(config, s.target);
          try {
            const now = await ports.router(db.cutover!.router).currentTarget(db.cutover!.dnsName);
            steps.push({ ...spec, readiness: { ready: true, detail: `${db.cutover!.dnsName} answers ${now ? `${now.host}:${now.port ?? ''}` : 'nothing'} through router ${db.cutover!.router}` } });
          } catch (err) {
            steps.push({ ...spec, readiness: { ready: false, detail: `router ${db.cutover?.router} does not answer for ${db.cutover?.dnsName}: ${(err as Error).message}` } });
          }
        } else {
          steps.push({ ...spec, readiness: { ready: true, detail: `checked after the names move: ${s.url}` } });
        }
      }
      const ages = steps.map((s) => s.source?.ageSeconds).filter((a): a is number => a !== undefined);
      return {
        mode,
        assessedAt: assessedAt.toISOString(),
        steps,
        waves: planWaves(steps),
        criticalPath: criticalPath(steps, (name) => steps.find((s) => s.name === name)?.predictedSeconds),
        objectiveSeconds: config.objectives.fullSystem.rto,
        ...(ages.length ? { worstRpoSeconds: Math.max(...ages) } : {}),
        ready: steps.every((s) => s.readiness.ready),
      };
    },
  };
}
