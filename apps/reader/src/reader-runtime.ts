import type { Server } from 'node:http';
import { createRedisClient } from '@memfleet/redis/connect-redis';
import pg from 'pg';
import type { Config } from '@memfleet/config/load-config';
import { startFlags } from '@memfleet/flags/start-flags';
import { createAuthenticator } from '@memfleet/http/auth';
import { listen } from '@memfleet/http/http-basics';
import { tenantRateLimit } from '@memfleet/http/rate-limit';
import type { Logger } from '@memfleet/logger/create-logger';
import { createBackendGate } from '@memfleet/memory/backend-gate';
import { createMemoryBackend } from '@memfleet/memory/create-backend';
import { createRegistry } from '@memfleet/metrics/create-registry';
import { createRateLimitMetrics } from '@memfleet/metrics/rate-limit-metrics';
import { createReaderMetrics } from '@memfleet/metrics/reader-metrics';
import { createReaderApp } from './create-reader-app.ts';
import { createContextReader } from './read-context.ts';
import { createSnapshotReader } from './thread-snapshot.ts';

/** A running reader: its HTTP server and how to stop it. */
export interface ReaderRuntime {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Wires the reader to Redis and the backend and starts listening (main.ts and tests). */
export async function startReader(config: Config, logger: Logger): Promise<ReaderRuntime> {
  const budgetMs = config.readBudgetMs;
  // Every Redis call of a read must fit its budget: no offline queue, a per-command timeout.
  const redis = createRedisClient(config.redis, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: Math.max(20, Math.floor(budgetMs / 2)),
    // Concurrent reads' commands share round trips.
    enableAutoPipelining: true,
    lazyConnect: true,
  });
  redis.on('error', (err: unknown) => logger.warn('redis error', { err }));
  await redis.connect();
  // Only the postgres backend uses it; the pool connects on first query.
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: 10,
    connectionTimeoutMillis: budgetMs,
    statement_timeout: budgetMs,
  });
  pool.on('error', (err) => logger.warn('idle postgres client failed', { err }));

  const registry = createRegistry('reader');
  const metrics = createReaderMetrics(registry);
  const backend = createMemoryBackend(config, { pool, timeoutMs: budgetMs });
  const readGate = createBackendGate(redis, {
    prefix: config.redisKeyPrefix,
    backend: `${backend.name}:read`,
    settings: {
      failureThreshold: config.reader.breakerFailures,
      windowMs: config.worker.breakerWindowMs,
      cooldownMs: config.reader.breakerCooldownMs,
      authRetryMs: config.reader.breakerCooldownMs,
      rateLimitDefaultMs: config.worker.rateLimitDefaultMs,
      probeTtlMs: budgetMs * 2,
    },
  });
  const flags = await startFlags(redis, config, { registry, logger });
  const snapshot = createSnapshotReader(redis, {
    prefix: config.redisKeyPrefix,
    backend: backend.name,
    recentMessages: config.reader.fallbackMessages,
  });

  const app = createReaderApp({
    auth: createAuthenticator(config.apiKeys, config.adminKeyDigest),
    readLimit: tenantRateLimit({
      name: 'read',
      settings: config.rateLimits.read,
      redis,
      prefix: config.redisKeyPrefix,
      metrics: createRateLimitMetrics(registry),
      logger,
      // The check shares the read's budget: a slow Redis lets the read through rather than wait.
      timeoutMs: Math.max(10, Math.floor(budgetMs / 10)),
    }),
    readContext: createContextReader({
      backend,
      readGate,
      flags,
      snapshot,
      cache: redis,
      metrics,
      logger,
      settings: {
        prefix: config.redisKeyPrefix,
        budgetMs,
        cacheTtlMs: config.reader.cacheTtlMs,
      },
    }),
    checkReady: async () => {
      await redis.ping();
    },
    registry,
    metrics,
    logger,
  });

  const http = await listen(app, config.reader.port, config.reader.host);
  const { server, port, url } = http;
  logger.info('reader listening', {
    url,
    pid: process.pid,
    backend: backend.name,
    budget_ms: budgetMs,
  });

  return {
    server,
    port,
    url,
    async close() {
      await http.close();
      flags.stop();
      await pool.end();
      redis.disconnect();
    },
  };
}
