import { toError } from '@memfleet/errors/to-error';
import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import type { Logger } from '@memfleet/logger/create-logger';
import type { Outbox } from '@memfleet/outbox/outbox';
import { redisScript, type ScriptClient } from '@memfleet/outbox/redis-script';

// KEYS: active list, failed zset, stalled set. ARGV: job key base (`<prefix>:<queue>:`), now ms,
// reason. Moves active jobs whose data is not JSON (BullMQ cannot even build a Job from them, so
// they would stay active for good) to the failed set with the reason; returns their ids.
const FAIL_UNREADABLE = redisScript(`
local moved = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local data = redis.call('HGET', key, 'data')
  if data and not pcall(cjson.decode, data) then
    redis.call('LREM', KEYS[1], 0, id)
    redis.call('SREM', KEYS[3], id)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    redis.call('HSET', key, 'failedReason', ARGV[3], 'finishedOn', ARGV[2])
    redis.call('DEL', key .. ':lock')
    table.insert(moved, id)
  end
end
return moved`);

/** Options of {@link createSweeper}. */
export interface SweeperOptions {
  outbox: Outbox;
  queue: DrainQueue;
  /** The queue's Redis, for the one script BullMQ has no call for. */
  redis: ScriptClient;
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

  /** Fails the jobs BullMQ cannot read, which would otherwise stay active for good. */
  async function failUnreadableJobs(t: number): Promise<void> {
    const { queue } = options;
    const moved = (await FAIL_UNREADABLE.run(
      options.redis,
      [queue.keys.active ?? '', queue.keys.failed ?? '', queue.keys.stalled ?? ''],
      [queue.toKey(''), t, 'unreadable job: its data is not JSON'],
    )) as string[];
    if (moved.length > 0) {
      options.logger.warn('unreadable jobs moved to failed', { jobIds: moved });
    }
  }

  async function sweepOnce(): Promise<number> {
    const t = now();
    await failUnreadableJobs(t);
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
