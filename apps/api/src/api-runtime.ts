import type { Server } from 'node:http';
import { createRedisClient } from '@memfleet/redis/connect-redis';
import pg from 'pg';
import type { Config } from '@memfleet/config/load-config';
import { createLedger } from '@memfleet/db/ledger';
import { startFlags } from '@memfleet/flags/start-flags';
import { createDrainQueue } from '@memfleet/jobs/thread-drain';
import { createEraseQueue, requestErase } from '@memfleet/jobs/user-erase';
import type { Logger } from '@memfleet/logger/create-logger';
import { createApiMetrics } from '@memfleet/metrics/api-metrics';
import { createRegistry } from '@memfleet/metrics/create-registry';
import { createRateLimitMetrics } from '@memfleet/metrics/rate-limit-metrics';
import { createOutbox } from '@memfleet/outbox/outbox';
import type { RedactOptions } from '@memfleet/redaction/redact';
import { createMessageIntake } from '@memfleet/intake/accept-messages';
import { createAuthenticator } from '@memfleet/http/auth';
import { listen } from '@memfleet/http/http-basics';
import { tenantRateLimit } from '@memfleet/http/rate-limit';
import { createApp } from './create-app.ts';
import { createDashboard } from './dashboard.ts';
import { createStatusLookup } from './message-status.ts';

/** A running API: its HTTP server and how to stop it. */
export interface ApiRuntime {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Wires the API to real Redis and Postgres and starts listening. Used by main.ts and by the
 * integration tests, so both run the same wiring.
 */
export async function startApi(config: Config, logger: Logger): Promise<ApiRuntime> {
  // Fail fast instead of queueing commands while Redis is away: the client gets a 503 and resends.
  // The outbox and the rate limits send one command per request: auto-pipelining writes the
  // commands of concurrent requests to Redis in one socket write per event-loop turn. BullMQ keeps
  // a plain connection of its own.
  const redis = createRedisClient(config.redis, {
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
  });
  redis.on('error', (err: unknown) => logger.warn('redis error', { err }));
  const queueRedis = createRedisClient(config.redis, { maxRetriesPerRequest: 1 });
  queueRedis.on('error', (err: unknown) => logger.warn('redis error', { err }));
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: 10,
    statement_timeout: 5000,
    connectionTimeoutMillis: 5000,
  });
  pool.on('error', (err) => logger.warn('idle postgres client failed', { err }));

  const registry = createRegistry('api');
  const metrics = createApiMetrics(registry);
  const outbox = createOutbox(redis, {
    prefix: config.redisKeyPrefix,
    dedupeWindowS: config.messages.dedupeWindowS,
    recentMessages: config.reader.fallbackMessages,
  });
  const queue = createDrainQueue({
    connection: queueRedis,
    prefix: config.redisKeyPrefix,
    maxMessageAttempts: config.worker.maxAttempts,
  });
  queue.on('error', (err) => logger.warn('queue error', { err }));
  const eraseQueue = createEraseQueue({ connection: queueRedis, prefix: config.redisKeyPrefix });
  eraseQueue.on('error', (err) => logger.warn('queue error', { err }));
  const flags = await startFlags(redis, config, { registry, logger });

  const rateLimitMetrics = createRateLimitMetrics(registry);
  const limit = (name: 'enqueue' | 'read') =>
    tenantRateLimit({
      name,
      settings: config.rateLimits[name],
      redis,
      prefix: config.redisKeyPrefix,
      metrics: rateLimitMetrics,
      logger,
    });

  const app = createApp({
    auth: createAuthenticator(config.apiKeys, config.adminKeyDigest, config.dashboardKeyDigests),
    acceptMessages: createMessageIntake({
      outbox,
      queue,
      metrics,
      defaultCountry: config.messages.redactionDefaultCountry as NonNullable<
        RedactOptions['defaultCountry']
      >,
    }),
    messageStatus: createStatusLookup({ outbox, ledger: createLedger(pool) }),
    checkReady: async () => {
      await Promise.all([redis.ping(), pool.query('SELECT 1')]);
    },
    eraseUser: (tenant, userId) => requestErase(eraseQueue, tenant, userId),
    dashboard: createDashboard(queue, eraseQueue),
    rateLimits: { enqueue: limit('enqueue'), read: limit('read') },
    flags,
    tenants: [...new Set(config.apiKeys.map((k) => k.tenant))],
    registry,
    metrics,
    logger,
    bodyLimitBytes: config.api.bodyLimitBytes,
    contentMaxChars: config.messages.contentMaxChars,
  });

  const http = await listen(app, config.api.port, config.api.host);
  const { server, port, url } = http;
  logger.info('api listening', { url, pid: process.pid });

  return {
    server,
    port,
    url,
    async close() {
      await http.close();
      flags.stop();
      await queue.close();
      await eraseQueue.close();
      await pool.end();
      redis.disconnect();
      queueRedis.disconnect();
    },
  };
}
