import { randomUUID } from 'node:crypto';
import type { Ledger } from '@memfleet/db/ledger';
import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import { toError } from '@memfleet/errors/to-error';
import type { Logger } from '@memfleet/logger/create-logger';
import type { MemoryBackend } from '@memfleet/memory/memory-backend';
import type { Outbox } from '@memfleet/outbox/outbox';

/** Dependencies of {@link createUserEraser}. */
export interface EraseDeps {
  outbox: Outbox;
  ledger: Ledger;
  backend: MemoryBackend;
  /** Finished drain jobs of the user's threads (they name the thread) are removed too. */
  queue: DrainQueue;
  logger: Pick<Logger, 'info' | 'warn'>;
  settings: { lockTtlMs: number; backendTimeoutMs: number };
}

/** What an erasure removed. */
export interface EraseResult {
  threads: number;
  messages: number;
  ledgerRows: number;
}

/** A thread of the user is being drained; the erasure is retried once it is free. */
export class ThreadBusyError extends Error {
  constructor(threadId: string) {
    super(`thread ${threadId} is being drained; erasure retried`);
    this.name = 'ThreadBusyError';
  }
}

/**
 * Erases a user of a tenant everywhere memfleet keeps them: the backend (the user with all their
 * threads), the ledger, and in Redis every message status and body, outbox and dead-letter entry,
 * the threads' recent messages and cached contexts. The user's threads are locked first, so no
 * drain writes them to the backend behind the erasure.
 */
export function createUserEraser(deps: EraseDeps) {
  const { outbox, ledger, backend, settings } = deps;

  return async function eraseUser(tenant: string, userId: string): Promise<EraseResult> {
    const rows = await ledger.userMessages(tenant, userId);
    const threads = new Set([
      ...(await outbox.userThreads(tenant, userId)),
      ...rows.map((r) => r.threadId),
    ]);
    const token = randomUUID();
    const held: string[] = [];
    // Threads with messages accepted while the erasure held them: an append to a held thread
    // asks for no drain (the holder answers for it), so they are drained once the locks are gone.
    const accepted: string[] = [];
    let erased = false;
    try {
      for (const threadId of threads) {
        if (!(await outbox.acquireLock(tenant, threadId, token, settings.lockTtlMs))) {
          throw new ThreadBusyError(threadId);
        }
        held.push(threadId);
      }
      await backend.eraseUser(
        { tenant, userId },
        { signal: AbortSignal.timeout(settings.backendTimeoutMs) },
      );
      let messages = 0;
      for (const threadId of threads) {
        const ids = new Set([
          ...rows.filter((r) => r.threadId === threadId).map((r) => r.clientMessageId),
          ...(await outbox.pendingIds(tenant, threadId)),
        ]);
        const left = await outbox.eraseThread(tenant, threadId, userId, token, [...ids]);
        if (left > 0) accepted.push(threadId);
        messages += ids.size;
      }
      const ledgerRows = await ledger.eraseUser(tenant, userId);
      const jobs = await deps.queue.getJobs(['completed', 'failed', 'wait', 'delayed'], 0, -1);
      for (const job of jobs) {
        if (job.data.tenant === tenant && threads.has(job.data.threadId)) {
          await job.remove().catch((err: unknown) => {
            deps.logger.warn('drain job not removed', { jobId: job.id, err: toError(err) });
          });
        }
      }
      deps.logger.info('user erased', { tenant, threads: threads.size, messages, ledgerRows });
      erased = true;
      return { threads: threads.size, messages, ledgerRows };
    } finally {
      for (const threadId of held) {
        await outbox.releaseLock(tenant, threadId, token).catch((err: unknown) => {
          deps.logger.warn('thread lock release failed', { tenant, threadId, err: toError(err) });
        });
      }
      // Erased: the threads that got messages meanwhile. Given up part way: every held thread
      // with messages waiting.
      const toDrain = erased ? accepted : [];
      if (!erased) {
        for (const threadId of held) {
          if ((await outbox.length(tenant, threadId).catch(() => 1)) > 0) toDrain.push(threadId);
        }
      }
      for (const threadId of toDrain) {
        await requestDrain(deps.queue, tenant, threadId).catch((err: unknown) => {
          deps.logger.warn('drain not requested', { tenant, threadId, err: toError(err) });
        });
      }
    }
  };
}
