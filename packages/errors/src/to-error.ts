/**
 * Turns anything thrown into an `Error`, so every `catch (err: unknown)` has one shape to log and
 * classify.
 */
export function toError(err: unknown): Error {
  if (err instanceof Error) return err;
  if (typeof err === 'string') return new Error(err);
  try {
    return new Error(JSON.stringify(err));
  } catch {
    return new Error(String(err));
  }
}
