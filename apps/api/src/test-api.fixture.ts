import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { loadConfig } from '@memfleet/config/load-config';
import { migrate } from '@memfleet/db/migrate';
import { createLogger } from '@memfleet/logger/create-logger';
import { createTestDatabase, testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { dumpRedisPrefix } from '@memfleet/testing/store-dump';
import { startApi, type ApiRuntime } from './api-runtime.ts';

/** Keys of the test API's two tenants and its admin. */
export const ACME = 'acme-key-0123456789abcdef';
export const GLOBEX = 'globex-key-0123456789abcd';
export const ADMIN = 'admin-key-0123456789abcdef';

/** An API on a fresh database and key prefix, and a Redis client to look inside. */
export interface TestApi {
  api: ApiRuntime;
  redis: Redis;
  prefix: string;
  /** Deletes every key of this API's prefix (kept for the PII scan first, see store-dump.ts). */
  clearRedis(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the API in-process, as main.ts wires it, with `env` on top of the test defaults. */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const db = await createTestDatabase();
  await migrate(db.url);
  const prefix = uniquePrefix();
  const config = loadConfig({
    REDIS_URL: await testRedisUrl(),
    REDIS_KEY_PREFIX: prefix,
    DATABASE_URL: db.url,
    MEMFLEET_API_KEYS: `acme:${ACME},globex:${GLOBEX}`,
    MEMFLEET_ADMIN_KEY: ADMIN,
    API_PORT: '0',
    ...env,
  });
  const api = await startApi(config, createLogger({ service: 'api', stream: new PassThrough() }));
  const redis = new Redis(await testRedisUrl());
  const clearRedis = async () => {
    await dumpRedisPrefix(redis, prefix);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  };
  return {
    api,
    redis,
    prefix,
    clearRedis,
    async stop() {
      await clearRedis();
      await redis.quit();
      await api.close();
      await db.drop();
    },
  };
}
