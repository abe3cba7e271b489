/**
 * The catalog's schema, as an ordered list of migrations. Applied at `stack up` and at worker
 * start; each runs once, inside a transaction, under an advisory lock so two starting workers
 * cannot race. Never edit a released migration: append a new one.
 */
import { Client } from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'backups, verifications, events, approvals',
    sql: `
      CREATE TABLE backups (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        environment text NOT NULL,
        backup_type text NOT NULL,
        engine text NOT NULL,
        engine_backup_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('running','complete','verified','failed','expired','deleted')),
        locations jsonb NOT NULL DEFAULT '{}'::jsonb,
        size_bytes bigint,
        checksums jsonb NOT NULL DEFAULT '{}'::jsonb,
        started_at timestamptz,
        completed_at timestamptz,
        verified_at timestamptz,
        legal_hold boolean NOT NULL DEFAULT false,
        workflow_id text NOT NULL,
        run_id text,
        failure text,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (workflow_id, engine_backup_id)
      );
      CREATE INDEX backups_target_idx ON backups (target, completed_at DESC);
      CREATE TABLE verifications (
        id bigserial PRIMARY KEY,
        backup_id bigint REFERENCES backups(id),
        workflow_id text NOT NULL,
        subject text NOT NULL,
        ok boolean NOT NULL,
        checks jsonb NOT NULL,
        verified_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE workflow_events (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        kind text NOT NULL,
        target text,
        event text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX workflow_events_workflow_idx ON workflow_events (workflow_id);
      CREATE TABLE approvals (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        gate text NOT NULL,
        decision text NOT NULL CHECK (decision IN ('approved','rejected','expired')),
        decided_by text NOT NULL,
        reason text NOT NULL,
        decided_at timestamptz NOT NULL,
        UNIQUE (workflow_id, gate)
      );
    `,
  },
  {
    version: 2,
    name: 'preflight checks',
    sql: `
      CREATE TABLE preflight_checks (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL UNIQUE,
        ok boolean NOT NULL,
        components jsonb NOT NULL,
        checked_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: 'restores',
    sql: `
      CREATE TABLE restores (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL UNIQUE,
        target text NOT NULL,
        outcome text NOT NULL,
        restore_point text NOT NULL,
        destination text,
        requested_by text NOT NULL,
        report jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX restores_target_idx ON restores (target, recorded_at DESC);
    `,
  },
  {
    version: 4,
    name: 'traffic changes, source fences, target sources',
    sql: `
      -- Every DNS change lifeboat makes, with the value it replaced, so it can always be undone.
      CREATE TABLE traffic_changes (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        target text NOT NULL,
        router text NOT NULL,
        name text NOT NULL,
        previous_value jsonb NOT NULL,
        new_value jsonb NOT NULL,
        repair_command text NOT NULL,
        state text NOT NULL CHECK (state IN ('recorded','applied','rolled-back','rollback-failed')),
        detail text,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        applied_at timestamptz,
        rolled_back_at timestamptz,
        UNIQUE (workflow_id, run_id, name)
      );
      CREATE INDEX traffic_changes_name_idx ON traffic_changes (name, recorded_at DESC);
      -- What fencing did to a source before traffic moved, so a rollback can undo exactly that.
      CREATE TABLE source_fences (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        target text NOT NULL,
        instance_id text NOT NULL,
        method text NOT NULL,
        fence jsonb NOT NULL,
        state text NOT NULL CHECK (state IN ('fenced','unfenced')),
        fenced_at timestamptz NOT NULL DEFAULT now(),
        unfenced_at timestamptz,
        UNIQUE (workflow_id, run_id, target)
      );
      -- Which instance serves as a target's source (its primary), since when and why.
      CREATE TABLE target_sources (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        instance_id text NOT NULL,
        endpoint text,
        data_dir text,
        protection jsonb NOT NULL DEFAULT '{}'::jsonb,
        since timestamptz NOT NULL DEFAULT now(),
        until timestamptz,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        UNIQUE (workflow_id, run_id, target)
      );
      CREATE UNIQUE INDEX target_sources_current_idx ON target_sources (target) WHERE until IS NULL;
    `,
  },
  {
    version: 5,
    name: 'restore points',
    sql: `
      -- Named restore points lifeboat made on a source, with their LSN: what lets a restore to
      -- name:<n> be checked against the restore window before anyone approves it.
      CREATE TABLE restore_points (
        id bigserial PRIMARY KEY,
        target text NOT NULL,
        name text NOT NULL,
        lsn text,
        state text NOT NULL CHECK (state IN ('creating','created')),
        created_by text NOT NULL,
        reason text NOT NULL,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz,
        UNIQUE (target, name)
      );
    `,
  },
  {
    version: 6,
    name: 'restore drills',
    sql: `
      -- Every restore drill: the backup it proved (or failed to), its measured RTO and RPO, and
      -- the SHA-256 of each rendering of its report as written to the evidence buckets.
      CREATE TABLE drills (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        target text NOT NULL,
        backup_id text NOT NULL,
        backup_catalog_id bigint REFERENCES backups(id),
        region text NOT NULL,
        outcome text NOT NULL CHECK (outcome IN ('passed','failed','cancelled')),
        rto_seconds integer NOT NULL,
        rpo_seconds integer NOT NULL,
        phases jsonb NOT NULL,
        evidence jsonb NOT NULL,
        report jsonb NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (workflow_id, run_id)
      );
      CREATE INDEX drills_target_idx ON drills (target, started_at DESC);
      -- What the newest drill of a backup found: "proven" or "restore failed".
      ALTER TABLE backups ADD COLUMN drill_outcome text, ADD COLUMN drilled_at timestamptz;
    `,
  },
  {
    version: 7,
    name: 'row counts at backup, drill query timings',
    sql: `
      -- The exact row counts of the target's critical tables counted right after the backup
      -- ended, with the position of that snapshot (BackupRowCounts), or why there are none:
      -- what drills of this backup compare the restored counts against.
      ALTER TABLE backups ADD COLUMN row_counts jsonb;
      -- Each drill's timings of its smoke and validation queries on the restored instance, kept
      -- in the report and here for the next drill to compare with.
      ALTER TABLE drills ADD COLUMN query_timings jsonb GENERATED ALWAYS AS (report -> 'queryTimings') STORED;
    `,
  },
  {
    version: 9,
    name: 'compliance reports',
    sql: `
      -- Every compliance report: what it found (breaches), the report itself, and the SHA-256 of
      -- each rendering as written to the evidence buckets.
      CREATE TABLE compliance_reports (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        generated_at timestamptz NOT NULL,
        ok boolean NOT NULL,
        breaches integer NOT NULL,
        report jsonb NOT NULL,
        evidence jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (workflow_id, run_id)
      );
      CREATE INDEX compliance_reports_generated_idx ON compliance_reports (generated_at DESC);
    `,
  },
  {
    version: 11,
    name: 'restore point attempts',
    sql: `
      -- When the making of a restore point began: a retry after a crash between making the point
      -- and recording its LSN cannot tell whether the point exists, and PostgreSQL keeps
      -- duplicate names (recovery stops at the first). Such a name is marked uncertain, never
      -- made twice, and a restore to it is refused.
      ALTER TABLE restore_points ADD COLUMN attempted_at timestamptz;
      ALTER TABLE restore_points DROP CONSTRAINT restore_points_state_check;
      ALTER TABLE restore_points ADD CONSTRAINT restore_points_state_check CHECK (state IN ('creating','created','uncertain'));
    `,
  },
  {
    version: 12,
    name: 'failovers',
    sql: `
      -- One row per disaster-recovery failover (drFailover): its outcome, measured RTO, the whole
      -- report, the evidence objects written for it, and the lessons added afterwards
      -- (\`lifeboat failover note\`), each lesson also written as a new evidence object.
      CREATE TABLE failovers (
        workflow_id text PRIMARY KEY,
        run_id text NOT NULL,
        mode text NOT NULL CHECK (mode IN ('failover','drill')),
        outcome text NOT NULL,
        requested_by text NOT NULL,
        reason text NOT NULL,
        incident_id text,
        rto_seconds integer,
        declared_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        report jsonb NOT NULL,
        evidence jsonb NOT NULL DEFAULT '[]',
        lessons jsonb NOT NULL DEFAULT '[]',
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX failovers_declared_idx ON failovers (declared_at DESC);
    `,
  },
  {
    version: 13,
    name: 'failbacks',
    sql: `
      -- One row per failback (the planned way home after a failover): which failover it closes,
      -- its outcome, the proof that no committed transaction was lost, the whole report and its
      -- evidence. At most one failback per failover ends 'failed-back'.
      CREATE TABLE failbacks (
        workflow_id text PRIMARY KEY,
        run_id text NOT NULL,
        failover_id text NOT NULL REFERENCES failovers (workflow_id),
        outcome text NOT NULL,
        requested_by text NOT NULL,
        reason text NOT NULL,
        write_outage_seconds integer,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        report jsonb NOT NULL,
        evidence jsonb NOT NULL DEFAULT '[]',
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX failbacks_one_per_failover ON failbacks (failover_id) WHERE outcome = 'failed-back';
    `,
  },
  {
    version: 14,
    name: 'alerts',
    // One row per alert (one alertEscalation run): what it is about, how far it escalated, who took it.
    // The steps themselves are workflow_events rows of kind 'alert' under the escalation's workflow id.
    sql: `
      CREATE TABLE alerts (
        id bigserial PRIMARY KEY,
        dedup_key text NOT NULL,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        severity text NOT NULL,
        target text,
        title text NOT NULL,
        text text NOT NULL,
        source_workflow_id text,
        next_step text NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')),
        level integer NOT NULL DEFAULT 0,
        level_name text NOT NULL,
        occurrences integer NOT NULL DEFAULT 1,
        opened_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        acknowledged_by text,
        acknowledged_at timestamptz,
        acknowledge_note text,
        resolved_at timestamptz,
        resolved_because text,
        closed_at timestamptz,
        UNIQUE (workflow_id, run_id)
      );
      CREATE INDEX alerts_open_idx ON alerts (dedup_key) WHERE status IN ('open', 'acknowledged');
    `,
  },
  {
    version: 17,
    name: 'restored instances',
    sql: `
      -- Every instance a restore left standing (restored, or kept on failure): what it is, which
      -- run made it (the owner its own record on the host must match before removal), when it
      -- expires, whether its expiry notice went out, whether it took traffic (then lifeboat never
      -- removes it), and how it ended. Filled when pitrRestore records its report.
      CREATE TABLE restored_instances (
        instance_id text PRIMARY KEY,
        target text NOT NULL,
        engine text NOT NULL,
        made_by text NOT NULL,
        owner_workflow_id text NOT NULL,
        owner_run_id text NOT NULL,
        restore_point text NOT NULL,
        restored_from text NOT NULL,
        endpoint text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        notice_sent_at timestamptz,
        served_traffic boolean NOT NULL DEFAULT false,
        served_traffic_at timestamptz,
        state text NOT NULL DEFAULT 'kept' CHECK (state IN ('kept','removed')),
        removed_at timestamptz,
        removed_by text,
        removal_detail text,
        extensions jsonb NOT NULL DEFAULT '[]'::jsonb
      );
      CREATE INDEX restored_instances_expiry_idx ON restored_instances (expires_at) WHERE state = 'kept';
    `,
  },
  {
    version: 28,
    name: 'restored things of every kind',
    sql: `
      -- Not only pitrRestore's instances: a files restore's new bucket, a logical restore's new
      -- database or schema, a table restore's schema, and a failover's DR instances. kind says
      -- which; details holds what removal needs to recognise the run's own (bucket store and
      -- fingerprint, server and database, the marker comment, the tables). expires_at is empty
      -- for what never expires on its own (a DR instance that serves traffic).
      ALTER TABLE restored_instances
        ADD COLUMN kind text NOT NULL DEFAULT 'instance' CHECK (kind IN ('instance', 'dr-instance', 'bucket', 'database', 'schema')),
        ADD COLUMN details jsonb NOT NULL DEFAULT '{}'::jsonb;
      ALTER TABLE restored_instances ALTER COLUMN expires_at DROP NOT NULL;
    `,
  },
];

const LOCK_KEY = 7_337_001; // arbitrary, fixed: serializes concurrent migrators

export async function migrateCatalog(client: Client): Promise<{ applied: number[] }> {
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`catalog migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
      }
      applied.push(m.version);
    }
    return { applied };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
  }
}
