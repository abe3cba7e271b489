/**
 * A failure's type, as `ApplicationFailure.type` carries it to workflows, the CLI and the Web
 * UI: SCREAMING_SNAKE_CASE everywhere (engines, activities, workflows), so outcomes are decided
 * by type, never by message text. A test keeps every literal in that one style.
 */
export type FailureType = Uppercase<string>;

/**
 * Errors a person acts on. Each message is one sentence: what is wrong and what to do.
 * `nonRetryable` marks failures no retry can fix (bad input, permission, outside the window);
 * activities convert them to ApplicationFailure.nonRetryable with the same message.
 */
export class LifeboatError extends Error {
  constructor(
    message: string,
    readonly code: FailureType,
    readonly nonRetryable: boolean = true,
  ) {
    super(message);
    this.name = 'LifeboatError';
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
