import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Express, NextFunction, Request, Response, Router } from 'express';
import { dashboardAccessOf } from '@memfleet/http/auth';
import type { DrainQueue } from '@memfleet/jobs/thread-drain';
import type { EraseQueue } from '@memfleet/jobs/user-erase';
import { redactDeep } from '@memfleet/redaction/redact-deep';

/** Mount path of the Bull Board dashboard. */
export const DASHBOARD_PATH = '/admin/queues';

const redacted = (value: unknown): unknown => redactDeep(value).value;

function board(queue: DrainQueue, eraseQueue: EraseQueue, readOnlyMode: boolean): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const adapters = [
    new BullMQAdapter(queue, {
      description: 'per-thread drains into the memory backend',
      readOnlyMode,
    }),
    new BullMQAdapter(eraseQueue, {
      description: 'user erasures (DELETE /v1/users/{id})',
      readOnlyMode,
    }),
  ];
  for (const adapter of adapters) {
    adapter.setFormatter('data', redacted);
    adapter.setFormatter('returnValue', redacted);
  }
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: { uiConfig: { boardTitle: readOnlyMode ? 'memfleet (read-only)' : 'memfleet' } },
  });
  const app = serverAdapter.getRouter() as Express;
  // Bull Board mounts an Express app of its own, which would announce itself again after helmet.
  app.disable('x-powered-by');
  return app;
}

/**
 * The Bull Board dashboard over the drain and erasure queues: full for the admin key, read-only
 * (Bull Board refuses every action) for a dashboard key. Jobs carry only tenant, thread and user
 * ids, never message content, and what the board shows of job data and results goes through the
 * same redaction as messages. Mount it behind `requireDashboard`.
 */
export function createDashboard(queue: DrainQueue, eraseQueue: EraseQueue): Router {
  const full = board(queue, eraseQueue, false);
  const readOnly = board(queue, eraseQueue, true);
  return ((req: Request, res: Response, next: NextFunction) => {
    (dashboardAccessOf(res) === 'admin' ? full : readOnly)(req, res, next);
  }) as Router;
}
