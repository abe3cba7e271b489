/**
 * `lifeboat stack region down|up <region>`: the loss and return of one region, for failover
 * drills and tests. The primary region is its MinIO and its PostgreSQL cluster; the DR region is
 * its MinIO. Everything else (Temporal, the catalog, PowerDNS, the sample application) stands
 * for "elsewhere" and is never touched here.
 */
import fs from 'node:fs';
import { StackComponent } from './component';
import { localPgBackRest } from './pgbackrest';
import { checkPorts, ComponentStatus, Stack, stackStatus } from './stack';
import { portAnswers, waitUntil } from '../platform/processes';

export const REGION_NAMES = ['primary', 'dr'] as const;
export type RegionName = (typeof REGION_NAMES)[number];

export function isRegionName(name: string): name is RegionName {
  return (REGION_NAMES as readonly string[]).includes(name);
}

/** The region's components in start order: its object store first, since the primary archives WAL into it. */
export function regionComponents(stack: Stack, region: RegionName): StackComponent[] {
  return region === 'primary' ? [stack.minioPrimary, stack.primary] : [stack.minioDr];
}

export interface RegionChange {
  region: RegionName;
  /** Components this call stopped (down) or started (up). */
  changed: string[];
  /** Components already in the wanted state. */
  unchanged: string[];
  /** Every component of the stack afterwards, so a caller sees the rest is untouched. */
  status: ComponentStatus[];
}

/** Stops the region's components, newest first, and waits until none of their ports answers. */
export async function regionDown(stack: Stack, region: RegionName): Promise<RegionChange> {
  const { settings } = stack.ctx;
  const changed: string[] = [];
  const unchanged: string[] = [];
  // PostgreSQL before MinIO: its shutdown archives the last WAL segment into the store.
  for (const component of [...regionComponents(stack, region)].reverse()) {
    if (component.isRunning()) {
      stack.ctx.log(`stopping ${component.name}`);
      await component.stop();
      changed.push(component.name);
    } else {
      unchanged.push(component.name);
    }
    for (const claim of component.ports()) {
      await waitUntil(`${claim.what} to close port ${claim.port}`, async () => !(await portAnswers(settings.host, claim.port)) || `port ${claim.port} still answers`, {
        timeoutMs: 15000,
        hint: `something else may listen there: find it with \`ss -ltnp 'sport = :${claim.port}'\``,
      });
    }
  }
  return { region, changed, unchanged, status: await stackStatus(stack) };
}

/** Starts the region's components that are not running; healthy ones are left alone. */
export async function regionUp(stack: Stack, region: RegionName): Promise<RegionChange> {
  const { ctx } = stack;
  if (!fs.existsSync(ctx.paths.caCert)) {
    throw new Error(`the stack in ${ctx.settings.dataDir} was never started: run \`lifeboat stack up\` first.`);
  }
  const components = regionComponents(stack, region);
  // A taken port is refused before anything starts, as `stack up` does.
  await checkPorts(stack, components);
  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const component of components) {
    if (component.isRunning()) {
      unchanged.push(component.name);
      continue;
    }
    ctx.log(`starting ${component.name}`);
    await component.start();
    changed.push(component.name);
  }
  // WAL that could not be archived while a store was away is pushed now, so the primary is
  // healthy again without waiting for its next segment; a region still down makes this fail.
  if (stack.primary.isRunning() && !(await stack.primary.health()).healthy) {
    ctx.log('WAL archiving was failing: running `pgbackrest check` to archive the backlog');
    await localPgBackRest(ctx)
      .check()
      .catch((err: Error) => ctx.log(`pgbackrest check still fails: ${err.message}`));
  }
  return { region, changed, unchanged, status: await stackStatus(stack) };
}
