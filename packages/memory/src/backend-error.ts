/**
 * How a failed backend call is handled:
 * - `transient`: retry with backoff; the write may or may not have landed, so reconcile first.
 * - `permanent`: the request itself is rejected (e.g. invalid content); retrying cannot help.
 * - `rate_limited`: wait `retryAfterMs`, fleet-wide; not a failure of the message.
 * - `auth`: credentials rejected; hold the messages until they work again.
 */
export type BackendErrorKind = 'transient' | 'permanent' | 'rate_limited' | 'auth';

/** The one error type backends throw; its kind decides retry. */
export class BackendError extends Error {
  constructor(
    readonly kind: BackendErrorKind,
    message: string,
    readonly details: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = 'BackendError';
  }
}
