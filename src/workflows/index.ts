// Every workflow the worker registers. Workflow code imports only @temporalio/workflow and src/domain.
export { preflight } from './preflight';
export { pitrRestore } from './pitr-restore';
export { databaseBackup } from './database-backup';
export { logicalBackup } from './logical-backup';
export { filesBackup } from './files-backup';
export { retention } from './retention';
export { createRestorePoint } from './restore-point';
export { restoreDrill } from './restore-drill';
export { drillSweeper } from './drill-sweeper';
export { complianceReport } from './compliance-report';
export { drFailover } from './dr-failover';
export { failoverDatabase } from './failover-database';
export { failback } from './failback';
export { backupDeletion } from './backup-deletion';
export { instanceExpiry, instanceRemoval } from './restored-instances';
