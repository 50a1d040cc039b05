import { Counter, type Registry } from 'prom-client';

/** Metrics of the per-tenant rate limits of the API and the reader. */
export interface RateLimitCounters {
  /** Requests answered 429, by limit (`enqueue`, `read`) and tenant. */
  limited: Counter<'limit' | 'tenant'>;
  /** Limiter checks that failed (Redis unreachable or slow) and let the request through. */
  failedOpen: Counter<'limit'>;
}

/**
 * Registers the rate-limit counters on `registry`. The `tenant` label takes only tenants of
 * `MEMFLEET_API_KEYS` (a request is limited only after its key named its tenant), so it is bounded
 * by the configuration.
 */
export function createRateLimitMetrics(registry: Registry): RateLimitCounters {
  return {
    limited: new Counter({
      name: 'memfleet_rate_limited_requests_total',
      help: 'Requests refused with 429 by the per-tenant rate limits, by limit and tenant.',
      labelNames: ['limit', 'tenant'],
      registers: [registry],
    }),
    failedOpen: new Counter({
      name: 'memfleet_rate_limiter_failures_total',
      help: 'Rate-limit checks that failed (Redis unreachable or slow) and let the request through.',
      labelNames: ['limit'],
      registers: [registry],
    }),
  };
}
