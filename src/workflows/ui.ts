/**
 * What a person sees of a running workflow in the Temporal Web UI: the phase search attribute
 * (filterable in lists) and the current-details markdown (the workflow page's live summary).
 */
import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { LifeboatPhase } from './search-attributes';

export function showPhase(phase: string, detailsMarkdown: string): void {
  upsertSearchAttributes([{ key: LifeboatPhase, value: phase }]);
  setCurrentDetails(detailsMarkdown);
}
