import { Queue, type ConnectionOptions } from 'bullmq';
import { z } from 'zod';

/** The queue of user erasures. Nothing else spells this name. */
export const ERASE_QUEUE = 'user-erase';
/** Job name of an erasure: remove a user from the backend, the ledger, the outbox and the cache. */
export const USER_ERASE = 'user.erase';

/** Payload of a `user.erase` job. */
export const userErasePayload = z.object({
  tenant: z.string().min(1),
  userId: z.string().min(1),
});
export type UserErasePayload = z.infer<typeof userErasePayload>;

export type EraseQueue = Queue<UserErasePayload, unknown, typeof USER_ERASE>;

/**
 * The erasure queue. An erasure waits for the user's threads to be free of drains and for the
 * backend, so it retries for a long time (about an hour of backoff) before it fails visibly.
 */
export function createEraseQueue(options: {
  connection: ConnectionOptions;
  prefix: string;
}): EraseQueue {
  return new Queue<UserErasePayload, unknown, typeof USER_ERASE>(ERASE_QUEUE, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      attempts: 30,
      backoff: { type: 'exponential', delay: 500 },
      // A finished erasure keeps no record naming the user.
      removeOnComplete: true,
      removeOnFail: { age: 30 * 86_400 },
    },
  });
}

/** Asks the fleet to erase a user; a request while one is pending for that user is folded into it. */
export async function requestErase(
  queue: EraseQueue,
  tenant: string,
  userId: string,
): Promise<void> {
  await queue.add(
    USER_ERASE,
    { tenant, userId },
    { deduplication: { id: `${tenant}/${encodeURIComponent(userId)}` } },
  );
}
