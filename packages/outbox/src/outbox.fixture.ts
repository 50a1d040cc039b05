import { Redis } from 'ioredis';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { dumpRedisPrefix } from '@memfleet/testing/store-dump';
import { createOutbox, type Outbox } from './outbox.ts';

/** Test support: a fresh outbox per test on the test Redis, under its own prefix. */
export interface OutboxContext {
  redis: Redis;
  outbox: Outbox;
  prefix: string;
}

/**
 * Registers hooks that give every test of the calling `describe` a new outbox (`dedupeWindowS`
 * 60) and remove its keys afterwards (kept for the PII scan first, see store-dump.ts). Read the context inside tests, not at registration.
 */
export function useTestOutbox(): OutboxContext {
  const ctx = {} as OutboxContext;
  beforeEach(async () => {
    ctx.redis = new Redis(await testRedisUrl());
    ctx.prefix = uniquePrefix();
    ctx.outbox = createOutbox(ctx.redis, { prefix: ctx.prefix, dedupeWindowS: 60 });
  });
  afterEach(async () => {
    await dumpRedisPrefix(ctx.redis, ctx.prefix);
    const keys = await ctx.redis.keys(`${ctx.prefix}*`);
    if (keys.length > 0) await ctx.redis.del(...keys);
    await ctx.redis.quit();
  });
  return ctx;
}
