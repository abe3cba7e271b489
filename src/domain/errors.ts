/**
 * Errors a person acts on. Each message is one sentence: what is wrong and what to do.
 * `nonRetryable` marks failures no retry can fix (bad input, permission, outside the window);
 * activities convert them to ApplicationFailure.nonRetryable with the same message.
 */
export class LifeboatError extends Error {
  constructor(
    message: string,
    readonly code: string,
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
