/**
 * The messages lifeboat's workflows accept, by name: approval decisions as updates (the caller
 * learns at once why a decision is refused) and as signals (for the Web UI and
 * `temporal workflow signal`), and the status query. The CLI sends them; the workflows handle them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Decision, DecisionInput, WorkflowStatus } from '../domain/approval';

export const approveUpdate = defineUpdate<Decision, [DecisionInput]>('approve');
export const rejectUpdate = defineUpdate<Decision, [DecisionInput]>('reject');
/** The same decisions as signals, for `temporal workflow signal` and the Web UI's signal form. */
export const approveSignal = defineSignal<[DecisionInput]>('approveSignal');
export const rejectSignal = defineSignal<[DecisionInput]>('rejectSignal');
export const statusQuery = defineQuery<WorkflowStatus>('status');
