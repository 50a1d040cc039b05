import { UnrecoverableError, Worker } from 'bullmq';
import { createRedisClient } from '@memfleet/redis/connect-redis';
import pg from 'pg';
import type { Config } from '@memfleet/config/load-config';
import { createLedger } from '@memfleet/db/ledger';
import { toError } from '@memfleet/errors/to-error';
import { startFlags } from '@memfleet/flags/start-flags';
import { createDrainQueue, DRAIN_QUEUE } from '@memfleet/jobs/thread-drain';
import {
  createEraseQueue,
  ERASE_QUEUE,
  userErasePayload,
  type UserErasePayload,
} from '@memfleet/jobs/user-erase';
import type { Logger } from '@memfleet/logger/create-logger';
import { createBackendGate } from '@memfleet/memory/backend-gate';
import { createMemoryBackend, gateSettings } from '@memfleet/memory/create-backend';
import { createRegistry } from '@memfleet/metrics/create-registry';
import { startMetricsServer } from '@memfleet/metrics/metrics-server';
import { QUEUE_STATES, registerQueueMetrics } from '@memfleet/metrics/queue-metrics';
import { createWorkerMetrics, registerGateMetrics } from '@memfleet/metrics/worker-metrics';
import { createOutbox } from '@memfleet/outbox/outbox';
import { oldestPendingAcceptedAt } from '@memfleet/outbox/pending-age';
import { createDrainWorker } from './create-drain-worker.ts';
import { createThreadDrainer } from './drain-thread.ts';
import { createUserEraser } from './erase-user.ts';
import { createSweeper } from './sweeper.ts';

/** A running worker process's parts. */
export interface WorkerRuntime {
  metricsPort: number;
  /**
   * Stops taking jobs, lets in-flight drains finish their batch and hand their thread back, then
   * closes every connection. After `shutdownTimeoutMs`, in-flight jobs are abandoned to the
   * stalled-job recovery of the rest of the fleet.
   */
  close(): Promise<void>;
}

/**
 * Wires a drain worker to real Redis, Postgres and the backend and starts it. Used by main.ts and
 * by the integration tests.
 */
export async function startWorker(config: Config, logger: Logger): Promise<WorkerRuntime> {
  const w = config.worker;
  // Workers block on Redis; BullMQ requires maxRetriesPerRequest: null on their connection.
  const redis = createRedisClient(config.redis, { maxRetriesPerRequest: null });
  redis.on('error', (err: unknown) => logger.warn('redis error', { err }));
  // The outbox and the backend gate get a connection of their own with auto-pipelining: the
  // commands of concurrent drains leave in one socket write per event-loop turn.
  const ops = createRedisClient(config.redis, {
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
  });
  ops.on('error', (err: unknown) => logger.warn('redis error', { err }));
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: Math.min(50, w.concurrency + 4),
    statement_timeout: w.backendTimeoutMs,
    connectionTimeoutMillis: w.backendTimeoutMs,
  });
  pool.on('error', (err) => logger.warn('idle postgres client failed', { err }));

  const registry = createRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  const outbox = createOutbox(ops, {
    prefix: config.redisKeyPrefix,
    dedupeWindowS: config.messages.dedupeWindowS,
  });
  const queue = createDrainQueue({
    connection: redis,
    prefix: config.redisKeyPrefix,
    maxMessageAttempts: w.maxAttempts,
  });
  queue.on('error', (err) => logger.warn('queue error', { err }));
  const eraseQueue = createEraseQueue({ connection: redis, prefix: config.redisKeyPrefix });
  eraseQueue.on('error', (err) => logger.warn('queue error', { err }));
  registerQueueMetrics(registry, [
    {
      name: DRAIN_QUEUE,
      counts: () => queue.getJobCounts(...QUEUE_STATES),
      oldestPendingAt: () => oldestPendingAcceptedAt(redis, config.redisKeyPrefix),
    },
    {
      name: ERASE_QUEUE,
      counts: () => eraseQueue.getJobCounts(...QUEUE_STATES),
      async oldestPendingAt() {
        const jobs = await eraseQueue.getJobs(['waiting', 'delayed'], 0, 0, true);
        const times = jobs.map((j) => j.timestamp).filter((t) => Number.isFinite(t));
        return times.length === 0 ? undefined : Math.min(...times);
      },
    },
  ]);

  const backend = createMemoryBackend(config, { pool, timeoutMs: w.backendTimeoutMs });
  const gate = createBackendGate(ops, {
    prefix: config.redisKeyPrefix,
    backend: backend.name,
    settings: gateSettings(config),
  });
  registerGateMetrics(registry, backend.name, async () => {
    const s = await gate.state();
    return {
      breaker: s.breaker,
      authFailing: s.reason === 'auth',
      rateLimitedForMs: s.rateLimitedForMs,
    };
  });

  const flags = await startFlags(redis, config, { registry, logger });

  let stopping = false;
  const drainThread = createThreadDrainer({
    outbox,
    ledger: createLedger(pool),
    backend,
    gate,
    flags,
    async onGateClosed() {
      if ((await gate.state()).rateLimitedForMs === 0) await queue.removeRateLimitKey();
    },
    metrics,
    logger,
    isStopping: () => stopping,
    settings: {
      maxAttempts: w.maxAttempts,
      lockTtlMs: w.lockDurationMs,
      sliceMs: w.drainSliceMs,
      backendTimeoutMs: w.backendTimeoutMs,
      modeOffRetryMs: 2 * config.flags.refreshMs,
    },
  });
  const worker = createDrainWorker({
    connection: redis,
    prefix: config.redisKeyPrefix,
    queue,
    drainThread,
    concurrency: w.concurrency,
    lockDurationMs: w.lockDurationMs,
    stalledIntervalMs: w.stalledIntervalMs,
    retryPolicy: {
      maxAttempts: w.maxAttempts,
      baseMs: w.backoffBaseMs,
      maxMs: w.backoffMaxMs,
      jitter: 0.5,
    },
  });
  worker.on('error', (err) => logger.error('worker error', { err }));
  worker.on('failed', (job, err) => {
    logger.warn('drain failed', {
      jobId: job?.id,
      tenant: job?.data.tenant,
      threadId: job?.data.threadId,
      attemptsMade: job?.attemptsMade,
      err,
    });
  });
  const eraseUser = createUserEraser({
    outbox,
    ledger: createLedger(pool),
    backend,
    queue,
    logger,
    settings: { lockTtlMs: w.lockDurationMs, backendTimeoutMs: w.backendTimeoutMs },
  });
  // Erasures are rare and lock a user's threads: a couple at a time is plenty.
  const eraser = new Worker<UserErasePayload>(
    ERASE_QUEUE,
    async (job) => {
      const payload = userErasePayload.safeParse(job.data);
      if (!payload.success) {
        throw new UnrecoverableError(`invalid user.erase payload: ${payload.error.message}`);
      }
      return eraseUser(payload.data.tenant, payload.data.userId);
    },
    {
      connection: redis,
      prefix: config.redisKeyPrefix,
      concurrency: 2,
      lockDuration: w.lockDurationMs,
      stalledInterval: w.stalledIntervalMs,
      autorun: false,
    },
  );
  eraser.on('error', (err) => logger.error('eraser error', { err }));
  eraser.on('failed', (job, err) => {
    logger.warn('erasure failed', { jobId: job?.id, attemptsMade: job?.attemptsMade, err });
  });
  const sweeper = createSweeper({
    outbox,
    queue,
    redis,
    logger,
    intervalMs: w.sweepIntervalMs,
    graceMs: Math.max(2 * w.sweepIntervalMs, 2 * w.drainSliceMs),
  });

  const server = await startMetricsServer({
    registry,
    port: w.metricsPort,
    host: w.metricsHost,
    ready: async () => {
      await Promise.all([redis.ping(), pool.query('SELECT 1')]);
      return worker.isRunning();
    },
  });

  const running = Promise.all([
    worker.run().catch((err: unknown) => {
      logger.error('worker stopped unexpectedly', { err: toError(err) });
    }),
    eraser.run().catch((err: unknown) => {
      logger.error('eraser stopped unexpectedly', { err: toError(err) });
    }),
  ]);
  sweeper.start();
  logger.info('worker ready', {
    pid: process.pid,
    concurrency: w.concurrency,
    backend: config.memoryBackend,
    metricsPort: server.port,
  });

  return {
    metricsPort: server.port,
    async close() {
      if (stopping) return;
      stopping = true;
      const force = setTimeout(() => {
        logger.warn('shutdown timeout: abandoning in-flight drains');
        void worker.close(true);
        void eraser.close(true);
      }, w.shutdownTimeoutMs);
      try {
        await sweeper.stop();
        await Promise.all([worker.close(), eraser.close()]);
        await running;
        flags.stop();
        await Promise.all([queue.close(), eraseQueue.close()]);
        await server.close();
        await pool.end();
        redis.disconnect();
        ops.disconnect();
      } finally {
        clearTimeout(force);
      }
    },
  };
}
