/** Reads a `Retry-After` (seconds or HTTP date), else `X-RateLimit-Reset` (unix seconds), in ms. */
export function retryAfterMs(headers: Headers | undefined, nowMs = Date.now()): number | undefined {
  const retryAfter = headers?.get('retry-after')?.trim();
  if (retryAfter !== undefined && retryAfter !== '') {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - nowMs);
  }
  const reset = Number(headers?.get('x-ratelimit-reset'));
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - nowMs);
  return undefined;
}
