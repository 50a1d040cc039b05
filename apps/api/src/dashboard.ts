import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import type { DrainQueue } from '@memfleet/jobs/thread-drain';

/** Mount path of the Bull Board dashboard. */
export const DASHBOARD_PATH = '/admin/queues';

/**
 * The Bull Board dashboard over the drain queue. Drain jobs carry only tenant and thread ids, never
 * message content, so the dashboard shows no PII. Mount it behind the admin check.
 */
export function createDashboard(queue: DrainQueue): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(queue, { description: 'per-thread drains into the memory backend' }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'memfleet' } },
  });
  return serverAdapter.getRouter() as Router;
}
