// Reconcile failures by what retrying can do, as controller-runtime splits them. A retryable failure
// (the API server overloaded or unreachable, a write conflict) is thrown to the work queue, which tries
// again with backoff. A terminal one fails the same way until someone changes the FileCluster or what
// it refers to: the reconciler reports it as a condition and waits for that change (every change
// queues the FileCluster) instead of retrying.

/** Retrying the same input cannot succeed; `reason` is the condition reason that reports it. */
export class TerminalError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
    this.reason = reason;
  }
}

/**
 * Whether the API server's refusal with this HTTP status is final for the same request: it judged the
 * request itself (invalid, forbidden, not found). Conflicts (409), throttling (429) and server errors
 * may pass on a later try.
 */
export function isTerminalStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 409 && status !== 429;
}
