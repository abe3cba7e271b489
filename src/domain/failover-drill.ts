/**
 * Failover drills' naming and ownership rules, pure: which name a drill run writes in a drill
 * zone, how that name is marked as the run's, and how a drill application's command line is
 * filled in. The activities (src/activities/failover-drill.ts) and the sweeper use these same
 * rules, so what one writes the other recognises.
 */
import { drillNameFor } from './recovery-plan';

/** A DNS label is at most 63 characters. */
const MAX_LABEL = 63;

const dot = (s: string) => (s.endsWith('.') ? s : `${s}.`);

/** FNV-1a, 32 bits, as 8 hex digits: a short stable fingerprint of a workflow id (no Node APIs here). */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The DNS label that keeps one drill run's names apart from another's: the workflow id made
 * DNS-safe, shortened, and followed by a hash of the whole id, so two ids that read alike after
 * the clean-up still get different labels.
 */
export function drillRunLabel(workflowId: string): string {
  const hash = shortHash(workflowId);
  const slug = workflowId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, MAX_LABEL - hash.length - 1)
    .replace(/-$/, '');
  return `${slug || 'run'}-${hash}`;
}

/** Whether `name` lies strictly inside `zone` (a name below it, not the zone's own apex). */
export function isInsideZone(name: string, zone: string): boolean {
  const n = dot(name.toLowerCase());
  const z = dot(zone.toLowerCase());
  return n !== z && n.endsWith(`.${z}`);
}

/**
 * The name a drill run writes for a production name: the production zone swapped for the drill
 * zone, with the run's label just above the drill zone (db.app.lifeboat.test. ->
 * db.app.<run-label>.drill.lifeboat.test.). Throws for a name outside the production zone, or a
 * result longer than DNS allows.
 */
export function drillNameForRun(productionName: string, zone: string, drillZone: string, workflowId: string): string {
  const inDrillZone = drillNameFor(productionName, zone, drillZone);
  const relative = inDrillZone.slice(0, inDrillZone.length - dot(drillZone.toLowerCase()).length);
  const name = `${relative}${drillRunLabel(workflowId)}.${dot(drillZone.toLowerCase())}`;
  if (name.length > 254) throw new Error(`the drill name for ${productionName} (${name}) is longer than DNS allows: use a shorter drill zone`);
  return name;
}

/**
 * Refuses any name a drill is about to write that is not inside the drill zone, or that lies in
 * the production zone without lying in the drill zone (a drill zone under the production zone is
 * fine only for names under the drill zone itself). The one check every drill DNS write passes.
 */
export function assertDrillZoneName(name: string, drillZone: string, productionZone?: string): void {
  if (!isInsideZone(name, drillZone)) {
    throw new Error(`refusing to write ${name}: a failover drill writes only names inside its drill zone ${dot(drillZone)}`);
  }
  if (productionZone && dot(drillZone.toLowerCase()) === dot(productionZone.toLowerCase())) {
    throw new Error(`refusing to write ${name}: the drill zone ${dot(drillZone)} is the production zone itself`);
  }
}

/** Who a drill-zone record belongs to: the drill run that wrote it. */
export interface DrillNameOwner {
  workflowId: string;
  runId: string;
  /** The database target whose name it copies. */
  target: string;
}

const OWNER_MARK = 'lifeboat-drill-owner';

/**
 * The owner mark a drill-zone record carries (a PowerDNS rrset comment, a Route53 TXT value):
 * one line, each field URI-encoded so any workflow id fits.
 */
export function drillOwnerMark(owner: DrillNameOwner): string {
  return `${OWNER_MARK} workflowId=${encodeURIComponent(owner.workflowId)} runId=${encodeURIComponent(owner.runId)} target=${encodeURIComponent(owner.target)}`;
}

/** The owner a mark names, or undefined for anything that is not a lifeboat drill mark (TXT quotes tolerated). */
export function parseDrillOwnerMark(text: string): DrillNameOwner | undefined {
  const unquoted = text.trim().replace(/^"(.*)"$/, '$1');
  const m = /^lifeboat-drill-owner workflowId=(\S+) runId=(\S*) target=(\S*)$/.exec(unquoted);
  if (!m) return undefined;
  try {
    return { workflowId: decodeURIComponent(m[1]), runId: decodeURIComponent(m[2]), target: decodeURIComponent(m[3]) };
  } catch {
    return undefined;
  }
}

/** A drill application's key: one per (run, step), also its pid file's name. */
export function drillApplicationKey(workflowId: string, step: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  return `${safe(workflowId)}--${safe(step)}-${shortHash(`${workflowId}\n${step}`)}`;
}

/** Values for a drill application's placeholders. */
export interface DrillCommandValues {
  port: number;
  dnsServer: string;
  /** Drill names by database target. */
  names: Record<string, string>;
}

/**
 * Fills {port}, {dnsServer} and {name:<target>} in one argument or URL. An unknown placeholder,
 * or a name the drill did not write, is an error naming it (the config check should have caught it).
 */
export function fillDrillPlaceholders(text: string, values: DrillCommandValues): string {
  return text.replace(/\{([^{}]+)\}/g, (whole, inner: string) => {
    if (inner === 'port') return String(values.port);
    if (inner === 'dnsServer') return values.dnsServer;
    if (inner.startsWith('name:')) {
      const target = inner.slice('name:'.length);
      const name = values.names[target];
      if (name === undefined) throw new Error(`the drill command asks for ${whole}, but the drill wrote no name for database target ${target}: add a move-name step for it or fix the placeholder`);
      return name.replace(/\.$/, '');
    }
    throw new Error(`the drill command has an unknown placeholder ${whole}: use {port}, {dnsServer} or {name:<database target>}`);
  });
}
