/**
 * `lifeboat alerts list` and `lifeboat ack <alert-id>`: the alerts the catalog records, and taking
 * one (its escalation stops; who and when are on record in the catalog and the workflow's history).
 * What was typed, and whether the alert can be acknowledged at all, is checked before anything is sent.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { createPorts } from '../activities/ports';
import type { LifeboatConfig } from '../config';
import { normalizeIdentity } from '../domain/approval';
import { ACKNOWLEDGE_ALERT_UPDATE, AlertAcknowledgement } from '../domain/alerts';
import { describeError } from '../domain/errors';
import { checkLength, UsageError } from './args';
import { formatTable, line, printJson, uiLink } from './output';

interface AlertRow {
  id: string;
  status: string;
  severity: string;
  target: string | null;
  title: string;
  level: number;
  level_name: string;
  occurrences: number;
  opened_at: Date;
  last_seen_at: Date;
  acknowledged_by: string | null;
  acknowledged_at: Date | null;
  resolved_because: string | null;
  workflow_id: string;
  run_id: string;
  source_workflow_id: string | null;
}

const COLUMNS = `id::text AS id, status, severity, target, title, level, level_name, occurrences, opened_at, last_seen_at, acknowledged_by, acknowledged_at, resolved_because, workflow_id, run_id, source_workflow_id`;

const ACK_WAIT_MS = 60_000;

export interface AckOptions {
  alertId: string;
  by: string;
  note?: string;
}

/** The ack's input, checked before connecting: an id as `alerts list` shows it, a person, a short note. */
export function prepareAck(alertId: string, o: { by?: string; note?: string }): AckOptions {
  if (!/^[1-9]\d{0,17}$/.test(alertId)) throw new UsageError(`"${alertId}" is not an alert id: pass the number \`lifeboat alerts list\` shows, such as 12.`);
  const by = normalizeIdentity(o.by ?? process.env.LIFEBOAT_USER ?? '');
  if (!by) throw new UsageError('who takes the alert? pass --by <person> or set LIFEBOAT_USER, so the acknowledgement is on record.');
  if (/\s/.test(by)) throw new UsageError(`"${by}" is not an identity (it has spaces): pass --by alice@example.com or set LIFEBOAT_USER.`);
  checkLength('--note', o.note, 2000, 'keep the note short; the incident ticket holds the rest');
  return { alertId, by, ...(o.note ? { note: o.note } : {}) };
}

export async function alertsListCommand(config: LifeboatConfig, o: { all: boolean; json: boolean }): Promise<number> {
  const ports = createPorts(config);
  try {
    const rows = await ports.catalog.query<AlertRow>(
      `SELECT ${COLUMNS} FROM alerts ${o.all ? '' : "WHERE status IN ('open', 'acknowledged')"} ORDER BY opened_at DESC, id DESC LIMIT 200`,
    );
    if (o.json) {
      printJson(rows.map((r) => ({ ...r, opened_at: r.opened_at.toISOString(), last_seen_at: r.last_seen_at.toISOString(), acknowledged_at: r.acknowledged_at?.toISOString() ?? null })));
      return 0;
    }
    if (!rows.length) {
      line(o.all ? 'No alert on record.' : 'No open alert. `lifeboat alerts list --all` shows the closed ones too.');
      return 0;
    }
    const table = formatTable([
      ['ID', 'STATUS', 'TARGET', 'LEVEL', 'SEEN', 'OPENED', 'WHAT'],
      ...rows.map((r) => [
        r.id,
        r.status === 'acknowledged' ? `acknowledged by ${r.acknowledged_by}` : r.status,
        r.target ?? '-',
        `${r.level} (${r.level_name})`,
        `${r.occurrences}x`,
        r.opened_at.toISOString().replace(/\.\d+Z$/, 'Z'),
        r.title,
      ]),
    ]);
    for (const text of table) line(text);
    return 0;
  } finally {
    await ports.close();
  }
}

export async function ackCommand(config: LifeboatConfig, ack: AckOptions, o: { json: boolean; uiBase: string; client: () => Promise<Client> }): Promise<number> {
  const ports = createPorts(config);
  let row: AlertRow | undefined;
  try {
    [row] = await ports.catalog.query<AlertRow>(`SELECT ${COLUMNS} FROM alerts WHERE id = $1`, [ack.alertId]);
  } finally {
    await ports.close();
  }
  if (!row) throw new UsageError(`there is no alert ${ack.alertId} on record: \`lifeboat alerts list\` shows the open ones.`);
  if (row.status === 'acknowledged') throw new UsageError(`alert ${ack.alertId} is already acknowledged by ${row.acknowledged_by} at ${row.acknowledged_at?.toISOString()}: nothing to do.`);
  if (row.status === 'resolved') throw new UsageError(`alert ${ack.alertId} is resolved already (${row.resolved_because}): there is nothing to acknowledge.`);
  if (row.status === 'closed') throw new UsageError(`alert ${ack.alertId} is closed: there is nothing to acknowledge.`);
  const client = await o.client();
  let result: AlertAcknowledgement;
  try {
    const update = client.workflow.getHandle(row.workflow_id, row.run_id).executeUpdate<AlertAcknowledgement, [{ by: string; note?: string }]>(ACKNOWLEDGE_ALERT_UPDATE, { args: [{ by: ack.by, ...(ack.note ? { note: ack.note } : {}) }] });
    // The update needs a worker to run it: without one the CLI says so instead of waiting forever.
    let timer: NodeJS.Timeout | undefined;
    const noWorker = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`alert ${ack.alertId}'s escalation (${row!.workflow_id}) did not answer within ${ACK_WAIT_MS / 1000} s: check a lifeboat worker runs on task queue ${config.temporal.taskQueue}, then run the ack again.`)), ACK_WAIT_MS);
    });
    try {
      result = await Promise.race([update, noWorker]);
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    // The run ended or refused (acknowledged a moment ago by someone else, or resolved): the person's input no longer applies.
    if (err instanceof WorkflowNotFoundError) throw new UsageError(`alert ${ack.alertId}'s escalation (${row.workflow_id}) is no longer running: nothing to acknowledge.`);
    if (err instanceof WorkflowUpdateFailedError) throw new UsageError(describeError(err.cause ?? err).replace(/\.?$/, '.'));
    if (/workflow execution already completed/i.test(describeError(err))) throw new UsageError(`alert ${ack.alertId}'s escalation (${row.workflow_id}) has ended: nothing to acknowledge.`);
    throw err;
  } finally {
    await client.connection.close();
  }
  const link = uiLink(o.uiBase, config.temporal.namespace, row.workflow_id);
  if (o.json) {
    printJson({ ...result, workflowId: row.workflow_id, link });
    return 0;
  }
  line(`Alert ${result.alertId} acknowledged by ${result.by} at ${result.at}: escalation stopped at level ${result.level} (${result.levelName}).`);
  line(`  ${row.title}`);
  line(`  Escalation: ${row.workflow_id}  ${link}`);
  return 0;
}
