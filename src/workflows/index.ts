// Every workflow the worker registers. Workflow code imports only @temporalio/workflow and src/domain.
export { preflight } from './preflight';
export { pitrRestore } from './pitr-restore';
