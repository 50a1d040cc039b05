import {
  DelayedError,
  RateLimitError,
  UnrecoverableError,
  Worker,
  type ConnectionOptions,
} from 'bullmq';
import { retryDelayMs, type RetryPolicy } from '@memfleet/jobs/retry-policy';
import {
  BACKOFF_TYPE,
  DRAIN_QUEUE,
  requestDrain,
  threadDrainPayload,
  type DrainQueue,
  type ThreadDrainPayload,
} from '@memfleet/jobs/thread-drain';
import { RetryableDrainError, type DrainResult } from './drain-thread.ts';

/** Options of {@link createDrainWorker}. */
export interface DrainWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  queue: DrainQueue;
  drainThread: (tenant: string, threadId: string, jobId?: string) => Promise<DrainResult>;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  retryPolicy: RetryPolicy;
}

/**
 * The BullMQ worker of `thread.drain` jobs: parses the payload, drains the thread, and maps the
 * result: a held thread is retried after its lock expires without using an attempt, a tenant
 * whose writes are off after a while (its messages stay queued); a paused
 * backend pauses the queue fleet-wide; a thread left with messages (slice over, or shutting down)
 * is handed back to the queue at once.
 */
export function createDrainWorker(
  options: DrainWorkerOptions,
): Worker<ThreadDrainPayload, DrainResult> {
  return new Worker<ThreadDrainPayload, DrainResult>(
    DRAIN_QUEUE,
    async (job, token) => {
      const payload = threadDrainPayload.safeParse(job.data);
      if (!payload.success) {
        throw new UnrecoverableError(`invalid thread.drain payload: ${payload.error.message}`);
      }
      const { tenant, threadId } = payload.data;
      const result = await options.drainThread(tenant, threadId, job.id);
      if (result.outcome === 'locked' || result.outcome === 'mode_off') {
        // Waits without using an attempt: for the thread's lock, or for writes to be on again.
        await job.moveToDelayed(Date.now() + Math.max(50, result.retryInMs), token);
        throw new DelayedError();
      }
      if (result.outcome === 'paused') {
        // Pauses the whole queue: every worker stops taking drains until the backend may be
        // called again, and this job waits without using an attempt.
        await options.queue.rateLimit(Math.max(50, result.retryInMs));
        throw new RateLimitError();
      }
      if (result.outcome === 'yielded') await requestDrain(options.queue, tenant, threadId);
      return result;
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 5,
      // queue.rateLimit() pauses every worker only when a limiter is configured; this one is
      // far above any real drain rate, so it never limits by itself.
      limiter: { max: 1_000_000, duration: 1000 },
      autorun: false,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string, err?: Error) => {
          if (type !== BACKOFF_TYPE) return 0;
          if (!(err instanceof RetryableDrainError)) {
            return retryDelayMs(attemptsMade, options.retryPolicy);
          }
          return Math.max(err.minDelayMs, retryDelayMs(err.attempt, options.retryPolicy));
        },
      },
    },
  );
}
