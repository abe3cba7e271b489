/**
 * Engines wired for the embedded local stack, for tests, the benchmark and the chaos harness.
 * They live here, not in src/engines, so that engines never load the stack (and the worker
 * never loads code that starts servers).
 */
import { PgBackRestEngine } from '../engines/pgbackrest';
import type { PgBackRestEngineOptions } from '../engines/pgbackrest/options';
import { localPgBackRest } from './pgbackrest';
import type { StackSettings } from './settings';
import { createStack, type Stack } from './stack';

/**
 * The engine wired for the embedded local stack: stanza `app` of the primary cluster, repo1 in the
 * primary region's MinIO and repo2 in the DR region's, restores under `<dataDir>/restores`.
 */
export function localPgBackRestEngine(from?: Stack | StackSettings, overrides: Partial<PgBackRestEngineOptions> = {}): PgBackRestEngine {
  const stack = from && 'ctx' in from ? from : createStack(from);
  const { settings, paths, tools } = stack.ctx;
  return new PgBackRestEngine({
    cli: localPgBackRest(stack.ctx),
    source: {
      instanceId: 'primary',
      host: settings.host,
      port: settings.postgres.primaryPort,
      database: settings.postgres.appDatabase,
      user: settings.postgres.superuser,
      dataDir: paths.pgData('primary'),
      socketDir: paths.pgSocketDir,
    },
    restoresDir: paths.restoresDir,
    runDir: paths.run,
    osUser: settings.postgres.osUser,
    pgBin: tools.pgBin,
    host: settings.host,
    portRange: settings.postgres.restorePorts,
    drillPortRange: settings.postgres.drillPorts,
    primaryRepo: 1,
    drRepo: 2,
    restoreSettings: { shared_buffers: '32MB' },
    ...overrides,
  });
}
