import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import type { DrainQueue } from '@memfleet/jobs/thread-drain';
import type { EraseQueue } from '@memfleet/jobs/user-erase';

/** Mount path of the Bull Board dashboard. */
export const DASHBOARD_PATH = '/admin/queues';

/**
 * The Bull Board dashboard over the drain and erasure queues. Their jobs carry only tenant, thread
 * and user ids, never message content, so the dashboard shows no PII. Mount it behind the admin
 * check.
 */
export function createDashboard(queue: DrainQueue, eraseQueue: EraseQueue): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(queue, { description: 'per-thread drains into the memory backend' }),
      new BullMQAdapter(eraseQueue, { description: 'user erasures (DELETE /v1/users/{id})' }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'memfleet' } },
  });
  return serverAdapter.getRouter() as Router;
}
