import { toError } from '@memfleet/errors/to-error';
import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import type { Logger } from '@memfleet/logger/create-logger';
import type { Outbox } from '@memfleet/outbox/outbox';

/** Options of {@link createSweeper}. */
export interface SweeperOptions {
  outbox: Outbox;
  queue: DrainQueue;
  logger: Pick<Logger, 'warn' | 'info'>;
  /** Time between sweeps. */
  intervalMs: number;
  /** A thread counts as stalled after this long without progress. */
  graceMs: number;
  now?: () => number;
}

/**
 * Re-requests drains of threads whose pending messages made no progress for `graceMs`: the safety
 * net for an API that died between recording a message and queueing its drain, or a drain job that
 * failed for good. Duplicate requests are harmless: the queue keeps one drain per thread.
 */
export function createSweeper(options: SweeperOptions) {
  const now = options.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function sweepOnce(): Promise<number> {
    const t = now();
    const threads = await options.outbox.stalledThreads(t - options.graceMs, 500);
    for (const { tenant, threadId } of threads) {
      await requestDrain(options.queue, tenant, threadId);
      await options.outbox.touchPending(tenant, threadId, t);
    }
    if (threads.length > 0) options.logger.info('sweep requested drains', { n: threads.length });
    return threads.length;
  }

  return {
    sweepOnce,
    start(): void {
      timer = setInterval(() => {
        if (running !== undefined) return;
        running = sweepOnce()
          .catch((err: unknown) => {
            options.logger.warn('sweep failed', { err: toError(err) });
            return 0;
          })
          .finally(() => {
            running = undefined;
          });
      }, options.intervalMs);
    },
    async stop(): Promise<void> {
      if (timer !== undefined) clearInterval(timer);
      await running;
    },
  };
}
