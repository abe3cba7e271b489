import { ApplicationFailure } from '@temporalio/common';
/**
 * The sentence a person acts on: the outermost message below the SDK's generic wrappers
 * ("Activity task failed", ...). Not the innermost: below lifeboat's own sentence lie its causes
 * (an AWS SDK error's raw text, for one), which say less about what to do.
 */
export function describeFailure(err: unknown): string {
  let current: unknown = err;
  for (let i = 0; i < 8 && current instanceof Error; i++) {
    if (current.message && !GENERIC.test(current.message)) return current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The failure's type (`ApplicationFailure.type`): the outermost one along the causes, as the
 * workflow or activity that decided it set it. Outcomes are decided by this, never by message text.
 */
export function failureType(err: unknown): string | undefined {
  let current: unknown = err;
  for (let i = 0; i < 8 && current instanceof Error; i++) {
    if (current instanceof ApplicationFailure && current.type) return current.type;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

const GENERIC = /^(Activity task failed|Activity task timed out|Workflow execution failed|Child Workflow execution failed|Workflow Update failed)$/;

/** Every failed check of a verification, as `name: detail; ...`. */
export function failedChecks(v: { checks: Array<{ name: string; ok: boolean; detail: string }> }): string {
  return v.checks
    .filter((c) => !c.ok)
    .map((c) => `${c.name}: ${c.detail}`)
    .join('; ');
}
