import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Counter } from 'prom-client';
import { BurstyRateLimiter, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { toError } from '@memfleet/errors/to-error';
import type { Logger } from '@memfleet/logger/create-logger';
import type { RedisClient } from '@memfleet/redis/connect-redis';
import { principalOf } from './auth.ts';
import { HttpError } from './http-error.ts';

/** A sustained rate and the extra requests a tenant may spend on top of it in a 10 s window. */
export interface RateLimitSettings {
  /** Requests per second per tenant; 0 turns the limit off. */
  perSecond: number;
  /** Extra requests per tenant per {@link BURST_WINDOW_S} beyond `perSecond`. */
  burst: number;
}

/** The window of a limit's burst allowance, in seconds. */
export const BURST_WINDOW_S = 10;

/** Counters of {@link tenantRateLimit}. */
export interface RateLimitMetrics {
  /** Requests answered 429, by limit (`enqueue`, `read`) and tenant (a configured tenant). */
  limited: Counter<'limit' | 'tenant'>;
  /** Limiter checks that failed (Redis unreachable or slow) and let the request through. */
  failedOpen: Counter<'limit'>;
}

/** A per-tenant request limit: {@link tenantRateLimit}. */
export interface RateLimit {
  /**
   * Resolves when `tenant` may make one more request, rejects with a 429 {@link HttpError} when it
   * is over the limit.
   */
  admit(tenant: string): Promise<void>;
}

const ADMITTED: Promise<void> = Promise.resolve();

/**
 * Per-tenant request limit held in Redis (rate-limiter-flexible: a fixed 1 s window of `perSecond`
 * requests, then a {@link BURST_WINDOW_S} window of `burst` more), so it holds across every process
 * of the fleet. Keys are `<prefix>:rl:<name>:<tenant>` (and `<prefix>:rl:<name>-burst:<tenant>`),
 * inside the prefix's hash tag. Over the limit: 429 `rate_limited` with `Retry-After` in seconds.
 * When Redis fails or takes longer than `timeoutMs`, the request goes through (fail open), logged
 * and counted.
 */
export function tenantRateLimit(options: {
  name: 'enqueue' | 'read';
  settings: RateLimitSettings;
  redis: RedisClient;
  prefix: string;
  metrics: RateLimitMetrics;
  logger: Pick<Logger, 'warn'>;
  timeoutMs?: number;
  /** Clock in ms for the failure warning's once-a-second limit. Default `Date.now`. */
  now?: () => number;
}): RateLimit {
  const { name, settings, metrics, logger } = options;
  if (settings.perSecond === 0) return { admit: () => ADMITTED };
  const base = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: `${options.prefix}:rl:${name}`,
    points: settings.perSecond,
    duration: 1,
  });
  const limiter =
    settings.burst > 0
      ? new BurstyRateLimiter(
          base,
          new RateLimiterRedis({
            storeClient: options.redis,
            keyPrefix: `${options.prefix}:rl:${name}-burst`,
            points: settings.burst,
            duration: BURST_WINDOW_S,
          }),
        )
      : base;
  const timeoutMs = options.timeoutMs ?? 200;
  const clock = options.now ?? Date.now;
  let lastWarning: number | undefined;

  return {
    async admit(tenant) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const outcome = await Promise.race([limiter.consume(tenant, 1), timeout]);
        if (outcome === 'timeout') throw new Error(`rate limiter: no answer in ${timeoutMs} ms`);
      } catch (err: unknown) {
        if (err instanceof RateLimiterRes) {
          metrics.limited.inc({ limit: name, tenant });
          const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
          throw new HttpError(
            429,
            'rate_limited',
            `tenant ${tenant}: over the ${name} limit of ${settings.perSecond} requests/s; retry after ${retryAfter} s`,
            { 'retry-after': String(retryAfter) },
          );
        }
        metrics.failedOpen.inc({ limit: name });
        // One warning a second at most: a Redis outage would otherwise log every request.
        const now = clock();
        if (lastWarning === undefined || now - lastWarning > 1000) {
          lastWarning = now;
          logger.warn('rate limiter failed; letting requests through', {
            limit: name,
            err: toError(err),
          });
        }
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** `limit` as Express middleware, mounted after `requireTenant`. */
export function rateLimited(limit: RateLimit): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => {
    limit.admit(principalOf(res).tenant).then(() => {
      next();
    }, next);
  };
}
