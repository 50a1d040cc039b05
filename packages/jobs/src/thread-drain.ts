import { createHash } from 'node:crypto';
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';

/** The queue of per-thread drain jobs. Nothing else spells this name. */
export const DRAIN_QUEUE = 'thread-drain';
/** Job name of a drain: write a thread's outbox to the backend, in order. */
export const THREAD_DRAIN = 'thread.drain';
/** Backoff type handled by the worker's `backoffStrategy` (see retry-policy.ts). */
export const BACKOFF_TYPE = 'memfleet';

/** Payload of a `thread.drain` job. No message content travels in job data. */
export const threadDrainPayload = z.object({
  tenant: z.string().min(1),
  threadId: z.string().min(1),
});
export type ThreadDrainPayload = z.infer<typeof threadDrainPayload>;

export type DrainQueue = Queue<ThreadDrainPayload, unknown, typeof THREAD_DRAIN>;

/** Options of {@link createDrainQueue}. */
export interface DrainQueueOptions {
  connection: ConnectionOptions;
  /** Redis key prefix (a Cluster hash tag such as `{memfleet}`). */
  prefix: string;
  /** Attempts of a message before it is dead-lettered (`WORKER_MAX_ATTEMPTS`). */
  maxMessageAttempts: number;
}

/** The drain queue with the fleet's job defaults. */
export function createDrainQueue(options: DrainQueueOptions): DrainQueue {
  return new Queue<ThreadDrainPayload, unknown, typeof THREAD_DRAIN>(DRAIN_QUEUE, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      attempts: drainJobAttempts(options.maxMessageAttempts),
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 14 * 86_400 },
    },
  });
}

/**
 * BullMQ attempts of one drain job. Backend failures are counted per message (and dead-lettered at
 * `maxMessageAttempts`); the job's own bound only stops a drain that keeps failing for other
 * reasons (Redis or ledger trouble). A failed drain is picked up again by the worker's sweep.
 */
export function drainJobAttempts(maxMessageAttempts: number): number {
  return maxMessageAttempts + 10;
}

/**
 * Dedupe id of a thread's drain: with `keepLastIfActive`, each thread has at most one active and
 * one waiting drain, so drains of a thread never run in parallel and a wake-up is never lost. The
 * thread id is hashed: a client may put anything in it, and dedupe ids show in Redis keys and on
 * the dashboard, where job data is redacted but dedupe ids cannot be.
 */
export function drainDeduplicationId(tenant: string, threadId: string): string {
  return `${tenant}/${createHash('sha256').update(threadId).digest('hex').slice(0, 32)}`;
}

/** Job options of a thread's drain. */
export function drainJobOptions(tenant: string, threadId: string): JobsOptions {
  return { deduplication: { id: drainDeduplicationId(tenant, threadId), keepLastIfActive: true } };
}

/** Asks the fleet to drain a thread (a no-op when a drain is already waiting). */
export async function requestDrain(
  queue: DrainQueue,
  tenant: string,
  threadId: string,
): Promise<void> {
  await queue.add(THREAD_DRAIN, { tenant, threadId }, drainJobOptions(tenant, threadId));
}
