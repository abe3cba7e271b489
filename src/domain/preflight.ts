/** Inputs and results of the preflight workflow: can lifeboat do its job right now? */
export interface PreflightInput {
  /** Database, bucket and SQLite targets to check; default every target in the config. */
  targets?: string[];
}

export interface ComponentCheck {
  /** e.g. `database app`, `pgbackrest app repo2 (dr)`, `object store primary`. */
  component: string;
  ok: boolean;
  detail: string;
  /** Reported, but does not fail the preflight (the RPO: lifeboat can still back up and restore). */
  advisory?: boolean;
}

export interface PreflightPlan {
  databases: string[];
  objectStores: string[];
  dnsNames: Array<{ target: string; router: string; dnsName: string }>;
  /** Directory targets, each checked on its host (absent in plans from before directory targets). */
  directories?: string[];
  /** SQLite targets, each checked where its file is (patch `sqlite-targets-in-preflight`). */
  sqlite?: string[];
}

export interface PreflightResult {
  ok: boolean;
  checks: ComponentCheck[];
  /** Checks that failed, one line each, for a person. */
  problems: string[];
}
