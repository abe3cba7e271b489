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
