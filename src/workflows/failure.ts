/** The sentence a person needs from a failure: the innermost meaningful message of its cause chain. */
export function describeFailure(err: unknown): string {
  let current: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  for (let i = 0; i < 8 && current instanceof Error; i++) {
    if (current.message && !/^Activity task failed$/.test(current.message)) message = current.message;
    current = (current as { cause?: unknown }).cause;
  }
  return message;
}

/** Every failed check of a verification, as `name: detail; ...`. */
export function failedChecks(v: { checks: Array<{ name: string; ok: boolean; detail: string }> }): string {
  return v.checks
    .filter((c) => !c.ok)
    .map((c) => `${c.name}: ${c.detail}`)
    .join('; ');
}
